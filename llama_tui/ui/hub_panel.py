"""The picker's Hugging Face tab: search GGUF repos, list a repo's files, download one.

While the search box is empty it shows the Recommended list (engine.recommended): a few
well-known chat models with their download size and memory need; Enter on one downloads it
like a search result. All network calls run in thread workers through `engine.hub`; the UI
only shows what they post back. A download can be cancelled, and the next attempt resumes
where it stopped.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Input, ProgressBar, Static

from llama_tui.engine import hub, recommended
from llama_tui.formatting import human_bytes, human_seconds
from llama_tui.ui.literal import literal, literal_cell
from llama_tui.ui.messages import DownloadStateChanged

log = logging.getLogger(__name__)


@dataclass
class SearchDone(Message):
    repos: list[hub.RepoSummary]


@dataclass
class FilesListed(Message):
    repo_id: str
    files: list[hub.RepoFile]


@dataclass
class HubFailed(Message):
    message: str


@dataclass
class DownloadProgressed(Message):
    progress: hub.DownloadProgress

    def can_replace(self, message: Message) -> bool:
        # Only the newest progress matters: a slow UI skips stale ones.
        return isinstance(message, DownloadProgressed)


@dataclass
class DownloadFinished(Message):
    """Bubbles up to the picker, which opens the file."""

    path: Path


class HubPanel(Vertical):
    def __init__(self, *, n_ctx: int = 4096, n_gpu_layers: int = 0, **kwargs: Any) -> None:  # kwargs: id, classes...
        super().__init__(**kwargs)
        self.n_ctx = n_ctx
        """The context length models will be loaded with: the Recommended memory figures use it."""
        self.n_gpu_layers = n_gpu_layers
        self._fits: list[recommended.Fit] = []
        self._repo_id: str | None = None
        self._files: list[hub.RepoFile] = []
        self._repos: list[hub.RepoSummary] = []
        self._cancel: threading.Event | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search Hugging Face for GGUF models, then Enter (↓ to the recommended ones)",
                    id="hub-query")
        yield Static(Content("Recommended for a first try"), id="hub-recommended-title")
        yield DataTable(id="hub-recommended", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="hub-repos", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="hub-files", cursor_type="row", zebra_stripes=True)
        yield ProgressBar(id="hub-progress", show_eta=False)
        yield Static(id="hub-status")

    def on_mount(self) -> None:
        self.query_one("#hub-repos", DataTable).add_columns("Repository", "Downloads", "Likes", "")
        self.query_one("#hub-files", DataTable).add_columns("File", "Quant", "Size")
        self.query_one("#hub-recommended", DataTable).add_columns("Model", "Params", "Thinks", "Download", "Memory", "")
        self.query_one("#hub-progress").display = False
        self._show_recommended(True)

    def on_unmount(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#hub-status", Static)
        status.update(literal(text))
        status.set_class(error, "error")

    # -- the recommended list ------------------------------------------------------------

    def _show_recommended(self, show: bool) -> None:
        """The Recommended list in place of the search results (while the search box is
        empty), its memory figures against the memory free now."""
        for widget in self.query("#hub-recommended-title, #hub-recommended"):
            widget.display = show
        for widget in self.query("#hub-repos, #hub-files"):
            widget.display = not show
        if not show:
            return
        free = recommended.available_ram_bytes()
        self._fits = [recommended.fit(model, self.n_ctx, self.n_gpu_layers, free) for model in recommended.RECOMMENDED]
        table = self.query_one("#hub-recommended", DataTable)
        row = table.cursor_row
        table.clear()
        for model, fit in zip(recommended.RECOMMENDED, self._fits, strict=True):
            cells = (model.name, model.parameters, "thinks" if model.thinks else "", human_bytes(model.size_bytes),
                     recommended.gib(fit.needed), f"⚠ {fit.warning}" if fit.warning else "")
            table.add_row(*(literal_cell(cell) for cell in cells))
        table.move_cursor(row=max(0, row))
        self._describe_recommended(table.cursor_row)

    def _describe_recommended(self, row: int) -> None:
        if not 0 <= row < len(recommended.RECOMMENDED) or self.downloading:
            return
        model, fit = recommended.RECOMMENDED[row], self._fits[row]
        estimate = recommended.memory_needed(model, self.n_ctx, self.n_gpu_layers)
        if fit.warning:
            free = f"⚠ {fit.warning}."
        else:
            free = f"{recommended.gib(fit.free)} free." if fit.free is not None else ""
        lines = [
            f"{model.repo_id} · {model.filename}",
            f"{model.about} Licence: {model.licence}.",
            f"Needs about {recommended.gib(fit.needed)}: the file, a KV cache of "
            f"{human_bytes(estimate.kv_cache_bytes)} at {self.n_ctx} tokens and work buffers of "
            f"{human_bytes(estimate.compute_bytes)}" + (f"; {free}" if free else "."),
            "Enter downloads and opens it; type to search Hugging Face instead.",
        ]
        self._status("\n".join(lines), error=not fit.fits)

    @on(Input.Changed, "#hub-query")
    def _query_changed(self, event: Input.Changed) -> None:
        empty = not event.value.strip()
        if empty != self.query_one("#hub-recommended").display:
            self._show_recommended(empty)
            if not empty and not self.downloading:
                self._status("Enter searches.")

    @on(DataTable.RowHighlighted, "#hub-recommended")
    def _recommended_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._describe_recommended(event.cursor_row)

    @on(DataTable.RowSelected, "#hub-recommended")
    def _recommended_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        model = recommended.RECOMMENDED[event.cursor_row]
        self.download(model.repo_id, model.filename, model.size_bytes)

    def key_down(self, event: events.Key) -> None:
        """↓ in the search box reaches the list under it (on its highlighted row: the key
        stops here, or the list's own ↓ binding would move on to the next one)."""
        if self.screen.focused is self.query_one("#hub-query"):
            target = "#hub-recommended" if self.query_one("#hub-recommended").display else "#hub-repos"
            self.query_one(target).focus()
            event.stop()

    # -- search and listing -------------------------------------------------------------

    @on(Input.Submitted, "#hub-query")
    def start_search(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if query:
            self._status(f"Searching for “{query}”…")
            self._search(query)
        else:
            self.query_one("#hub-recommended").focus()

    @work(thread=True, exclusive=True, group="hub-search", exit_on_error=False)
    def _search(self, query: str) -> None:
        try:
            self.post_message(SearchDone(hub.search_gguf_models(query)))
        except Exception as error:  # noqa: BLE001 - told to the user; _explain logs the unexpected
            self.post_message(HubFailed(_explain(error)))

    def on_search_done(self, message: SearchDone) -> None:
        self._repos = message.repos
        table = self.query_one("#hub-repos", DataTable)
        table.clear()
        for repo in message.repos:
            table.add_row(literal_cell(repo.repo_id), _count(repo.downloads), _count(repo.likes),
                          "gated" if repo.gated else "")
        if message.repos:
            self._status(f"{len(message.repos)} repositories. Enter lists a repository's files.")
        else:
            self._status("Nothing found.")
        if message.repos:
            table.focus()

    @on(DataTable.RowSelected, "#hub-repos")
    def list_files(self, event: DataTable.RowSelected) -> None:
        event.stop()
        repo = self._repos[event.cursor_row]
        self._status(f"Listing {repo.repo_id}…")
        self._list(repo.repo_id)

    @work(thread=True, exclusive=True, group="hub-list", exit_on_error=False)
    def _list(self, repo_id: str) -> None:
        try:
            self.post_message(FilesListed(repo_id, hub.list_gguf_files(repo_id)))
        except Exception as error:  # noqa: BLE001 - see _search
            self.post_message(HubFailed(_explain(error)))

    def on_files_listed(self, message: FilesListed) -> None:
        self._repo_id, self._files = message.repo_id, message.files
        table = self.query_one("#hub-files", DataTable)
        table.clear()
        for file in message.files:
            table.add_row(literal_cell(file.filename), literal_cell(file.quant or "?"), human_bytes(file.size))
        self._status(f"{len(message.files)} GGUF files in {message.repo_id}. Enter downloads one." if message.files
                     else f"{message.repo_id} has no GGUF files.")
        if message.files:
            table.focus()

    def on_hub_failed(self, message: HubFailed) -> None:
        self._status(message.message, error=True)
        self.screen.refresh_bindings()
        self.query_one("#hub-progress").display = False

    # -- downloading ---------------------------------------------------------------------

    @on(DataTable.RowSelected, "#hub-files")
    def _file_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        assert self._repo_id is not None
        file = self._files[event.cursor_row]
        self.download(self._repo_id, file.filename, file.size)

    def download(self, repo_id: str, filename: str, size: int | None = None) -> None:
        """Start downloading `filename` from `repo_id`; DownloadFinished follows."""
        if self._cancel is not None:
            self.app.notify("A download is already running (ctrl+x cancels it).", severity="warning")
            return
        self._cancel = threading.Event()
        bar = self.query_one("#hub-progress", ProgressBar)
        bar.update(total=size or None, progress=0)
        bar.display = True
        self._status(f"Downloading {filename} from {repo_id}… (ctrl+x cancels)")
        self.screen.refresh_bindings()
        self.app.post_message(DownloadStateChanged(active=True))  # for the status bar
        self._download(repo_id, filename, self._cancel)

    @work(thread=True, exclusive=True, group="hub-download", exit_on_error=False)
    def _download(self, repo_id: str, filename: str, cancel: threading.Event) -> None:
        try:
            path = hub.download_gguf(
                repo_id, filename, cancel=cancel, on_progress=lambda p: self.post_message(DownloadProgressed(p))
            )
        except Exception as error:  # noqa: BLE001 - see _search
            self.post_message(HubFailed(_explain(error)))
        else:
            self.post_message(DownloadFinished(path))
        finally:
            self._cancel = None
            self.app.post_message(DownloadStateChanged(active=False))

    def on_download_progressed(self, message: DownloadProgressed) -> None:
        progress = message.progress
        bar = self.query_one("#hub-progress", ProgressBar)
        bar.update(total=progress.total or None, progress=progress.downloaded)
        parts = [f"{human_bytes(progress.downloaded)} of {human_bytes(progress.total)}" if progress.total
                 else human_bytes(progress.downloaded)]
        if progress.speed:
            parts.append(f"{human_bytes(progress.speed)}/s")
        if progress.eta is not None:
            parts.append(f"{human_seconds(progress.eta)} left")
        self._status(" · ".join(parts) + " · ctrl+x cancels")

    @property
    def downloading(self) -> bool:
        return self._cancel is not None

    def cancel_download(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self._status("Cancelling… the part already downloaded is kept and resumed next time.")


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _explain(error: Exception) -> str:
    """The message for the user: ours as it is, anything unexpected with its type (and logged)."""
    if isinstance(error, hub.HubError):
        return str(error)
    log.error("Hugging Face request failed", exc_info=error)
    return f"Unexpected error: {type(error).__name__}: {error}"
