"""The picker's Hugging Face tab: search GGUF repos, list a repo's files, download one.

All network calls run in thread workers through `engine.hub`; the UI only shows what they
post back. A download can be cancelled, and the next attempt resumes where it stopped.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, ProgressBar, Static

from llama_tui.engine import hub
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
    def __init__(self, **kwargs: Any) -> None:  # the widget's own: id, classes...
        super().__init__(**kwargs)
        self._repo_id: str | None = None
        self._files: list[hub.RepoFile] = []
        self._repos: list[hub.RepoSummary] = []
        self._cancel: threading.Event | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search Hugging Face for GGUF models, then Enter", id="hub-query")
        yield DataTable(id="hub-repos", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="hub-files", cursor_type="row", zebra_stripes=True)
        yield ProgressBar(id="hub-progress", show_eta=False)
        yield Static(id="hub-status")

    def on_mount(self) -> None:
        self.query_one("#hub-repos", DataTable).add_columns("Repository", "Downloads", "Likes", "")
        self.query_one("#hub-files", DataTable).add_columns("File", "Quant", "Size")
        self.query_one("#hub-progress").display = False

    def on_unmount(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#hub-status", Static)
        status.update(literal(text))
        status.set_class(error, "error")

    # -- search and listing -------------------------------------------------------------

    @on(Input.Submitted, "#hub-query")
    def start_search(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if query:
            self._status(f"Searching for “{query}”…")
            self._search(query)

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
