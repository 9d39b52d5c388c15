"""Completing file paths as they are typed (Tab or → accepts the suggestion)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import Input


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
            if not name.startswith(stem) or (name.startswith(".") and not stem.startswith(".")):
                continue
            full = folder / name
            if full.is_dir():
                return value + name[len(stem):] + os.sep
            if name.endswith(".gguf"):
                return value + name[len(stem):]
        return None


class PathInput(Input):
    """An Input for a path where Tab accepts the suggested completion, as in a shell; with
    nothing to complete, Tab moves on to the next field as usual."""

    BINDINGS = [Binding("tab", "complete", "Complete the path", id="path_input.complete", show=False,
                        tooltip="Accept the suggested completion, else move to the next field")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(suggester=PathSuggester(), **kwargs)

    def action_complete(self) -> None:
        before = self.value
        if self.cursor_at_end:
            self.action_cursor_right()  # accepts the suggestion, if there is one
        if self.value == before:
            self.screen.focus_next()
