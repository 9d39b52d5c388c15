"""Completing file paths as they are typed in an Input (Tab or → accepts the suggestion)."""

from __future__ import annotations

import os
from pathlib import Path

from textual.suggester import Suggester


class PathSuggester(Suggester):
    """Suggests the first folder or .gguf file that completes what was typed."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        typed = Path(os.path.expanduser(value))
        folder, stem = (typed, "") if value.endswith(os.sep) else (typed.parent, typed.name)
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return None
        for name in names:
            if not name.startswith(stem) or name.startswith(".") and not stem.startswith("."):
                continue
            full = folder / name
            if full.is_dir():
                return value + name[len(stem):] + os.sep
            if name.endswith(".gguf"):
                return value + name[len(stem):]
        return None
