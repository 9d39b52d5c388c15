"""Starting another Python process of this app (the app under the guardian, the template
worker, the trial load of a model file) so that it imports the same code, never the user's.

`python -m` and `python -c` put the current directory first on the import path, so a stray
`textual.py` or `json.py` where the user started llama-tui would be imported instead of the
real module. `-P` (Python 3.11) leaves the current directory out. When llama-tui itself was
found through the current directory (run from a checkout without installing it), its folder
is passed on in PYTHONPATH so the child still finds it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def python_argv(*args: str) -> list[str]:
    return [sys.executable, "-P", *args]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    installed = any(entry and Path(entry).resolve() == _PACKAGE_ROOT for entry in sys.path[1:])
    if not installed:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    return env
