"""The status bar: model, state, live speed, time to first token, the share of drafted
tokens accepted (speculative decoding, only when drafting happened) and context use."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from llama_tui.engine.events import GenerationStats
from llama_tui.ui.literal import literal


def format_rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


class StatusBar(Horizontal):
    """Every figure here comes from the engine's GenerationStats, never from a UI estimate."""

    def __init__(self, **kwargs: Any) -> None:  # the widget's own: id, classes...
        super().__init__(**kwargs)
        self._shown: dict[str, str] = {}
        """The text each label shows, to skip updates that change nothing."""

    def compose(self) -> ComposeResult:
        yield Label(id="status-model")
        yield Label("starting", id="status-state")
        yield Label("– tok/s", id="status-speed")
        yield Label("TTFT –", id="status-ttft")
        yield Label(id="status-draft")  # shown once a reply drafted tokens
        yield Label(id="status-spacer")
        yield Label("ctx –", id="status-context")
        yield ProgressBar(total=1, show_eta=False, show_percentage=False, id="status-context-bar")

    def _set(self, widget_id: str, text: str) -> None:
        if self._shown.get(widget_id) == text:
            return  # an update re-lays out the screen: skip it when nothing changed
        self._shown[widget_id] = text
        label = self.query_one(f"#{widget_id}", Label)
        # The live figures have fixed widths (styles.tcss), so they need no new layout.
        label.update(literal(text), layout=widget_id in ("status-model", "status-state"))

    def show_model(self, name: str) -> None:
        self._set("status-model", name)

    def show_state(self, state: str) -> None:
        self._set("status-state", state)

    def show_acceptance(self, rate: float | None) -> None:
        shown = rate is not None  # nothing drafted: no figure, rather than one that means nothing
        if rate is not None:
            self._set("status-draft", f"draft {rate:.0%}")
        if self._shown.get("status-draft:display") != str(shown):  # no query nor layout per update
            self._shown["status-draft:display"] = str(shown)
            self.query_one("#status-draft", Label).display = shown

    def show_context(self, used: int, size: int) -> None:
        if size:
            self._set("status-context", f"ctx {used}/{size} · {100 * used / size:.0f}%")
        else:  # a server that does not say its context size (nor, often, its token counts)
            self._set("status-context", f"ctx {used}/?" if used else "ctx –")
        bar = self.query_one("#status-context-bar", ProgressBar)
        bar.update(total=max(size, 1), progress=used)

    def show_stats(self, stats: GenerationStats) -> None:
        self._set("status-speed", f"{format_rate(stats.tokens_per_second)} tok/s")
        ttft = stats.time_to_first_token
        self._set("status-ttft", "TTFT –" if ttft is None else f"TTFT {ttft * 1000:.0f} ms")
        self.show_acceptance(stats.acceptance_rate)
        self.show_context(stats.context_used, stats.context_size)
