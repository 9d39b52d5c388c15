"""Giving the terminal back, whatever happens to the app.

The app puts the terminal in raw mode on the alternate screen, with mouse reporting, bracketed
paste and the kitty keyboard protocol on. Textual undoes all that when the app exits, and the
app quits cleanly on SIGTERM, SIGINT and SIGHUP (ui/app.py). Some deaths leave it no chance:
a model file truncated or replaced while loaded makes llama.cpp's memory map raise SIGBUS, a
crafted file can make llama.cpp abort(), the out-of-memory killer sends SIGKILL. The user is
then left with a blank, dead terminal and has to type `reset`.

So `llama-tui` in a terminal runs the app in a child process and waits for it. If the child
dies by a signal, this process puts back the terminal modes saved before the start, turns
the screen modes off, and prints one line saying what happened. Signals sent to this process
are passed on to the app, and a suspended app (ctrl+z) suspends this process too, so the
shell sees the job stop. This module imports only the standard library: it costs the start
of one small interpreter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import termios
from collections.abc import Sequence

CHILD_ENV = "LLAMA_TUI_GUARDED"
"""Set in the app's environment by the guardian, so the app does not start another one."""

# Undo what Textual turns on (textual/drivers/linux_driver.py): pop the kitty keyboard mode,
# mouse reporting (1000, 1003, 1015, 1006, 1016), bracketed paste, focus events, in-band
# resize; line wrap back on; leave the alternate screen; show the cursor; default colours.
RESTORE_SCREEN = (
    "\x1b[<u"
    "\x1b[?1000l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?1016l"
    "\x1b[?2004l\x1b[?1004l\x1b[?2048l"
    "\x1b[?7h"
    "\x1b[?1049l"
    "\x1b[?25h"
    "\x1b[0m"
)

_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)

_WHY: dict[int, str] = {
    signal.SIGBUS: "a bus error (SIGBUS) while reading the model: most often the model file was "
                   "truncated or replaced on disk while it was loaded",
    signal.SIGSEGV: "a crash (SIGSEGV) in native code, most likely llama.cpp",
    signal.SIGABRT: "llama.cpp aborted (SIGABRT), usually on a malformed model file",
    signal.SIGILL: "an illegal instruction (SIGILL): this build of llama.cpp may use CPU "
                   "features this machine lacks",
    signal.SIGKILL: "it was killed (SIGKILL), perhaps by the system running out of memory",
}


def should_guard() -> bool:
    """In a terminal, and not already the guarded app."""
    return not os.environ.get(CHILD_ENV) and os.isatty(0) and os.isatty(1)


def run_guarded(argv: Sequence[str], log_path: str) -> int:
    """Run `python -m llama_tui ARGV` as a child and wait for it; its exit code, or 128+N."""
    try:
        saved_modes = termios.tcgetattr(0)
    except termios.error:
        saved_modes = None
    child = subprocess.Popen([sys.executable, "-m", "llama_tui", *argv], env={**os.environ, CHILD_ENV: "1"})

    def forward(signum: int, _frame: object) -> None:
        if child.returncode is None:
            child.send_signal(signum)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    status = _wait(child.pid)
    child.returncode = os.waitstatus_to_exitcode(status)
    if not os.WIFSIGNALED(status):
        return child.returncode
    signum = os.WTERMSIG(status)
    _restore_terminal(saved_modes)
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    why = _WHY.get(signum, f"it was ended by {name}")
    sys.stderr.write(f"llama-tui stopped: {why}. The log is in {log_path}\n")
    return 128 + signum


def _wait(pid: int) -> int:
    """Wait for the child to end, following it when it is stopped and continued."""
    while True:
        _, status = os.waitpid(pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            return status
        # The app suspended itself (ctrl+z): stop too, so the shell gets the terminal back;
        # when the shell continues us (fg), continue the app.
        os.kill(os.getpid(), signal.SIGSTOP)
        os.kill(pid, signal.SIGCONT)


def _restore_terminal(saved_modes: list[object] | None) -> None:
    if saved_modes is not None:
        try:
            termios.tcsetattr(0, termios.TCSANOW, saved_modes)
        except termios.error:
            pass
    try:
        os.write(1, RESTORE_SCREEN.encode())
    except OSError:  # the terminal is gone (SIGHUP): nothing to give back
        pass


def end_with_parent() -> None:
    """In the app: end (SIGTERM, handled like any quit) if the guardian itself dies."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux
        pass
