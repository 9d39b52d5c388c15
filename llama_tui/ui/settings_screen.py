"""The settings panel: a form over the one table of settings, checked as you type, saved with ctrl+s.

Every row is made from engine.settings.SETTINGS (label, hint, kind, range), in its sections'
order; every check is the engine's `validate_field`, the same one the settings file and the
command line go through. The panel only edits a copy: it dismisses with the new Settings (or
None on cancel) and leaves saving the file and reloading the model to whoever opened it.

With a model on a server open, the settings it does not use (how llama.cpp loads a local
model; sampling fields that server's API has no room for) say so in their notes.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Select, Switch, TextArea

from llama_tui.engine.backend import Capabilities
from llama_tui.engine.config import GPU_INSTALL_HINT, format_overrides, gpu_offload_supported, validate_field
from llama_tui.engine.settings import SECTIONS, SETTINGS, Backend, Setting, Settings, available_cores
from llama_tui.ui.footer import AppFooter
from llama_tui.ui.literal import literal
from llama_tui.ui.text_box import TextBox

AUTO = ""
"""A choice left to the engine (the chat format's "auto")."""

SECTION_TITLES = {
    "load": ("Model loading", "changes reload the model"),
    "sampling": ("Sampling", "applies to the next reply"),
    "chat": ("Chat", "applies from the next message"),
    "server": ("Server models", "for a model on an OpenAI-compatible server"),
}


class FieldValidator(Validator):
    """Runs validate_field for one setting, so Input marks itself -invalid."""

    def __init__(self, screen: SettingsScreen, name: str) -> None:
        super().__init__()
        self.settings_screen = screen
        self.field_name = name

    def validate(self, value: str) -> ValidationResult:
        _, error = validate_field(self.field_name, value)
        return self.success() if error is None else self.failure(error)


def input_text(setting: Setting, value: Any) -> str:
    """A value as the form shows it: empty for None, KEY=VALUE pairs for overrides."""
    if setting.kind == "overrides":
        return format_overrides(value)
    return "" if value is None else str(value)


class SettingsScreen(ModalScreen[Settings | None]):
    """Every setting in one form; dismisses with the new Settings, or None on cancel."""

    CSS_PATH = "settings.tcss"
    AUTO_FOCUS = "#settings-n_ctx"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="settings.save", tooltip="Save the settings and close"),
        Binding("escape", "cancel", "Cancel", id="settings.cancel", tooltip="Close without changing anything"),
    ]

    def __init__(self, settings: Settings, *, gpu_offload: bool | None = None, model_name: str = "",
                 backend: Backend | None = None, capabilities: Capabilities | None = None) -> None:
        """`model_name`, `backend`, `capabilities`: the model open now, if any, so the settings it
        does not use can say so."""
        super().__init__()
        self.settings = settings
        """The settings the form started from."""
        self.gpu_offload = gpu_offload_supported() if gpu_offload is None else gpu_offload
        """Whether this llama.cpp build can offload layers to a GPU."""
        self.model_name = model_name
        self.backend = backend
        self.capabilities = capabilities
        self.typed = [s for s in SETTINGS.values() if s.kind in ("int", "float", "overrides")
                      or (s.kind == "text" and not s.multiline)]
        """The settings typed into an Input, checked as typed."""

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="settings-dialog") as dialog:
            dialog.border_title = "Settings"
            with VerticalScroll(id="settings-form", can_focus=False):
                for section in SECTIONS:
                    title, effect = SECTION_TITLES[section]
                    if section == "load" and self.backend == "server":
                        effect = f"for local models only: not used by {self.model_name}"
                    yield self._group_title(title, effect)
                    if section == "load":
                        yield Label(Content(self._gpu_status()), id="settings-gpu", classes="settings-gpu")
                    for setting in (s for s in SETTINGS.values() if s.section == section):
                        yield from self._row(setting)
            yield Label(Content(""), id="settings-status")
            with Horizontal(id="settings-buttons"):
                yield Button("Save", id="settings-save", variant="primary", compact=True)
                yield Button("Cancel", id="settings-cancel", compact=True)
                yield Label(Content("ctrl+s save · esc cancel · tab next field"), id="settings-keys")
        yield AppFooter()

    def _group_title(self, title: str, effect: str) -> Horizontal:
        return Horizontal(
            Label(Content(title), classes="settings-group-title"),
            Label(literal(effect), classes="settings-group-effect"),  # may name the model
            classes="settings-group",
        )

    def _row(self, s: Setting) -> ComposeResult:
        value = self.settings.get(s.name)
        label = Label(Content(s.label), classes="settings-label")
        field_id = f"settings-{s.name}"
        if s.multiline:
            yield label
            yield TextBox(value, id=field_id, soft_wrap=True)
            return
        if s.kind == "choice":
            assert s.choices is not None
            options = [(Content(name), name) for name in s.choices()]
            if s.empty:  # the value None, e.g. the automatic chat format
                options.insert(0, (Content(s.empty), AUTO))
            field: Any = Select(options, value=value or AUTO, allow_blank=False, id=field_id,
                                classes="settings-input", compact=True)
        elif s.kind == "bool":
            field = Switch(bool(value), id=field_id, classes="settings-switch")
        else:
            field = Input(input_text(s, value), id=field_id, validators=[FieldValidator(self, s.name)],
                          classes="settings-input", compact=True)
        row = Horizontal(label, field, Label(literal(self._hint(s)), id=f"{field_id}-note", classes="settings-note"),
                         classes="settings-row")
        row.set_class(self.unused(s) is not None, "-unused")
        yield row

    def unused(self, s: Setting) -> str | None:
        """Why the model open now does not use `s`, or None if it does (or none is open)."""
        if self.backend == "server":
            if "server" not in s.backends:
                why = "its server loads the model" if s.section == "load" else "for local models only"
                return f"not used by {self.model_name}: {why}"
            caps = self.capabilities
            if caps is not None and s.section == "sampling" and s.name != "seed" and s.name not in caps.sampling:
                return f"not sent to {self.model_name}: its server's API has no such field"
        return None

    def _hint(self, s: Setting) -> str:
        unused = self.unused(s)
        if unused is not None:
            return unused
        if s.name == "n_gpu_layers" and not self.gpu_offload:
            return "no effect in this CPU-only build (see above)"
        if s.machine_default is not None:
            return f"{s.hint}; empty: {s.machine_default()}"
        if s.empty:
            return f"{s.hint}; empty: {s.empty}"
        return s.hint

    def _gpu_status(self) -> str:
        if self.gpu_offload:
            return "This llama.cpp build can offload layers to a GPU."
        return f"This llama.cpp build runs on the CPU only. For a GPU build: {GPU_INSTALL_HINT}"

    def on_mount(self) -> None:
        for s in self.typed:
            self._check(s.name)

    # -- checking -------------------------------------------------------------------------

    def input_for(self, name: str) -> Input:
        return self.query_one(f"#settings-{name}", Input)

    def _check(self, name: str) -> str | None:
        """Validate one field, mark it and show its error, caution or hint; returns the error."""
        field = self.input_for(name)
        result = field.validate(field.value)
        error = None if result is None or result.is_valid else "; ".join(result.failure_descriptions)
        note = self.query_one(f"#settings-{name}-note", Label)
        caution = None if error else self._caution(name, field.value)
        note.update(literal(error or caution or self._hint(SETTINGS[name])))  # a hint may name the model
        note.set_class(error is not None, "-error")
        note.set_class(caution is not None, "-caution")
        return error

    def _caution(self, name: str, raw: str) -> str | None:
        """A warning for a valid but unwise value (for the model open now)."""
        if self.unused(SETTINGS[name]) is not None:
            return None
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
        if name in SETTINGS:
            self._check(name)
        self.query_one("#settings-status", Label).update(Content(""))

    # -- closing --------------------------------------------------------------------------

    def collect(self) -> Settings | None:
        """The Settings the form describes, or None (with the fields marked) if any is invalid."""
        invalid = [s for s in self.typed if self._check(s.name) is not None]
        if invalid:
            labels = ", ".join(s.label for s in invalid)
            self.query_one("#settings-status", Label).update(Content(f"Fix the marked fields first: {labels}"))
            self.input_for(invalid[0].name).focus()
            return None
        values: dict[str, Any] = {}
        for s in SETTINGS.values():
            widget = self.query_one(f"#settings-{s.name}")
            if isinstance(widget, Input):
                values[s.name] = validate_field(s.name, widget.value)[0]
            elif isinstance(widget, TextArea):
                values[s.name] = widget.text
            elif isinstance(widget, Switch):
                values[s.name] = widget.value
            elif isinstance(widget, Select):
                values[s.name] = widget.value if isinstance(widget.value, str) and widget.value != AUTO else None
        return self.settings.with_values(values)

    def action_save(self) -> None:
        settings = self.collect()
        if settings is None:
            self.app.bell()
            return
        self.dismiss(settings)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#settings-save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#settings-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()
