"""The model picker's list: every GGUF file llama-tui knows about, from headers only.

Sources, in the order they win when one file is reachable from several (compared by
resolved path, so an HF snapshot symlink and its blob count as one file):

1. ``recent``        paths the app opened lately, in the caller's order (newest first)
2. ``starter``       the bundled Gemma 3 270M, when its package is installed
3. ``models-folder`` every .gguf under ``models_folder()``, recursively
4. ``hf-cache``      every .gguf in the Hugging Face hub cache

Recent comes first so the models used last head the list. Only headers are read
(``read_gguf_header`` skips the big arrays), never weights: a handful of files list in a
fraction of a second. A file that crashed an earlier `file_check` trial load shows that
as its problem (from the verdict cache; nothing is loaded here). Split models show once, as
their first part; the other parts are left out and counted into the size.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llama_tui import paths
from llama_tui.engine.file_check import known_crash
from llama_tui.engine.gguf_header import GGUFHeader, GGUFHeaderError, header_problems, read_gguf_header
from llama_tui.engine.hub import cached_gguf_files, guess_quant, hub_cache_dir
from llama_tui.engine.starter import (
    StarterModelMissing,
    starter_header_file,
    starter_model_installed,
    starter_model_location,
    starter_size,
)
from llama_tui.formatting import context_label, count_label, human_bytes

__all__ = ["ModelEntry", "ModelSource", "list_models", "models_folder"]

log = logging.getLogger(__name__)

ModelSource = Literal["starter", "hf-cache", "models-folder", "recent"]

_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


@dataclass(frozen=True)
class ModelEntry:
    """One row of the picker. The display properties return "?" (or "") when unknown."""

    path: Path  # as found (an HF snapshot path, not its blob: split parts are found by name)
    source: ModelSource
    header: GGUFHeader | None  # None when the header could not be read
    problem: str | None  # why it can't be read, or likely can't load (incl. a known crash)
    repo_id: str | None = None  # "owner/name" for files in the HF cache
    size_bytes: int | None = None  # on disk, all parts of a split model together

    @property
    def name(self) -> str:
        return (self.header.name if self.header else None) or self.path.stem

    @property
    def architecture(self) -> str:
        return (self.header.architecture if self.header else None) or "?"

    @property
    def size_label(self) -> str:
        """The file's own label ("270M"), else the counted parameters in the same style."""
        if self.header is None:
            return "?"
        if self.header.size_label:
            return self.header.size_label
        return count_label(self.header.parameter_count) if self.header.parameter_count else "?"

    @property
    def quantization(self) -> str:
        """From general.file_type, else guessed from the file name."""
        quant = self.header.quantization if self.header else None
        return quant or guess_quant(self.path.name) or "?"

    @property
    def trained_context(self) -> str:
        context = self.header.context_length if self.header else None
        return context_label(context) if context else "?"

    @property
    def file_size(self) -> str:
        return human_bytes(self.size_bytes) if self.size_bytes is not None else "?"


def models_folder() -> Path:
    """Where users may drop GGUF files for the picker (created on demand)."""
    folder = paths.data_dir() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def list_models(recent: Sequence[Path] = ()) -> list[ModelEntry]:
    """Every known model file, deduplicated; see the module docstring for the order."""
    entries: list[ModelEntry] = []
    seen: set[Path] = set()
    hub_cache = hub_cache_dir()
    starter = _starter_location()
    for path, source in _candidates(recent, starter):
        if path == starter:  # listed whether or not it has been unpacked yet
            if path not in seen:
                seen.update({path, path.resolve()})
                entries.append(_starter_entry(path))
            continue
        try:
            if not path.is_file():
                continue
            resolved = path.resolve()
        except OSError:
            continue
        shard = _SHARD.search(path.name)
        if resolved in seen or (shard and int(shard[1]) != 1):
            continue
        seen.add(resolved)
        entries.append(_entry(path, source, _repo_id(path, hub_cache)))
    return entries


def _starter_location() -> Path | None:
    if not starter_model_installed():
        return None
    try:
        return starter_model_location()
    except (StarterModelMissing, OSError) as error:
        log.warning("starter model unavailable: %s", error)
        return None


def _starter_entry(location: Path) -> ModelEntry:
    """The starter, read from its first part if it has not been unpacked (it is unpacked,
    253 MB, only when opened)."""
    try:
        header: GGUFHeader | None = read_gguf_header(starter_header_file())
        problem = None  # the package is checked when it is unpacked; a part is not truncated
    except GGUFHeaderError as error:
        header, problem = None, str(error)
    return ModelEntry(location, "starter", header, problem, None, starter_size())


def _candidates(recent: Sequence[Path], starter: Path | None) -> Iterator[tuple[Path, ModelSource]]:
    for path in recent:
        path = Path(path).expanduser()
        yield path, "starter" if path == starter else "recent"  # recent first, but named for what it is
    if starter is not None:
        yield starter, "starter"
    folder = models_folder()
    found = [p for p in folder.rglob("*") if p.suffix.lower() == ".gguf"]
    for path in sorted(found):
        yield path, "models-folder"
    for path in cached_gguf_files():
        yield path, "hf-cache"


def _entry(path: Path, source: ModelSource, repo_id: str | None) -> ModelEntry:
    header: GGUFHeader | None = None
    try:
        header = read_gguf_header(path)
        problems = header_problems(header)
        problem = problems[0] if problems else None
    except GGUFHeaderError as error:
        problem = str(error)
    size, missing = _size_on_disk(path)
    if missing and problem is None:
        problem = f"Part {missing[0]} of this split model is missing."
    if problem is None:
        problem = known_crash(path)  # only a header-clean file can have crashed a trial load
    return ModelEntry(path, source, header, problem, repo_id, size)


def _size_on_disk(path: Path) -> tuple[int | None, list[int]]:
    """Total size of the file (all parts, if split) and the numbers of missing parts."""
    shard = _SHARD.search(path.name)
    count = int(shard[2]) if shard else 1
    total, missing = 0, []
    for number in range(1, count + 1):
        part = path.with_name(_SHARD.sub(f"-{number:05d}-of-{count:05d}.gguf", path.name)) if shard else path
        try:
            total += part.stat().st_size
        except OSError:
            missing.append(number)
    if missing == [1]:  # not even the file itself (a race with a deletion)
        return None, missing
    return total, missing


def _repo_id(path: Path, hub_cache: Path) -> str | None:
    """"owner/name" from the cache's models--owner--name folder, for paths in the HF cache."""
    try:
        relative = path.relative_to(hub_cache)
    except ValueError:
        return None
    top = relative.parts[0] if relative.parts else ""
    if not top.startswith("models--"):
        return None
    return "/".join(top.split("--")[1:]) or None
