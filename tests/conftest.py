"""Shared fixtures. Model fixtures are session-scoped: each model file is made or assembled once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep logs, caches and the starter model out of the real user directories.
os.environ.setdefault("LLAMA_TUI_HOME", str(Path(__file__).resolve().parent.parent / ".test-home"))

pytest_plugins = ["tests.tiny_gguf", "tests.hub_server", "tests.openai_server"]


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """The real Gemma 3 270M starter model (253 MB), assembled once into the test home."""
    from llama_tui.engine.starter import starter_model_path

    return starter_model_path()
