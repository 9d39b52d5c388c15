"""Rendering untrusted chat templates in a separate process that can be killed.

A GGUF file's chat template is Jinja code from a stranger. Jinja's sandbox stops attribute
escapes but not runaway work (nested loops over range(100000), 'x ' * 50000000), and a
thread stuck in a render cannot be stopped. So a template from a model file is rendered by
a long-lived worker process (template_worker.py), and a render that takes too long, is
cancelled, or is abandoned by close() ends with SIGKILL; the next render starts a new worker.

Protocol: each message is a 4-byte big-endian length and a UTF-8 JSON object. The worker
first says {"ready": true} once Jinja is imported and its limits are set (a render's time
limit starts after that, not during the interpreter's start), then sends one reply per
request. A request carries the template's key (a SHA-256 of its source) and the source only
the first time this worker sees it; the worker keeps compiled templates by key and answers
"need_source" if it has dropped one. Limits: wall time here (the parent kills the worker);
output size and address space in the worker, because only it can stop those in time.

Started with subprocess rather than multiprocessing: forking a process that has threads and
llama.cpp loaded is unsafe, and a fresh interpreter imports only Jinja (about 60 ms).
No Textual and no llama_cpp import here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import struct
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from llama_tui.python_child import child_env, python_argv

# Real templates render in milliseconds even for long chats; 5 s leaves room for a loaded
# machine and is still a short wait for a person when a template never ends.
TIME_LIMIT_SECONDS = 5.0
# Far more than any prompt a context can hold (a million tokens is ~4 M characters).
MAX_OUTPUT_CHARS = 8 * 1024 * 1024
# Address space the worker may add to what it uses at start (~40 MB with Jinja loaded).
MEMORY_HEADROOM_BYTES = 1024 * 1024 * 1024
# Starting the worker is not the template's time: a cold start on a loaded machine may
# take seconds, and waiting for it still honours cancel and close.
STARTUP_LIMIT_SECONDS = 30.0
# How often a waiting render checks for cancel, close and the deadline.
POLL_SECONDS = 0.05

_HEADER = struct.Struct(">I")
# A reply's JSON is at most 6 bytes per character (\u escapes) plus the envelope.
_MAX_REPLY_BYTES = 6 * MAX_OUTPUT_CHARS + 65536

FailureKind = Literal["raised", "syntax", "error", "timeout", "too_large", "memory", "died"]


class TemplateFailed(Exception):
    """The template could not be rendered; str() says which template and why, for a person."""

    def __init__(self, message: str, *, template_name: str, kind: FailureKind) -> None:
        super().__init__(message)
        self.template_name = template_name
        self.kind = kind


class TemplateCancelled(Exception):
    """The render was cancelled; the caller ends the reply as stopped."""


class SandboxClosed(TemplateCancelled):
    """The sandbox was closed before or during the render."""


class _Deadline(Exception):
    """The time allowed for a wait on the worker ran out."""


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Kill (if running), wait for, and close the pipes of a worker. Also the finalizer that
    runs if a TemplateSandbox is garbage-collected or the interpreter exits unclosed."""
    if process.poll() is None:
        process.kill()  # SIGKILL: a runaway template gets no say
    process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    finalizer: weakref.finalize[[subprocess.Popen[bytes]], TemplateSandbox]
    ready: bool = False
    """Whether its first message (imports done, limits set) has been read."""
    known: set[str] = field(default_factory=set)
    """Keys of the templates this worker has compiled (it may have dropped some since)."""


class TemplateSandbox:
    """Renders chat templates in a killable worker process, one render at a time.

    Thread-safe: renders are serialised, and close() from any thread ends a waiting render
    promptly (with SandboxClosed).
    """

    def __init__(
        self,
        *,
        time_limit: float = TIME_LIMIT_SECONDS,
        max_output_chars: int = MAX_OUTPUT_CHARS,
        memory_headroom: int = MEMORY_HEADROOM_BYTES,
    ) -> None:
        self.time_limit = time_limit
        self.max_output_chars = max_output_chars
        self.memory_headroom = memory_headroom
        # One render at a time. Reentrant so that a cancelled() callback that calls close()
        # on the rendering thread does not deadlock.
        self._render_lock = threading.RLock()
        # Guards _worker and _closed, and makes kill and reap of one process never overlap
        # (a kill after another thread's reap could hit a reused pid).
        self._state_lock = threading.Lock()
        self._worker: _Worker | None = None
        self._closed = False
        self._next_id = 0

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker ahead of the first render, which then skips the interpreter's
        start-up. Does nothing if closed or busy; a failure to start is reported by render()."""
        if not self._render_lock.acquire(blocking=False):
            return
        try:
            with contextlib.suppress(OSError, SandboxClosed):
                self._ensure_worker()
        finally:
            self._render_lock.release()

    def close(self) -> None:
        """Stop the worker. Idempotent; a render waiting on another thread ends at once."""
        with self._state_lock:
            self._closed = True
            if self._worker is not None and self._worker.process.poll() is None:
                # Only kill here: the rendering thread may be in poll() on the pipes, so
                # closing them is left to whoever holds the render lock.
                self._worker.process.kill()
        with self._render_lock:
            self._discard()

    def __enter__(self) -> TemplateSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The worker's process id, if one is running (for diagnostics and tests)."""
        worker = self._worker
        return worker.process.pid if worker is not None else None

    def _ensure_worker(self) -> _Worker:
        with self._state_lock:
            if self._closed:
                raise SandboxClosed("the template sandbox is closed")
            worker = self._worker
            if worker is not None and worker.process.poll() is None:
                return worker
        self._discard()  # it died between renders: start afresh
        process = subprocess.Popen(
            python_argv("-m", "llama_tui.engine.template_worker", str(self.memory_headroom)),
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Never the terminal: no stderr, and its own session, so no controlling TTY
            # and no Ctrl+C or Ctrl+Z meant for the app.
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            bufsize=0,
        )
        assert process.stdin is not None
        # Writes wait in poll() too, so a large request honours cancel and the deadline.
        os.set_blocking(process.stdin.fileno(), False)
        worker = _Worker(process, weakref.finalize(self, _reap, process))
        with self._state_lock:
            self._worker = worker
            if self._closed:  # closed while we were starting it
                worker.process.kill()
        return worker

    def _discard(self) -> None:
        with self._state_lock:
            worker, self._worker = self._worker, None
            if worker is not None:
                worker.finalizer()  # runs _reap once, and never again at exit

    # -- rendering ------------------------------------------------------------------------

    def render(
        self,
        source: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        bos_token: str,
        eos_token: str,
        cancelled: Callable[[], bool],
        template_name: str,
        add_generation_prompt: bool = True,
        enable_thinking: bool = True,
    ) -> str:
        """The prompt text from this template and conversation. `template_name` is how
        messages name it after "The chat template", e.g. "in model.gguf". Rendered by
        jinja_chat.render_compiled, which says what the template is given.

        Raises TemplateFailed (the template raised, took too long, produced too much, ran
        out of memory, or the worker died), TemplateCancelled when `cancelled()` turns true
        (checked every POLL_SECONDS), SandboxClosed when the sandbox is or gets closed.
        """
        # Waiting for another render also honours cancel and close.
        while not self._render_lock.acquire(timeout=POLL_SECONDS):
            self._check(cancelled)
        try:
            return self._render(
                source, messages, bos_token, eos_token, cancelled, template_name, add_generation_prompt,
                enable_thinking,
            )
        finally:
            self._render_lock.release()

    def _render(
        self,
        source: str,
        messages: Sequence[Mapping[str, Any]],
        bos_token: str,
        eos_token: str,
        cancelled: Callable[[], bool],
        template_name: str,
        add_generation_prompt: bool,
        enable_thinking: bool,
    ) -> str:
        key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
        try:
            worker = self._ensure_worker()
        except OSError as error:
            raise TemplateFailed(
                self._describe(template_name, "died", f"could not be started ({error})"),
                template_name=template_name,
                kind="died",
            ) from error
        self._next_id += 1
        request: dict[str, Any] = {
            "id": self._next_id,
            "key": key,
            "messages": messages,
            "bos_token": bos_token,
            "eos_token": eos_token,
            "add_generation_prompt": add_generation_prompt,
            "enable_thinking": enable_thinking,
            "max_chars": self.max_output_chars,
            "time_limit": self.time_limit,
        }
        if key not in worker.known:
            request["source"] = source
        # Outside the try: a conversation that is not JSON is the caller's error, and no
        # reason to stop the worker.
        body = _encode(request)
        try:
            if not worker.ready:
                self._await_ready(worker, cancelled, template_name)
            # The template's time starts now, not while the interpreter starts.
            deadline = time.monotonic() + self.time_limit
            reply = self._exchange(worker, body, deadline, cancelled, template_name)
            if reply.get("kind") == "need_source":
                request["source"] = source
                reply = self._exchange(worker, _encode(request), deadline, cancelled, template_name)
            if reply.get("id") != request["id"]:
                raise self._worker_died(worker, template_name)
        except BaseException:
            # Cancelled, timed out or broken mid-exchange: the worker may still be
            # running the template, and its pipes may hold half a message.
            self._discard()
            raise
        if reply["ok"]:
            worker.known.add(key)
            return str(reply["text"])
        kind = reply["kind"]
        if kind == "memory":
            self._discard()  # its heap may be left fragmented near the limit
        elif kind != "syntax":
            worker.known.add(key)  # it compiled, so the worker keeps it
        raise TemplateFailed(
            self._describe(template_name, kind, reply["message"]), template_name=template_name, kind=kind
        )

    def _await_ready(self, worker: _Worker, cancelled: Callable[[], bool], name: str) -> None:
        """Wait for the worker's first message, sent once its imports and limits are done."""
        try:
            message = self._receive(worker, time.monotonic() + STARTUP_LIMIT_SECONDS, cancelled, name)
        except _Deadline:
            detail = f"did not start within {STARTUP_LIMIT_SECONDS:g} s"
            raise TemplateFailed(self._describe(name, "died", detail), template_name=name, kind="died") from None
        if message.get("ready") is not True:
            raise self._worker_died(worker, name)
        worker.ready = True

    def _exchange(
        self,
        worker: _Worker,
        body: bytes,
        deadline: float,
        cancelled: Callable[[], bool],
        name: str,
    ) -> dict[str, Any]:
        """Send one request and wait for its reply."""
        stdin = worker.process.stdin
        assert stdin is not None
        pending = memoryview(_HEADER.pack(len(body)) + body)
        try:
            while pending:
                self._wait(stdin.fileno(), True, deadline, cancelled)
                try:
                    pending = pending[os.write(stdin.fileno(), pending) :]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    raise self._worker_died(worker, name) from None
            reply = self._receive(worker, deadline, cancelled, name)
        except _Deadline:
            raise TemplateFailed(self._describe(name, "timeout", ""), template_name=name, kind="timeout") from None
        return reply

    def _receive(self, worker: _Worker, deadline: float, cancelled: Callable[[], bool], name: str) -> dict[str, Any]:
        """One message from the worker."""
        stdout = worker.process.stdout
        assert stdout is not None
        received = bytearray()
        size: int | None = None
        while size is None or len(received) < _HEADER.size + size:
            self._wait(stdout.fileno(), False, deadline, cancelled)
            chunk = os.read(stdout.fileno(), 1 << 20)
            if not chunk:
                raise self._worker_died(worker, name)
            received += chunk
            if size is None and len(received) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(received)
                if size > _MAX_REPLY_BYTES:
                    raise self._worker_died(worker, name)
        if len(received) != _HEADER.size + size:  # more than one message: not our protocol
            raise self._worker_died(worker, name)
        message: dict[str, Any] = json.loads(received[_HEADER.size :].decode("utf-8", "surrogatepass"))
        return message

    def _wait(self, fd: int, for_write: bool, deadline: float, cancelled: Callable[[], bool]) -> None:
        """Return when `fd` is ready; raise on close, cancel or the deadline (_Deadline)."""
        while True:
            self._check(cancelled)
            timeout = min(POLL_SECONDS, max(0.0, deadline - time.monotonic()))
            # poll(), not select(): select() cannot watch a descriptor numbered 1024 or more.
            poller = select.poll()
            poller.register(fd, select.POLLOUT if for_write else select.POLLIN)
            if poller.poll(timeout * 1000):  # ready, or an error or hang-up the read or write will meet
                return
            if time.monotonic() >= deadline:
                raise _Deadline()

    def _check(self, cancelled: Callable[[], bool]) -> None:
        if self._closed:
            raise SandboxClosed("the template sandbox was closed")
        if cancelled():
            raise TemplateCancelled("the reply was stopped")
        if self._closed:  # cancelled() itself may have closed the sandbox
            raise SandboxClosed("the template sandbox was closed")

    def _worker_died(self, worker: _Worker, name: str) -> Exception:
        """The exception for a worker that stopped answering: closed, timed out or died."""
        if self._closed:
            return SandboxClosed("the template sandbox was closed")
        with self._state_lock:  # a reap, so not at the same time as close()'s kill
            try:
                code: int | None = worker.process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                code = None
        if code == -signal.SIGALRM:
            # Its own alarm went off first: on a loaded machine this parent was late.
            return TemplateFailed(self._describe(name, "timeout", ""), template_name=name, kind="timeout")
        if code is None:
            how = "stopped answering"
        elif code < 0:
            how = f"was killed by signal {_signal_name(-code)}"
        else:
            how = f"exited with status {code}"
        return TemplateFailed(self._describe(name, "died", how), template_name=name, kind="died")

    def _describe(self, name: str, kind: str, detail: str) -> str:
        """The message for a person: which template, and why it gave no prompt."""
        template = f"The chat template {name}"
        if kind == "raised":
            return f"{template} raised an error: {detail}"
        if kind == "syntax":
            return f"{template} has a syntax error ({detail})."
        if kind == "timeout":
            return f"{template} was stopped after {self.time_limit:g} s: it was still running, and may never end."
        if kind == "too_large":
            return f"{template} produced more than {self.max_output_chars:,} characters and was stopped."
        if kind == "memory":
            return (
                f"{template} ran out of memory: it tried to use more than "
                f"{_bytes(self.memory_headroom)} and was stopped."
            )
        if kind == "died":
            return f"The process rendering the chat template {name} {detail}."
        return f"{template} failed: {detail}"


def _encode(message: dict[str, Any]) -> bytes:
    # Not ASCII-escaped: most non-English text would grow threefold. surrogatepass: a
    # lone surrogate in a message must not make the worker fail.
    return json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _bytes(count: int) -> str:
    """1073741824 -> "1 GiB"."""
    if count >= 1 << 30:
        return f"{count / (1 << 30):g} GiB"
    return f"{count / (1 << 20):g} MiB"
