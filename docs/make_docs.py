"""Write the parts of the README that the app itself knows, so they stay true.

    .venv/bin/python docs/make_docs.py      # or: make docs

The command-line options table is made from the parser (cli.build_parser), which is made from
the one table of settings (engine/settings.py). tests/test_docs.py fails when the README and
the app disagree: run this, then commit the README.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llama_tui import cli  # noqa: E402

README = ROOT / "README.md"
START, END = "<!-- options: made by docs/make_docs.py -->", "<!-- /options -->"


def options_table() -> str:
    """The main parser's options as a Markdown table: flags and metavar, then the help."""
    parser = cli.build_parser()
    rows = ["| option | meaning |", "| --- | --- |"]
    for action in parser._actions:  # argparse keeps no public list of its options
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        flags = ", ".join(action.option_strings)
        if action.choices and not action.metavar:
            flags += " " + "\\|".join(str(choice) for choice in action.choices)
        elif action.nargs != 0 and not isinstance(action, argparse.BooleanOptionalAction):
            flags += f" {action.metavar or action.dest.upper()}"
        meaning = " ".join((action.help or "").split()).replace("|", "\\|")
        rows.append(f"| `{flags}` | {meaning} |")
    return "\n".join(rows)


def updated(readme: str) -> str:
    block = f"{START}\n{options_table()}\n{END}"
    return re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, readme, flags=re.S)


def main() -> None:
    text = README.read_text(encoding="utf-8")
    new = updated(text)
    if START not in text:
        raise SystemExit(f"README.md has no {START} marker")
    README.write_text(new, encoding="utf-8")
    print("README.md: options table", "updated" if new != text else "unchanged")


if __name__ == "__main__":
    main()
