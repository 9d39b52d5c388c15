"""Trying a change to the app from outside, without editing it: the evidence behind the fixes
suggested in docs/benchmarks.md. Used by decode_speed.py and profile_app.py (--what-if SPEC).

SPEC is comma-separated KEY=VALUE:
  switch=S             sys.setswitchinterval(S) (how soon a thread waiting for the GIL gets it)
  frame=S              ReplyBuffer's FRAME_SECONDS (the least time between two drains)
  budget=F             ReplyBuffer's UI_CPU_BUDGET (the share of a core the UI may use while streaming)
  css=FILE             another stylesheet for the app
  css-without=TEXT     the app's own stylesheet less the rules whose selector contains TEXT
  status=quiet         status bar labels updated only when their text changes, without layout
  reply=off            a diagnostic, not a fix: the reply's Markdown is never updated
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path

import benchlib


def stylesheet_without(text: str) -> Path:
    """A copy of the app's stylesheet without the rules whose selector contains `text`."""
    import llama_tui

    source = (Path(llama_tui.__file__).parent / "styles.tcss").read_text()
    kept = re.sub(r"[^{}]*\{[^{}]*\}", lambda m: "" if text in m.group().split("{")[0] else m.group(), source)
    path = benchlib.RESULTS / "what-if-styles.tcss.tmp"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(kept)
    return path


@contextlib.contextmanager
def what_if(spec: str):
    """Run the app with a change tried from outside, without editing it, e.g.
    "switch=0.001,frame=0.1,css=FILE": sys.setswitchinterval, ReplyBuffer's FRAME_SECONDS,
    another stylesheet; "css-without=:last-child" uses the app's own stylesheet less the
    rules whose selector contains that text; "status=quiet" makes the status bar skip
    unchanged labels and layout; "reply=off" (a diagnostic, not a fix) drops the reply's
    Markdown updates, leaving the rest of the UI's work. Yields the app class to use."""
    from textual.content import Content
    from textual.widgets import Label

    from llama_tui.ui import reply_buffer
    from llama_tui.ui.app import LlamaApp
    from llama_tui.ui.markdown_view import MarkdownView
    from llama_tui.ui.status_bar import StatusBar

    changes = dict(part.split("=", 1) for part in spec.split(",") if part)
    old_switch, old_frame, old_budget = sys.getswitchinterval(), reply_buffer.FRAME_SECONDS, reply_buffer.UI_CPU_BUDGET
    old_set, old_append = StatusBar._set, MarkdownView.append

    def quiet_set(self, widget_id: str, text: str) -> None:
        label = self.query_one(f"#{widget_id}", Label)
        if getattr(label, "_what_if_text", None) != text:
            label._what_if_text = text
            label.update(Content(text), layout=False)

    def no_append(self, fragment: str) -> None:
        pass

    app_class = LlamaApp
    if "css-without" in changes:
        changes["css"] = str(stylesheet_without(changes["css-without"]))
    if "css" in changes:
        css = str(Path(changes["css"]).resolve())
        app_class = type("LlamaAppWhatIf", (LlamaApp,), {"CSS_PATH": css})
    try:
        if "switch" in changes:
            sys.setswitchinterval(float(changes["switch"]))
        if "frame" in changes:
            reply_buffer.FRAME_SECONDS = float(changes["frame"])
        if "budget" in changes:
            reply_buffer.UI_CPU_BUDGET = float(changes["budget"])
        if changes.get("status") == "quiet":
            StatusBar._set = quiet_set
        if changes.get("reply") == "off":
            MarkdownView.append = no_append
        yield app_class
    finally:
        sys.setswitchinterval(old_switch)
        reply_buffer.FRAME_SECONDS, reply_buffer.UI_CPU_BUDGET = old_frame, old_budget
        StatusBar._set, MarkdownView.append = old_set, old_append
