"""The README's options table is made from the app's own parser: the two must agree."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_make_docs():
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "docs" / "make_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_options_table_matches_the_parser() -> None:
    make_docs = load_make_docs()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert make_docs.START in readme and make_docs.END in readme
    assert make_docs.updated(readme) == readme, "README options are stale: run `make docs` and commit"


def test_every_setting_with_a_flag_is_in_the_readme() -> None:
    from llama_tui.engine.settings import SETTINGS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    flags = [flag for spec in SETTINGS.values() for flag in spec.flags]
    assert "--temperature" in flags
    for flag in flags:
        assert re.search(rf"[`, ]{re.escape(flag)}\b", readme), flag
