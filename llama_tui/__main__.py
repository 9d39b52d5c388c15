"""`llama-tui` and `python -m llama_tui`: the app, in a terminal watched over by guardian.py.

Kept light: the guardian process imports only this, guardian.py and paths.py, never Textual
or llama.cpp.
"""

from __future__ import annotations

import sys


def main() -> int:
    from llama_tui.guardian import run_guarded, should_guard

    if should_guard():
        from llama_tui.paths import log_file

        return run_guarded(sys.argv[1:], str(log_file()))
    from llama_tui.cli import main as run_app

    return run_app()


if __name__ == "__main__":
    sys.exit(main())
