"""A real pseudo-terminal for tests: run llama-tui as a user does, read the screen with pyte.

Pilot drives the app inside the test process with a headless driver; some promises can only
be checked from outside: what a signal does, what a paste looks like as bytes from a real
terminal, whether the terminal is given back intact, the exit code. `Terminal` starts a
command on a pty (as its controlling terminal, like a shell would), keeps every byte it
writes, and feeds them to pyte, a VT100 emulator, so a test can read the screen as text.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pyte

KEYS: dict[str, bytes] = {
    "enter": b"\r",
    "escape": b"\x1b",
    "tab": b"\t",
    "backspace": b"\x7f",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "ctrl+j": b"\n",
    "ctrl+n": b"\x0e",
    "ctrl+o": b"\x0f",
    "ctrl+q": b"\x11",
    "ctrl+s": b"\x13",
    "shift+tab": b"\x1b[Z",
    "left": b"\x1b[D",
    "right": b"\x1b[C",
    "ctrl+t": b"\x14",
    "f2": b"\x1bOQ",
    "f3": b"\x1bOR",
    "f4": b"\x1bOS",
    "f6": b"\x1b[17~",
    "f7": b"\x1b[18~",
    "f8": b"\x1b[19~",
    "f9": b"\x1b[20~",
}

PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"

# Synchronized output (DEC mode 2026): the app asks whether the terminal has it, and if so
# brackets each frame in SYNC_START ... SYNC_END, and the terminal shows the frame whole. The
# test terminal has it too, so the screen a test reads never holds half of one frame.
SYNC_QUERY = b"\x1b[?2026$p"
SYNC_SUPPORTED = b"\x1b[?2026;2$y"  # "known, and now reset"
SYNC_START, SYNC_END = b"\x1b[?2026h", b"\x1b[?2026l"

LLAMA_TUI = [sys.executable, "-m", "llama_tui"]
"""The command line a test runs: the package's own entry point, as `llama-tui` runs it."""


def _cut_marker_length(data: bytes | bytearray, marker: bytes) -> int:
    """How many bytes at the end of `data` may be the start of `marker`, cut off by the read."""
    return next((n for n in range(min(len(marker) - 1, len(data)), 0, -1) if data.endswith(marker[:n])), 0)


class Terminal:
    """One command on a pseudo-terminal of `size` (columns, rows)."""

    def __init__(
        self, argv: Sequence[str], *, env: Mapping[str, str], size: tuple[int, int] = (110, 36), cwd: Path | None = None
    ) -> None:
        self.columns, self.rows = size
        self.screen = pyte.Screen(self.columns, self.rows)
        self._stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        self.output = bytearray()
        """Every byte the program wrote to the terminal."""
        self._unshown = bytearray()  # a frame still being written (see SYNC_START)
        self.status: int | None = None
        """The wait status once the program has ended (see exit_code)."""
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal and stdin/out/err
            try:
                if cwd is not None:
                    os.chdir(cwd)
                os.execvpe(argv[0], list(argv), dict(env))
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.resize(self.columns, self.rows)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # -- input ------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def press(self, *keys: str, pause: float = 0.05) -> None:
        """Type keys one at a time, as a person would (named keys, or single characters)."""
        for key in keys:
            self.write(KEYS.get(key) or key.encode())
            time.sleep(pause)

    def type(self, text: str) -> None:
        for character in text:
            self.write(character.encode())
            time.sleep(0.005)

    def paste(self, text: str, *, bracketed: bool = True) -> None:
        """What a terminal sends when text is pasted: one write, bracketed if the app asked."""
        data = text.replace("\n", "\r").encode()
        self.write(PASTE_START + data + PASTE_END if bracketed else data)

    def resize(self, columns: int, rows: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def signal_foreground(self, signum: int) -> None:
        """As the terminal does for ctrl+c or ctrl+z: to every process of the program's group
        (never to ours, which it shares for a moment after the fork)."""
        while (group := os.getpgid(self.pid)) == os.getpgrp():
            time.sleep(0.001)
        os.killpg(group, signum)

    def hang_up(self) -> None:
        """Close the terminal, as closing its window does: the kernel sends SIGHUP."""
        os.close(self.fd)
        self.fd = -1

    # -- output -----------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            self._read_until_closed()
        finally:  # a frame the program never ended is shown as it is
            with self._lock:
                self._stream.feed(bytes(self._unshown))
                self._unshown.clear()

    def _read_until_closed(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if not ready:
                    if self.status is not None:
                        return
                    continue
                data = os.read(self.fd, 65536)
            except (OSError, ValueError):  # EIO: the other side closed; or we hung up
                return
            if not data:
                return
            with self._lock:
                self.output += data
                if SYNC_QUERY in self.output[-len(data) - len(SYNC_QUERY) + 1:]:
                    try:
                        os.write(self.fd, SYNC_SUPPORTED)
                    except OSError:  # hung up meanwhile
                        return
                self._unshown += data
                self._show_whole_frames()

    def _show_whole_frames(self) -> None:
        """Feed pyte everything but a frame begun and not yet ended."""
        pending = self._unshown
        begun = pending.rfind(SYNC_START)
        if begun >= 0 and begun > pending.rfind(SYNC_END):
            shown = begun  # the last frame is still being written
        else:
            shown = len(pending) - _cut_marker_length(pending, SYNC_START)
        self._stream.feed(bytes(pending[:shown]))
        del pending[:shown]

    def text(self) -> str:
        """The screen as lines of text."""
        with self._lock:
            return "\n".join(line.rstrip() for line in self.screen.display)

    def output_text(self) -> str:
        """Everything written so far, decoded, escape sequences left in."""
        with self._lock:
            return self.output.decode("utf-8", errors="replace")

    def wait_for(self, condition: str | re.Pattern[str] | Callable[[], bool], timeout: float = 60) -> None:
        """Wait until the screen shows `condition` (text or pattern), or it returns True."""
        if isinstance(condition, str):
            wanted = condition
            check: Callable[[], bool] = lambda: wanted in self.text()  # noqa: E731  one of three
        elif isinstance(condition, re.Pattern):
            pattern = condition
            check = lambda: pattern.search(self.text()) is not None  # noqa: E731
        else:
            check = condition
        deadline = time.monotonic() + timeout
        while not check():
            if self.poll() is not None and not check():
                raise AssertionError(
                    f"the program ended ({self.describe_status()}) before {condition!r}:\n{self.text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {condition!r}; the screen:\n{self.text()}")
            time.sleep(0.05)

    # -- the process --------------------------------------------------------------------------

    def poll(self) -> int | None:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status

    def wait(self, timeout: float = 30) -> int:
        """Wait for the program to end; its exit code, or -N when signal N ended it."""
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s; the screen:\n{self.text()}")
            time.sleep(0.05)
        self._reader.join(timeout=5)
        return self.exit_code

    @property
    def exit_code(self) -> int:
        assert self.status is not None
        return os.waitstatus_to_exitcode(self.status)

    def describe_status(self) -> str:
        return "running" if self.status is None else f"exit code {self.exit_code}"

    def terminal_modes(self) -> list[int]:
        """termios attributes of the terminal now (iflag, oflag, cflag, lflag, ...)."""
        return termios.tcgetattr(self.fd)

    def descendants(self) -> list[int]:
        """Pids of the program's child processes, grandchildren included."""
        found: list[int] = []
        todo = [self.pid]
        while todo:
            pid = todo.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found += map(int, children)
            todo += map(int, children)
        return found

    def close(self) -> None:
        if self.poll() is None:
            for pid in [*self.descendants(), self.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.wait(timeout=10)
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def app_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment a test runs llama-tui in: its own home, a usual terminal."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LLAMA_TUI_HOME": str(home / "llama-tui"),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "HF_HUB_OFFLINE": "1",
    }
    env.update(extra)
    return env
