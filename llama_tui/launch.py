"""What the command line hands to the app: which model, with which settings, in which mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llama_tui.engine.config import AppConfig
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import ChatSettings, LoadSettings, SamplingSettings, Settings

Mode = Literal["chat", "completion"]


@dataclass(frozen=True)
class LaunchOptions:
    model: ModelRef | None = None
    """The model to open first; None opens none (the picker, or a download, comes first)."""
    model_named: bool = False
    """The model was named on the command line (a resumed conversation does not replace it)."""
    resume: str = ""
    """A saved conversation to open at start: its id, or "last"."""
    settings: Settings = field(default_factory=Settings)
    """The settings file's, with the command line's on top: where the app's live settings start."""
    mode: Mode = "chat"
    verbose: bool = False
    """Show the speed figures under each reply."""
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

    @classmethod
    def opening(
        cls,
        model: Path | ModelRef | None,
        *,
        load: LoadSettings | None = None,
        sampling: SamplingSettings | None = None,
        system_prompt: str = "",
        **options: Any,
    ) -> LaunchOptions:
        """Options that open `model` (a file, a ref; None: the starter) with these settings,
        the others at their defaults (for benchmarks, screenshots and tests)."""
        if isinstance(model, ModelRef):
            ref = model
        else:
            ref = ModelRef.file(model) if model is not None else ModelRef.starter()
        settings = Settings(load=load or LoadSettings(), sampling=sampling or SamplingSettings(),
                            chat=ChatSettings(system_prompt=system_prompt))
        return cls(model=ref, settings=settings, **options)
