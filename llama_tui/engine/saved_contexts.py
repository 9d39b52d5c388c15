"""Chats resumed without reading them again: llama.cpp's KV state of recent chats, on disk.

After a reply, the context's state (the KV cache of every token in it) is written to the
cache folder with its tokens (`llama_state_seq_save_file`). When a later prompt shares a
longer start with a saved state than with what the context holds (a conversation opened
from the history, the model opened again, the app started again), that state is loaded and
only the rest of the prompt is evaluated. A state belongs to one model file with the load
settings that shape its cache, and is kept under a size cap, least recently used out first.

A saved state is only a cache: when one cannot be read or loaded, it is deleted and the
prompt is evaluated as usual. Nothing here raises into a chat.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import numpy as np

log = logging.getLogger(__name__)

MIN_TOKENS = 256
"""Shorter contexts are evaluated again faster than a state file is written and read."""

MIN_GAIN = 64
"""Load a state only when it spares at least this many tokens of evaluation."""

STATE, TOKENS = ".state", ".tokens"


def model_identity(path: Path, shape: dict[str, object]) -> str:
    """Which saved states fit a model: its file (path, size, modification time), the load
    settings that shape its KV cache, and the llama.cpp build (the state format is its own)."""
    stat = path.stat()
    key = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, shape, llama_cpp.__version__],
                     sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def common_prefix(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(np.asarray(a[:n], dtype=np.int64) != np.asarray(b[:n], dtype=np.int64))
    return int(differ[0]) if differ.size else n


@dataclass(frozen=True)
class SavedState:
    path: Path
    """The state file; its tokens are beside it (same name, .tokens)."""
    tokens: np.ndarray


class SavedContexts:
    """The folder of saved states, shared by every model the app opens. `cap_mib` may be
    changed at any time (0: nothing is saved or loaded)."""

    def __init__(self, folder: Path, cap_mib: float) -> None:
        self.folder = folder
        self.cap_mib = cap_mib
        self.loaded = 0
        """States loaded so far (for tests and -v)."""

    # -- finding -------------------------------------------------------------------------

    def _saved(self, identity: str) -> list[SavedState]:
        found = []
        try:
            paths = sorted(self.folder.glob(f"{identity}-*{STATE}"))
        except OSError:
            return []
        for path in paths:
            try:
                tokens = np.fromfile(path.with_suffix(TOKENS), dtype=np.int32)
            except (OSError, ValueError):
                continue
            found.append(SavedState(path, tokens))
        return found

    def best(self, identity: str, prompt: Sequence[int]) -> tuple[SavedState, int] | None:
        """The saved state sharing the longest start with `prompt`, and that length."""
        if self.cap_mib <= 0:
            return None
        scored = [(common_prefix(state.tokens, prompt), state) for state in self._saved(identity)]
        if not scored:
            return None
        shared, state = max(scored, key=lambda pair: pair[0])
        return (state, shared) if shared else None

    # -- loading and saving ----------------------------------------------------------------

    def load(self, ctx: llama_cpp.llama_context_p, state: SavedState, capacity: int) -> list[int] | None:
        """Load `state` into sequence 0 of `ctx` (emptied first); its tokens, or None when it
        could not be loaded (the file is then deleted, and the sequence is left empty)."""
        memory = llama_cpp.llama_get_memory(ctx)
        llama_cpp.llama_memory_clear(memory, True)
        tokens = (llama_cpp.llama_token * capacity)()
        count = ctypes.c_size_t(0)
        try:
            read = llama_cpp.llama_state_seq_load_file(ctx, str(state.path).encode(), 0, tokens, capacity,
                                                       ctypes.byref(count))
        except OSError as error:  # ctypes raises OSError for a path it cannot pass
            log.warning("saved context %s not loaded: %s", state.path.name, error)
            read = 0
        loaded = list(tokens[: count.value])
        if not read or loaded != state.tokens.tolist():
            log.warning("saved context %s could not be loaded: deleted", state.path.name)
            llama_cpp.llama_memory_clear(memory, True)
            self._delete(state.path)
            return None
        self.loaded += 1
        try:
            os.utime(state.path)  # recently used: the last to go
        except OSError:
            pass
        return loaded

    def save(self, ctx: llama_cpp.llama_context_p, identity: str, tokens: Sequence[int]) -> Path | None:
        """Save sequence 0 of `ctx`, which holds `tokens`; states of the same chat that this
        one extends go. Returns the file, or None when nothing was saved."""
        if self.cap_mib <= 0 or len(tokens) < MIN_TOKENS:
            return None
        array = np.asarray(tokens, dtype=np.int32)
        earlier = self._saved(identity)
        for state in earlier:
            if np.array_equal(state.tokens, array):
                return state.path  # nothing new since it was saved
        name = f"{identity}-{uuid.uuid4().hex[:12]}"
        final, temporary = self.folder / f"{name}{STATE}", self.folder / f".{name}{STATE}.part"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            array.tofile(final.with_suffix(TOKENS))
            native = (llama_cpp.llama_token * len(array))(*array.tolist())
            if not llama_cpp.llama_state_seq_save_file(ctx, str(temporary).encode(), 0, native, len(array)):
                raise OSError("llama.cpp could not write the state")
            os.replace(temporary, final)
        except OSError as error:
            log.warning("context not saved in %s: %s", self.folder, error)
            for path in (temporary, final.with_suffix(TOKENS)):
                path.unlink(missing_ok=True)
            return None
        for state in earlier:  # the same chat, shorter: this state does everything it did
            if common_prefix(state.tokens, array) == len(state.tokens):
                self._delete(state.path)
        self._keep_under_cap()
        return final

    def _delete(self, path: Path) -> None:
        for each in (path, path.with_suffix(TOKENS)):
            try:
                each.unlink(missing_ok=True)
            except OSError:
                pass

    def _keep_under_cap(self) -> None:
        """Delete the least recently used states until the folder is under the cap; tokens
        files whose state is gone (a save cut short) go too."""
        try:
            states = [(path.stat().st_mtime_ns, path.stat().st_size, path) for path in self.folder.glob(f"*{STATE}")]
            for orphan in self.folder.glob(f"*{TOKENS}"):
                if not orphan.with_suffix(STATE).exists():
                    orphan.unlink(missing_ok=True)
        except OSError:
            return
        total = sum(size for _, size, _ in states)
        for _, size, path in sorted(states):
            if total <= self.cap_mib * 2**20:
                break
            self._delete(path)
            total -= size
