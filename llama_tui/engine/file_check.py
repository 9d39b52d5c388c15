"""Refusing model files that would crash llama.cpp, before the app loads them itself.

Some malformed files make llama.cpp hit a C `GGML_ASSERT`, which aborts the whole process:
no Python exception, the TUI just vanishes. So a file is checked first:

1. its header (`read_gguf_header`, `header_problems`): cheap, catches the usual damage;
2. a trial load in a child process, which may abort safely.

The trial load is a real `llama_cpp.Llama(...)` with a 256-token context on the CPU: the
same code path as the app's load, minus GPU offload. `vocab_only=True` is not enough: it
still hits the duplicate-token assert (llama-vocab.cpp) but skips the hyperparameters, so
a model with block_count=0 loads "fine" and only aborts later (llama-model.cpp). The full
load costs about as much anyway (~0.6 s for the 253 MB starter, mostly building its
262k-token vocabulary; the weights are memory-mapped, not copied).

Verdicts are cached in `paths.cache_dir() / "file-checks.json"` by file identity (resolved
path, size, mtime_ns) and llama-cpp-python version, so a checked file costs one stat and a
small JSON read afterwards. Only definite verdicts are cached: a clean load and a crash.
A clean refusal (llama.cpp returns an error, which the app's own load reports), a timeout
and SIGKILL (likely the out-of-memory killer) may be transient and are checked again.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from llama_tui import paths
from llama_tui.engine.gguf_header import GGUFHeaderError, header_problems, read_gguf_header
from llama_tui.engine.settings import OverrideValue
from llama_tui.python_child import python_argv

__all__ = ["UnsafeModelFile", "check_model_file", "known_crash", "trial_load"]

log = logging.getLogger(__name__)

_CLEAN_FAILURE = 17  # the child's exit code when llama.cpp refused the file without crashing
_TRIAL_LOAD = f"""
import json, sys
try:
    import llama_cpp, llama_cpp.llama_chat_format
    class NoChatFormatter:  # the file's chat templates are not compiled here (see model.py)
        def __init__(self, **_): pass
        def to_chat_handler(self): return None
    llama_cpp.llama_chat_format.Jinja2ChatFormatter = NoChatFormatter
    llm = llama_cpp.Llama(
        model_path=sys.argv[1], n_ctx=256, n_batch=256, n_threads=1, n_gpu_layers=0, verbose=True,
        kv_overrides=json.loads(sys.argv[2]) or None,
    )
except Exception as error:
    print(f"{{type(error).__name__}}: {{error}}", file=sys.stderr)
    sys.exit({_CLEAN_FAILURE})
llm.close()
"""
_SOURCE_DIR = re.compile(r"^\S*/(?=[^/\s]+:\d+: )")  # the build path before "file.cpp:123: "
_cache_lock = threading.Lock()


class UnsafeModelFile(Exception):
    """The file must not be loaded; str() is a message for the user."""


def check_model_file(
    path: Path, *, overrides: Mapping[str, OverrideValue] | None = None, timeout: float | None = None
) -> None:
    """Raise UnsafeModelFile if `path` has a bad header or crashes llama.cpp in a trial load.

    `overrides` are the GGUF metadata overrides the app will load with: they can crash
    llama.cpp too (`block_count=0`), so the trial load uses them and the verdict is kept per
    set of overrides. Blocking (the first check of a file takes a load's time; the default
    timeout grows with the file's size): call it from a worker. A trial load that times out
    or is SIGKILLed also refuses the file, but is not cached.
    """
    path = Path(path).expanduser()
    overrides = dict(overrides or {})
    key, identity = _identity(path)
    if key is not None and overrides:
        key += "|" + json.dumps(sorted(overrides.items()))
    cached = _cached_verdict(key, identity)
    if cached is not None:
        if cached.get("unsafe"):
            raise UnsafeModelFile(f"this file cannot be loaded: {cached['unsafe']}")
        return

    try:
        problems = header_problems(read_gguf_header(path))
    except GGUFHeaderError as error:
        raise UnsafeModelFile(f"this file cannot be loaded: {error}") from None
    if problems:
        raise UnsafeModelFile(f"this file cannot be loaded: {problems[0]}")

    if timeout is None:  # the trial load reads the whole file: give big files on slow disks time
        timeout = 60.0 + 20.0 * identity[0] / 1e9
    crash, definite = _run_trial_load(path, timeout, overrides)
    if key is not None and definite:
        _remember(key, identity, crash)
    if crash is not None:
        raise UnsafeModelFile(f"this file cannot be loaded: {crash}")


def known_crash(path: Path) -> str | None:
    """Why this exact file crashed an earlier trial load, if it did; never loads anything
    (for the picker, which shows it beside the header's problems)."""
    cached = _cached_verdict(*_identity(Path(path).expanduser()))
    unsafe = cached.get("unsafe") if cached else None
    return unsafe if isinstance(unsafe, str) else None


def trial_load(
    path: Path, *, timeout: float = 60.0, overrides: Mapping[str, OverrideValue] | None = None
) -> str | None:
    """Load `path` in a child process: why it crashed, or None if it did not crash."""
    return _run_trial_load(Path(path), timeout, dict(overrides or {}))[0]


def _run_trial_load(path: Path, timeout: float, overrides: dict[str, OverrideValue]) -> tuple[str | None, bool]:
    """(why it crashed or None, whether that verdict is definite enough to cache)."""
    log.info("trial-loading %s in a child process", path)
    started = time.perf_counter()
    try:
        child = subprocess.run(
            python_argv("-c", _TRIAL_LOAD, str(path), json.dumps(overrides)),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            # Without it ggml runs gdb for a backtrace on abort, which takes seconds.
            env={**os.environ, "GGML_NO_BACKTRACE": "1"},
        )
    except subprocess.TimeoutExpired:
        return f"llama.cpp did not finish loading it within {timeout:g} s.", False
    elapsed = time.perf_counter() - started
    log.info("trial load of %s: exit code %s after %.2f s", path.name, child.returncode, elapsed)

    if child.returncode == 0:
        return None, True
    detail = _crash_line(child.stderr)
    if child.returncode == _CLEAN_FAILURE:
        log.info("llama.cpp refused %s without crashing: %s", path.name, detail)
        return None, False  # the app's own load will report the reason
    if child.returncode < 0:
        number = -child.returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        if number == getattr(signal, "SIGKILL", None):
            return f"the trial load was killed ({name}), perhaps for lack of memory.", False
        return f"llama.cpp aborted while loading it (signal {name}): {detail}", True
    return f"llama.cpp crashed while loading it (exit code {child.returncode}): {detail}", True


def _crash_line(stderr: str) -> str:
    """The last GGML_ASSERT line (without the build's source path), else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    asserts = [line for line in lines if "GGML_ASSERT" in line]
    line = (asserts or lines or ["(no message)"])[-1]
    return _SOURCE_DIR.sub("", line)


# --- the verdict cache -----------------------------------------------------------------------


def _identity(path: Path) -> tuple[str | None, tuple[int, int]]:
    try:
        resolved = path.resolve()
        stat = resolved.stat()
    except OSError:
        return None, (0, 0)  # unreadable: the header step says why
    return str(resolved), (stat.st_size, stat.st_mtime_ns)


def _cached_verdict(key: str | None, identity: tuple[int, int]) -> dict[str, object] | None:
    if key is None:
        return None
    with _cache_lock:
        cached = _load_cache().get(key)
    if isinstance(cached, dict) and (cached.get("size"), cached.get("mtime_ns")) == identity:
        return cached
    return None  # never checked, or changed since


def _cache_file() -> Path:
    return paths.cache_dir() / "file-checks.json"


def _llama_cpp_version() -> str:
    # A verdict holds for one build of llama.cpp: a newer one may fix (or add) the crash.
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _load_cache() -> dict[str, dict[str, object]]:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("llama_cpp") != _llama_cpp_version():
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _remember(key: str, identity: tuple[int, int], unsafe: str | None) -> None:
    with _cache_lock:
        files = _load_cache()
        files[key] = {"size": identity[0], "mtime_ns": identity[1], "unsafe": unsafe}
        # Forget deleted files (a key is the path, then "|overrides" when there are any).
        files = {name: entry for name, entry in files.items() if os.path.exists(name.split("|", 1)[0])}
        target = _cache_file()
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            data = {"llama_cpp": _llama_cpp_version(), "files": files}
            partial.write_text(json.dumps(data, indent=1), encoding="utf-8")
            partial.replace(target)  # atomic: a reader never sees half a file
        except OSError as error:
            log.warning("could not save %s: %s", target, error)
            partial.unlink(missing_ok=True)
