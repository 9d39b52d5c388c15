"""Giving the terminal back, whatever happens to the app.

The app puts the terminal in raw mode on the alternate screen, with mouse reporting, bracketed
paste and the kitty keyboard protocol on. Textual undoes all that when the app exits, and the
app quits cleanly on SIGTERM, SIGINT and SIGHUP (ui/app.py). Some deaths leave it no chance:
a model file truncated or replaced while loaded makes llama.cpp's memory map raise SIGBUS, a
crafted file can make llama.cpp abort(), the out-of-memory killer sends SIGKILL. The user is
then left with a blank, dead terminal and has to type `reset`.

So `llama-tui` in a terminal runs the app in a child process and waits for it. The app tells
it, through a pipe, when its own code runs, when it takes the screen over and when it gives it
back. If the child dies by a signal, this process puts back the terminal modes saved before
the start, turns the screen modes off if the app held the screen, and says what happened (not
for a quit the user asked for: ctrl+c, kill, a closed terminal). Signals sent to this process
are passed on to the app, and a suspended app (SIGTSTP) suspends this process too, so the shell
sees the job stop.

The child starts with ctrl+c ignored: a SIGINT while Python imports its site packages ends an
interpreter with "Fatal Python error" and a traceback. A quit asked for before the app's code
runs ends the child at once instead (it has done nothing but import). Only the standard
library is imported here: this costs the start of one small interpreter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_tui.python_child import child_env, python_argv

CHILD_ENV = "LLAMA_TUI_GUARDED"
"""Set in the app's environment by the guardian, so the app does not start another one."""
STATE_FD_ENV = "LLAMA_TUI_STATE_FD"
"""The app writes its state to this file descriptor, a byte each time it changes."""
RUNNING, HOLDS_SCREEN, GAVE_SCREEN_BACK = b"r", b"1", b"0"

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
_ASKED_FOR = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""Deaths the user asked for (before the app could handle them): nothing to explain."""

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
    """In a terminal (on a system with termios), and not already the guarded app."""
    if os.environ.get(CHILD_ENV) or not (os.isatty(0) and os.isatty(1)):
        return False
    try:
        import termios  # noqa: F401
    except ImportError:  # Windows: run the app directly
        return False
    return True


def run_guarded(argv: Sequence[str], log_path: Path) -> int:
    """Run the app with ARGV as a child and wait for it; its exit code, or 128+N."""
    import termios

    try:
        saved_modes: list[Any] | None = termios.tcgetattr(0)
    except termios.error:
        saved_modes = None
    state_read, state_write = os.pipe()
    os.set_blocking(state_read, False)
    child_pid: int | None = None  # None before it starts and once reaped
    state = b""
    quit_while_starting: int | None = None

    def forward(signum: int, _frame: object) -> None:
        nonlocal state, quit_while_starting
        if child_pid is None:
            return
        state = _last_byte(state_read) or state
        if not state and signum in _ASKED_FOR:
            quit_while_starting = signum
            signum = signal.SIGKILL  # still importing: nothing to save, nothing to print
        try:  # os.kill, not Popen.send_signal: that would reap the child here
            os.kill(child_pid, signum)
        except ProcessLookupError:
            pass

    # The child inherits "ignored" for ctrl+c (see above); a handler would not be inherited.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # ctrl+z (SIGTSTP to the whole job) is the app's to handle: it gives the screen back,
    # then stops, and only then do we stop (see _wait). Stopping here at once would hand the
    # terminal to the shell while the app is still restoring it.
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)
    child = subprocess.Popen(
        python_argv("-m", "llama_tui", *argv),
        env=child_env({CHILD_ENV: "1", STATE_FD_ENV: str(state_write)}),
        pass_fds=(state_write,),
    )
    child_pid = child.pid
    for forwarded in _FORWARDED:
        signal.signal(forwarded, forward)
    os.close(state_write)
    status = _wait(child.pid)
    child_pid = None
    child.returncode = os.waitstatus_to_exitcode(status)
    held_screen = (_last_byte(state_read) or state) == HOLDS_SCREEN
    os.close(state_read)
    if not os.WIFSIGNALED(status):
        return child.returncode
    signum = quit_while_starting or os.WTERMSIG(status)
    _restore_terminal(saved_modes, held_screen)
    if signum not in _ASKED_FOR:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        why = _WHY.get(signum, f"it was ended by {name}")
        writable = os.access(log_path if log_path.exists() else log_path.parent, os.W_OK)
        where = f"The log is in {log_path}" if writable else "There is no log file"
        sys.stderr.write(f"llama-tui stopped: {why}. {where}\n")
    return 128 + signum


def _wait(pid: int) -> int:
    """Wait for the child to end, following it when it is stopped and continued."""
    while True:
        try:
            _, status = os.waitpid(pid, os.WUNTRACED)
        except ChildProcessError:  # reaped elsewhere after all: it has ended
            return 0
        if not os.WIFSTOPPED(status):
            return status
        if not _still_stopped(pid):
            continue  # a stop already undone (ctrl+z then fg at once): nothing to follow
        # The app is suspended: stop too, so the shell gets the terminal back. A shell's `fg`
        # continues the whole job, the app with us; only if we alone were continued (kill
        # -CONT) does the app wait for us. Continuing it twice would resume Textual twice.
        os.kill(os.getpid(), signal.SIGSTOP)
        for _ in range(20):
            if not _still_stopped(pid):
                break
            time.sleep(0.01)
        else:
            os.kill(pid, signal.SIGCONT)


def _still_stopped(pid: int) -> bool:
    try:
        # /proc/PID/stat: "pid (name) STATE ..."; the name may hold spaces and parentheses.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): assume it is
    return state in ("T", "t")


def _last_byte(fd: int) -> bytes:
    last = b""
    try:
        while chunk := os.read(fd, 4096):
            last = chunk[-1:]
    except BlockingIOError:
        pass
    return last


def _restore_terminal(saved_modes: list[Any] | None, held_screen: bool) -> None:
    import termios

    if saved_modes is not None:
        try:
            termios.tcsetattr(0, termios.TCSANOW, saved_modes)
        except termios.error:
            pass
    if not held_screen:  # leaving an alternate screen never entered would move the cursor
        return
    try:
        os.write(1, RESTORE_SCREEN.encode())
    except OSError:  # the terminal is gone (SIGHUP): nothing to give back
        pass


def tell_guardian(state: bytes) -> None:
    """In the app: RUNNING (its code runs and handles ctrl+c), HOLDS_SCREEN, GAVE_SCREEN_BACK."""
    fd = os.environ.get(STATE_FD_ENV)
    if fd:
        try:
            os.write(int(fd), state)
        except (OSError, ValueError):
            pass


def handle_ctrl_c() -> None:
    """In the app, first thing: ctrl+c was ignored while Python started; from now on it
    raises KeyboardInterrupt (and, once the app runs, quits it)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tell_guardian(RUNNING)


def end_with_parent() -> None:
    """In the app: end (SIGTERM, handled like any quit) if the guardian itself dies."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux
        pass
