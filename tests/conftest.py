"""Shared fixtures. Model fixtures are session-scoped: each model file is made or assembled once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Keep logs, caches and the starter model out of the real user directories.
SHARED_HOME = Path(os.environ.setdefault("LLAMA_TUI_HOME", str(Path(__file__).resolve().parent.parent / ".test-home")))

pytest_plugins = ["tests.tiny_gguf", "tests.hub_server", "tests.openai_server"]


@pytest.fixture(autouse=True)
def own_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own settings, history, drafts and logs; the cache (the unpacked
    starter model, file checks) is shared, so the starter is unpacked once per run."""
    home = tmp_path_factory.mktemp("home")
    shared_cache = SHARED_HOME / "cache"
    shared_cache.mkdir(parents=True, exist_ok=True)
    (home / "cache").symlink_to(shared_cache, target_is_directory=True)
    monkeypatch.setenv("LLAMA_TUI_HOME", str(home))
    yield home


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """The real Gemma 3 270M starter model (253 MB), assembled once into the shared cache."""
    from llama_tui.engine.starter import starter_model_path

    return starter_model_path().resolve()
