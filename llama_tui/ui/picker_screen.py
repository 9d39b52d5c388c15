"""The model picker: models on this machine, a path to open, Hugging Face, and servers.

Dismisses with the chosen model (a ModelRef), or None. It never opens a model itself: the app does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static, TabbedContent, TabPane

from llama_tui.engine.catalog import ModelEntry, list_models
from llama_tui.engine.gguf_header import GGUFHeaderError, available_ram_bytes, check_gguf_start, estimate_memory
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import Settings
from llama_tui.formatting import human_bytes
from llama_tui.ui.footer import AppFooter
from llama_tui.ui.hub_panel import DownloadFinished, HubPanel
from llama_tui.ui.literal import literal, literal_cell
from llama_tui.ui.path_suggester import PathInput
from llama_tui.ui.servers_panel import ServerChosen, ServersPanel

log = logging.getLogger(__name__)

SOURCE_LABELS = {"starter": "starter", "hf-cache": "HF cache", "models-folder": "models folder", "recent": "recent"}


@dataclass
class ModelsListed(Message):
    entries: list[ModelEntry]
    error: str | None = None


def memory_note(entry: ModelEntry, n_ctx: int, n_gpu_layers: int) -> tuple[str, bool]:
    """What loading this model will take, and whether that fits in the free memory."""
    if entry.header is None:
        return "", True
    estimate = estimate_memory(entry.header, n_ctx, n_gpu_layers)
    free = available_ram_bytes()
    text = f"Needs about {human_bytes(estimate.total_bytes)}"
    if estimate.vram_bytes:
        text += f" ({human_bytes(estimate.vram_bytes)} of it on the GPU)"
    fits = free is None or estimate.ram_bytes <= free
    if free is not None:
        text += f"; {human_bytes(free)} free." if fits else f"; only {human_bytes(free)} free: it may not fit."
    breakdown = (f"weights {human_bytes(estimate.weights_bytes)}, KV cache {human_bytes(estimate.kv_cache_bytes)}"
                 f" at {n_ctx} tokens, work buffers {human_bytes(estimate.compute_bytes)}")
    return f"{text}\n({breakdown})", fits


class ModelPickerScreen(ModalScreen[ModelRef | None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="picker.close", tooltip="Close the picker without changing the model"),
        # priority: inside an Input, ctrl+x would otherwise cut text.
        Binding("ctrl+x", "cancel_download", "Cancel download", id="picker.cancel_download",
                tooltip="Stop the download; it resumes next time", priority=True),
    ]

    def __init__(
        self,
        recent: Sequence[ModelRef] = (),
        *,
        settings: Settings,
        current: ModelRef | None = None,
        download: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.download = download
        """(repo, file) to start downloading at once, as `llama-tui hf-model REPO FILE` asks."""
        self.recent = list(recent)
        self.settings = settings
        self.n_ctx = settings.load.n_ctx
        self.n_gpu_layers = settings.load.n_gpu_layers
        self.current = current
        self.entries: list[ModelEntry] = []
        self.shown: list[ModelEntry] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label("Open a model", id="picker-title")
            with TabbedContent(id="picker-tabs", initial="picker-hub" if self.download else "picker-local"):
                with TabPane("On this machine", id="picker-local"):
                    yield Input(placeholder="Filter by name, architecture, quantization… (↓ to the list)",
                                id="model-filter")
                    yield DataTable(id="model-table", cursor_type="row", zebra_stripes=True)
                    yield Static(id="model-details")
                    yield PathInput(placeholder="Or type a path to a .gguf file (Tab completes), then Enter",
                                    id="model-path")
                with TabPane("Hugging Face", id="picker-hub"):
                    yield HubPanel(n_ctx=self.n_ctx, n_gpu_layers=self.n_gpu_layers, id="hub-panel")
                with TabPane("Servers", id="picker-servers"):
                    yield ServersPanel([ref for ref in self.recent if ref.kind == "server"],
                                       api_key_env=self.settings.server.api_key_env, id="servers-panel")
            yield Static(Content("Enter opens · Esc closes · Tab moves between fields"), id="picker-help")
        yield AppFooter()

    def on_mount(self) -> None:
        table = self.query_one("#model-table", DataTable)
        table.add_columns("Name", "Arch", "Size", "Quant", "Context", "File", "Where")
        table.loading = True
        self._list_models()
        if self.download is not None:
            # Focus decides the visible tab: stay on Hugging Face, where the progress shows.
            self.query_one("#hub-query").focus()
            self.query_one(HubPanel).download(*self.download)
        else:
            self.query_one("#model-filter").focus()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _list_models(self) -> None:
        try:
            files = [ref.path for ref in self.recent if ref.kind == "file" and ref.path is not None]
            self.post_message(ModelsListed(list_models(files)))
        except Exception as error:  # an unreadable folder or cache must not leave a spinner
            log.error("listing models failed", exc_info=error)
            self.post_message(ModelsListed([], error=f"Could not list the models: {error}"))

    def on_models_listed(self, message: ModelsListed) -> None:
        self.entries = message.entries
        self.query_one("#model-table", DataTable).loading = False
        self._show(self.query_one("#model-filter", Input).value)
        if message.error:
            self.query_one("#model-details", Static).update(literal(message.error))

    # -- the local list ----------------------------------------------------------------

    @on(Input.Changed, "#model-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._show(event.value)

    def _show(self, query: str) -> None:
        words = query.lower().split()
        self.shown = [e for e in self.entries if all(w in _haystack(e) for w in words)]
        table = self.query_one("#model-table", DataTable)
        table.clear()
        for entry in self.shown:
            marker = "● " if self.current is not None and _ref(entry) == self.current else ""
            cells = (marker + entry.name, entry.architecture, entry.size_label, entry.quantization,
                     entry.trained_context, entry.file_size, SOURCE_LABELS.get(entry.source, entry.source))
            table.add_row(*(literal_cell(cell) for cell in cells))
        table.can_focus = bool(self.shown)  # Tab skips an empty table: keys typed there would be lost
        self._describe(self.shown[0] if self.shown else None)

    @on(DataTable.RowHighlighted, "#model-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.shown):
            self._describe(self.shown[event.cursor_row])

    def _describe(self, entry: ModelEntry | None) -> None:
        details = self.query_one("#model-details", Static)
        if entry is None:
            details.update(Content("No models match." if self.entries
                                   else "No models found yet: type a path, or search Hugging Face."))
            return
        lines = [str(entry.path)]
        if entry.problem:
            lines.append(f"⚠ {entry.problem}")
        note, fits = memory_note(entry, self.n_ctx, self.n_gpu_layers)
        if note:
            lines.append(("⚠ " if not fits else "") + note)
        details.update(literal("\n".join(lines)))
        details.set_class(bool(entry.problem) or not fits, "warning")

    def key_down(self) -> None:
        if self.focused is self.query_one("#model-filter") and self.shown:
            self.query_one("#model-table").focus()

    @on(Input.Submitted, "#model-filter")
    def _open_first_match(self) -> None:
        table = self.query_one("#model-table", DataTable)
        if self.shown:
            self._choose(self.shown[max(0, table.cursor_row)])

    @on(DataTable.RowSelected, "#model-table")
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        self._choose(self.shown[event.cursor_row])

    def _choose(self, entry: ModelEntry) -> None:
        self.dismiss(_ref(entry))

    # -- a path, or a download -------------------------------------------------------------

    @on(Input.Submitted, "#model-path")
    def _open_path(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        if not event.value.strip():
            return
        try:
            check_gguf_start(path)  # a missing path or another kind of file: say so, and stay
        except GGUFHeaderError as error:
            self.app.notify(str(error), severity="error")
            return
        # Absolute, but links kept: a Hugging Face cache path links to a blob without the
        # file's name, and llama.cpp finds a split model's other parts by name.
        self.dismiss(ModelRef.file(path))

    def on_download_finished(self, message: DownloadFinished) -> None:
        self.dismiss(ModelRef.file(message.path))

    def on_server_chosen(self, message: ServerChosen) -> None:
        self.dismiss(message.ref)

    def action_cancel_download(self) -> None:
        self.query_one(HubPanel).cancel_download()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_download":
            return self.query_one(HubPanel).downloading
        return True

    def action_close(self) -> None:
        hub = self.query_one(HubPanel)
        if hub.downloading:
            hub.cancel_download()
            self.app.notify("Download cancelled: the part already downloaded is kept, and resumes next time.")
        self.dismiss(None)


def _ref(entry: ModelEntry) -> ModelRef:
    return ModelRef.starter() if entry.source == "starter" else ModelRef.file(entry.path)


def _haystack(entry: ModelEntry) -> str:
    return " ".join((entry.name, entry.architecture, entry.quantization, entry.size_label, str(entry.path),
                     entry.repo_id or "", entry.source)).lower()
