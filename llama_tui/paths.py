"""Where llama-tui keeps its files, following each platform's conventions (platformdirs).

| what                  | where                                   | written by            |
|-----------------------|-----------------------------------------|-----------------------|
| log file              | user log dir / llama-tui.log            | `engine.logs`         |
| starter model         | user cache dir / models / *.gguf        | `engine.starter`      |
| downloaded models     | the standard Hugging Face cache         | `huggingface_hub`     |
| conversation history  | user data dir / history.sqlite3         | `engine.store`        |

`LLAMA_TUI_HOME` moves all of them under one folder (tests and benchmarks use it to stay
out of the real user directories).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs

APP_NAME = "llama-tui"


def _home_override() -> Path | None:
    value = os.environ.get("LLAMA_TUI_HOME")
    return Path(value) if value else None


def log_dir() -> Path:
    home = _home_override()
    return home / "log" if home else Path(platformdirs.user_log_dir(APP_NAME))


def cache_dir() -> Path:
    home = _home_override()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


def config_dir() -> Path:
    home = _home_override()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME))


def log_file() -> Path:
    return log_dir() / "llama-tui.log"


def data_dir() -> Path:
    home = _home_override()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def state_dir() -> Path:
    """Worth keeping between runs but not precious: the saved KV states of recent chats."""
    home = _home_override()
    return home / "state" if home else Path(platformdirs.user_state_dir(APP_NAME))


def unwritable_places() -> dict[Path, str]:
    """For each folder the app writes to but cannot (a read-only home, a full disk), a line
    saying why and what is lost; the app keeps running without it and says so once."""
    places = [
        (config_dir(), "settings changed in the app and recent models are not saved"),
        (log_dir(), "there is no log file (the Log tab still shows everything)"),
        (cache_dir(), "model file checks are not remembered between runs"),
        (state_dir(), "chats are not saved with the model's memory of them, so a resumed chat is read again"),
    ]
    problems: dict[Path, str] = {}
    for folder, loss in places:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            problems[folder] = f"{folder}: {error.strerror or error}; {loss}."
    return problems
