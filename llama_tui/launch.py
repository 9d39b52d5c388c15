"""What the command line hands to the app: which model, with which settings, in which mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llama_tui.engine.config import AppConfig
from llama_tui.engine.settings import LoadSettings, SamplingSettings

Mode = Literal["chat", "completion"]


@dataclass(frozen=True)
class LaunchOptions:
    model_path: Path | None = None
    """The GGUF file to open; None opens the starter model."""
    load: LoadSettings = field(default_factory=LoadSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    mode: Mode = "chat"
    verbose: bool = False
    """Show the speed figures under each reply."""
    system_prompt: str = ""
    hub_download: tuple[str, str] | None = None
    """(repo, file) to download from Hugging Face in the app, then open."""
    open_picker: bool = False
    """Start on the model picker (there is no model to open)."""
    saved_config: AppConfig | None = None
    """The settings file as read at start, without command-line flags: its recent models seed
    the picker, and settings changed in the app are saved to the file. None (as in tests)
    keeps everything in memory."""
    storage_problems: tuple[str, ...] = ()
    """Folders the app cannot write to, and what is lost (paths.unwritable_places), to say once."""
    config_warnings: tuple[str, ...] = ()
    """What load_config had to ignore in the settings file, for the app to show and log (on
    the terminal it would vanish behind the full-screen UI)."""
