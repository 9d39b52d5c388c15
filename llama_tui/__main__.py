"""`llama-tui` and `python -m llama_tui`: the app, in a terminal watched over by guardian.py.

Kept light: the guardian process imports only this, guardian.py and paths.py, never Textual
or llama.cpp.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    try:
        code = _run()
    except KeyboardInterrupt:  # ctrl+c while starting, before the app handles it itself
        code = 128 + signal.SIGINT
    _forget_a_closed_terminal()
    return code


def _run() -> int:
    from llama_tui.guardian import run_guarded, should_guard

    if should_guard() and not set(sys.argv[1:2]) & {"history", "export", "import", "--help", "-h"}:
        from llama_tui.paths import log_file

        return run_guarded(sys.argv[1:], log_file())
    from llama_tui.cli import main as run_app

    return run_app()


def _forget_a_closed_terminal() -> None:
    """After SIGHUP the terminal is gone: flushing to it at exit would fail and turn the exit
    code into 120. Send what is left nowhere instead."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
