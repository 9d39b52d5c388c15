"""A real OpenAI-compatible server for tests and benchmarks: llama-cpp-python's own
(`python -m llama_cpp.server`, the `server` extra), on a model file, on a free port of
127.0.0.1. It is started as a subprocess and stopped with it; its output goes to a log file
that a failing start quotes.

llama.cpp's own llama-server is not on PyPI; `llama_server` runs a binary built elsewhere
(bench/remote_speed.py builds one from the llama-cpp-python sdist). The tests that need it
run only when LLAMA_TUI_LLAMA_SERVER names one (the `llama_cpp_server` fixture skips otherwise).

This module is a pytest plugin (listed in tests/conftest.py): the session-scoped
`openai_server` fixture serves the tiny random-weight model with a 512-token context.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TEST_CONTEXT = 512


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningServer:
    endpoint: str
    """The API base URL, http://127.0.0.1:PORT/v1."""
    port: int
    model_path: Path
    n_ctx: int
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(json.load(response).get("data"))
    except (OSError, ValueError, urllib.error.URLError):
        return False


@contextmanager
def llama_cpp_python_server(model: Path, log_path: Path, *, n_ctx: int = TEST_CONTEXT, threads: int = 1,
                            extra_args: tuple[str, ...] = (), start_timeout: float = 120) -> Iterator[RunningServer]:
    """Run llama-cpp-python's server on `model` until the block ends; wait until
    /v1/models answers."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
               "--n_threads_batch", str(threads), *extra_args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = RunningServer(f"http://127.0.0.1:{port}/v1", port, model, n_ctx, log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while not _answers(f"{server.endpoint}/models"):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited ({process.returncode}):\n{server.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer in {start_timeout:.0f} s:\n{server.log_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def llama_server(binary: Path, model: Path, log_path: Path, *, n_ctx: int = TEST_CONTEXT, threads: int = 1,
                 extra_args: tuple[str, ...] = (), start_timeout: float = 120) -> Iterator[RunningServer]:
    """Run llama.cpp's own llama-server (a binary built elsewhere, e.g. by
    bench/remote_speed.py) on `model` until the block ends: one slot, so the context is
    n_ctx, and flash attention off as in llama-cpp-python; wait until /health says ready."""
    port = free_port()
    command = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", str(n_ctx),
               "-t", str(threads), "-tb", str(threads), "-np", "1", "-fa", "off", "--no-webui", *extra_args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = RunningServer(f"http://127.0.0.1:{port}/v1", port, model, n_ctx, log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while not _healthy(f"http://127.0.0.1:{port}/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama-server did not start:\n{server.log_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture(scope="session")
def openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """llama-cpp-python's server on the tiny model (never emits EOS: always set max_tokens)."""
    from tests.tiny_gguf import write_tiny_llama_gguf

    folder = tmp_path_factory.mktemp("openai-server")
    model = write_tiny_llama_gguf(folder / "tiny-remote.gguf")
    with llama_cpp_python_server(model, folder / "server.log") as server:
        yield server


@pytest.fixture(scope="session")
def llama_cpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """llama-server on the tiny model, if LLAMA_TUI_LLAMA_SERVER names its binary; else skip."""
    from tests.tiny_gguf import write_tiny_llama_gguf

    binary = os.environ.get("LLAMA_TUI_LLAMA_SERVER", "")
    if not binary or not Path(binary).is_file():
        pytest.skip("set LLAMA_TUI_LLAMA_SERVER to a llama-server binary (bench/remote_speed.py builds one)")
    folder = tmp_path_factory.mktemp("llama-server")
    model = write_tiny_llama_gguf(folder / "tiny-remote.gguf")
    with llama_server(Path(binary), model, folder / "server.log") as server:
        yield server
