"""The settings panel: a form over AppConfig, checked as you type, saved with ctrl+s.

It only edits a copy: it dismisses with the new AppConfig (or None on cancel) and leaves
saving the file and reloading the model to whoever opened it. Every check is the engine's
`validate_field`, the same one the settings file goes through.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Select, TextArea

from llama_tui.engine.chat_templates import chat_format_names
from llama_tui.engine.config import (
    GPU_INSTALL_HINT,
    LOAD_FIELDS,
    AppConfig,
    format_overrides,
    gpu_offload_supported,
    validate_field,
)
from llama_tui.engine.settings import available_cores, default_batch_threads, default_threads
from llama_tui.ui.footer import AppFooter

AUTO = ""
"""The chat-format choice that lets the engine pick (the file's own template, else by architecture)."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    """The setting's name, as in validate_field and the settings file."""
    label: str
    """What the form calls it."""
    hint: str
    """Shown next to the field while its value is valid."""


def _load_fields(gpu_offload: bool) -> list[FieldSpec]:
    gpu_hint = (
        "-1 offloads every layer"
        if gpu_offload
        else "no effect in this CPU-only build (see above)"
    )
    return [
        FieldSpec("n_ctx", "Context length", "tokens; llama.cpp rounds up to a multiple of 256"),
        FieldSpec("n_gpu_layers", "GPU layers", gpu_hint),
        FieldSpec("n_threads", "Threads", f"for generating; empty: {default_threads()} (cores but one)"),
        FieldSpec("n_threads_batch", "Prompt threads", f"for reading the prompt; empty: {default_batch_threads()}"),
        FieldSpec("overrides", "Metadata overrides", "GGUF metadata, KEY=VALUE, KEY=VALUE"),
    ]


SAMPLING_FIELDS = [
    FieldSpec("seed", "Seed", "the same seed and prompt give the same reply"),
    FieldSpec("temperature", "Temperature", "0 always picks the likeliest token"),
    FieldSpec("top_p", "Top p", "keep the likeliest tokens up to this probability; 1 turns it off"),
    FieldSpec("top_k", "Top k", "keep this many likeliest tokens; 0 turns it off"),
    FieldSpec("min_p", "Min p", "drop tokens less likely than this share of the likeliest; 0 turns it off"),
    FieldSpec("repeat_penalty", "Repeat penalty", "above 1 discourages repeating; 1 turns it off"),
    FieldSpec("max_reply_tokens", "Max reply tokens", "empty: no limit (until the context is full)"),
]


class FieldValidator(Validator):
    """Runs validate_field for one setting, so Input marks itself -invalid."""

    def __init__(self, screen: SettingsScreen, name: str) -> None:
        super().__init__()
        self.settings_screen = screen
        self.field_name = name

    def validate(self, value: str) -> ValidationResult:
        _, error = validate_field(self.field_name, value, n_ctx=self.settings_screen.context_length())
        return self.success() if error is None else self.failure(error)


def _input_text(config: AppConfig, name: str) -> str:
    if name == "overrides":
        return format_overrides(config.load.overrides)
    source = config.load if name in LOAD_FIELDS else config.sampling
    value = getattr(source, name)
    return "" if value is None else str(value)


class SettingsScreen(ModalScreen[AppConfig | None]):
    """Every setting in one form; dismisses with the new AppConfig, or None on cancel."""

    CSS_PATH = "settings.tcss"
    AUTO_FOCUS = "#settings-n_ctx"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="settings.save", tooltip="Save the settings and close"),
        Binding("escape", "cancel", "Cancel", id="settings.cancel", tooltip="Close without changing anything"),
    ]

    def __init__(self, config: AppConfig, *, gpu_offload: bool | None = None) -> None:
        super().__init__()
        self.config = config
        """The settings the form started from."""
        self.gpu_offload = gpu_offload_supported() if gpu_offload is None else gpu_offload
        """Whether this llama.cpp build can offload layers to a GPU."""
        self.specs = {spec.name: spec for spec in [*_load_fields(self.gpu_offload), *SAMPLING_FIELDS]}
        """The text fields, by setting name."""

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="settings-dialog") as dialog:
            dialog.border_title = "Settings"
            with VerticalScroll(id="settings-form", can_focus=False):
                yield self._group_title("Model loading", "changes reload the model")
                yield Label(Content(self._gpu_status()), id="settings-gpu", classes="settings-gpu")
                for name in ("n_ctx", "n_gpu_layers", "n_threads", "n_threads_batch"):
                    yield self._row(self.specs[name])
                yield self._chat_format_row()
                yield self._row(self.specs["overrides"])
                yield self._group_title("Sampling", "applies to the next reply")
                for spec in SAMPLING_FIELDS:
                    yield self._row(spec)
                yield self._group_title("Chat", "applies from the next message")
                yield Label(Content("System prompt"), classes="settings-label")
                yield TextArea(self.config.system_prompt, id="settings-system_prompt", soft_wrap=True)
            yield Label(Content(""), id="settings-status")
            with Horizontal(id="settings-buttons"):
                yield Button("Save", id="settings-save", variant="primary", compact=True)
                yield Button("Cancel", id="settings-cancel", compact=True)
                yield Label(Content("ctrl+s save · esc cancel · tab next field"), id="settings-keys")
        yield AppFooter()

    def _group_title(self, title: str, effect: str) -> Horizontal:
        return Horizontal(
            Label(Content(title), classes="settings-group-title"),
            Label(Content(effect), classes="settings-group-effect"),
            classes="settings-group",
        )

    def _row(self, spec: FieldSpec) -> Horizontal:
        field = Input(
            _input_text(self.config, spec.name),
            id=f"settings-{spec.name}",
            validators=[FieldValidator(self, spec.name)],
            classes="settings-input",
            compact=True,
        )
        return Horizontal(
            Label(Content(spec.label), classes="settings-label"),
            field,
            Label(Content(spec.hint), id=f"settings-{spec.name}-note", classes="settings-note"),
            classes="settings-row",
        )

    def _chat_format_row(self) -> Horizontal:
        options = [(Content("auto"), AUTO), *((Content(name), name) for name in chat_format_names())]
        select = Select(options, value=self.config.load.chat_format or AUTO, allow_blank=False,
                        id="settings-chat_format", classes="settings-input", compact=True)
        hint = "auto: the file's own template, else one picked by architecture"
        return Horizontal(
            Label(Content("Chat format"), classes="settings-label"),
            select,
            Label(Content(hint), classes="settings-note"),
            classes="settings-row",
        )

    def _gpu_status(self) -> str:
        if self.gpu_offload:
            return "This llama.cpp build can offload layers to a GPU."
        return f"This llama.cpp build runs on the CPU only. For a GPU build: {GPU_INSTALL_HINT}"

    def on_mount(self) -> None:
        for name in self.specs:
            self._check(name)

    # -- checking -------------------------------------------------------------------------

    def input_for(self, name: str) -> Input:
        return self.query_one(f"#settings-{name}", Input)

    def context_length(self) -> int | None:
        """The context length typed so far, if valid: max_reply_tokens must fit in it."""
        try:
            raw = self.input_for("n_ctx").value
        except NoMatches:  # not composed yet
            return self.config.load.n_ctx
        value, error = validate_field("n_ctx", raw)
        return value if error is None else None  # type: ignore[return-value]

    def _check(self, name: str) -> str | None:
        """Validate one field, mark it and show its error, caution or hint; returns the error."""
        field = self.input_for(name)
        result = field.validate(field.value)
        error = None if result is None or result.is_valid else "; ".join(result.failure_descriptions)
        note = self.query_one(f"#settings-{name}-note", Label)
        caution = None if error else self._caution(name, field.value)
        note.update(Content(error or caution or self.specs[name].hint))
        note.set_class(error is not None, "-error")
        note.set_class(caution is not None, "-caution")
        return error

    def _caution(self, name: str, raw: str) -> str | None:
        """A warning for a valid but unwise value."""
        if name in ("n_threads", "n_threads_batch"):
            value, _ = validate_field(name, raw)
            cores = available_cores()
            if isinstance(value, int) and value > cores:
                return f"more threads than this machine's {cores} cores slows llama.cpp down"
        if name == "n_gpu_layers" and not self.gpu_offload and raw.strip() not in ("", "0"):
            return "no effect: this llama.cpp build is CPU-only (see above for a GPU build)"
        return None

    @on(Input.Changed, ".settings-input")
    def _changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("settings-")
        if name in self.specs:
            self._check(name)
        if name == "n_ctx":
            self._check("max_reply_tokens")
        self.query_one("#settings-status", Label).update(Content(""))

    # -- closing --------------------------------------------------------------------------

    def collect(self) -> AppConfig | None:
        """The AppConfig the form describes, or None (with the fields marked) if any is invalid."""
        invalid = [name for name in self.specs if self._check(name) is not None]
        if invalid:
            labels = ", ".join(self.specs[name].label for name in invalid)
            self.query_one("#settings-status", Label).update(Content(f"Fix the marked fields first: {labels}"))
            self.input_for(invalid[0]).focus()
            return None
        n_ctx = self.context_length()
        values = {name: validate_field(name, self.input_for(name).value, n_ctx=n_ctx)[0] for name in self.specs}
        chat_format = self.query_one("#settings-chat_format", Select).value
        values["chat_format"] = chat_format if isinstance(chat_format, str) and chat_format != AUTO else None
        load = {name: value for name, value in values.items() if name in LOAD_FIELDS}
        sampling = {name: value for name, value in values.items() if name not in LOAD_FIELDS}
        return replace(
            self.config,
            load=replace(self.config.load, **load),  # type: ignore[arg-type]
            sampling=replace(self.config.sampling, **sampling),  # type: ignore[arg-type]
            system_prompt=self.query_one("#settings-system_prompt", TextArea).text,
        )

    def action_save(self) -> None:
        config = self.collect()
        if config is None:
            self.app.bell()
            return
        self.dismiss(config)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#settings-save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#settings-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()
