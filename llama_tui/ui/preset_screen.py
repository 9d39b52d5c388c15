"""Choosing the conversation's preset: a system prompt and the sampling that suits it (F8)."""

from __future__ import annotations

from collections.abc import Mapping

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from llama_tui.engine.presets import NO_PRESET, Preset
from llama_tui.text import shorten
from llama_tui.ui.footer import AppFooter
from llama_tui.ui.literal import literal


def describe(preset: Preset) -> str:
    sampling = ", ".join(f"{key} {value}" for key, value in preset.sampling.items())
    prompt = " ".join(preset.system_prompt.split()) if preset.system_prompt is not None else "your system prompt"
    return shorten(prompt, 91) + (f"  ({sampling})" if sampling else "")


class PresetScreen(ModalScreen[str | None]):
    """Dismisses with the chosen preset's name ("" for none), or None when closed."""

    BINDINGS = [Binding("escape", "close", "Close", id="preset.close", tooltip="Keep the preset as it is")]

    def __init__(self, presets: Mapping[str, Preset], current: str) -> None:
        super().__init__()
        self.presets = presets
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="preset-dialog") as dialog:
            dialog.border_title = "Preset for this conversation"
            options = [Option(Content.assemble(("No preset", "bold"), ": the settings (F6) as they are"), id="\0")]
            for name, preset in self.presets.items():
                marker = "● " if name == self.current else ""
                label = Content.assemble((marker + name, "bold"), "\n", literal(describe(preset)))
                options.append(Option(label, id=name))
            yield OptionList(*options, id="preset-list")
            yield Static(Content("Enter chooses · Esc closes · presets are [presets.NAME] tables in the settings file"),
                         id="preset-help")
        yield AppFooter()

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.presets:
            options.highlighted = list(self.presets).index(self.current) + 1
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or ""
        self.dismiss(NO_PRESET if option_id == "\0" else option_id)

    def action_close(self) -> None:
        self.dismiss(None)
