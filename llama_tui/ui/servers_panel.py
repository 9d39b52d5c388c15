"""The picker's Servers tab: a model on an OpenAI-compatible server (llama-server, vLLM,
Ollama, LM Studio, llama-cpp-python's server...).

Type the server's address (and its API key, if it wants one) and press Enter: the models it
serves are listed, and Enter on one opens it. Servers used recently are listed at once. A key
typed here goes to the OS keyring when there is one, else it is kept for this run only; it is
never written to the settings file.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from llama_tui.engine.model_ref import ModelRef, normalize_endpoint
from llama_tui.ui.literal import literal, literal_cell


@dataclass
class ServerChosen(Message):
    """Bubbles up to the picker, which opens the model."""

    ref: ModelRef


@dataclass
class ServerModelsListed(Message):
    endpoint: str
    models: list[str]
    error: str | None = None


class ServersPanel(Vertical):
    def __init__(self, recent: list[ModelRef], *, api_key_env: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.recent = recent
        self.api_key_env = api_key_env
        self.rows: list[ModelRef] = list(recent)

    def compose(self) -> ComposeResult:
        with Horizontal(id="server-inputs"):
            yield Input(placeholder="Server address, e.g. http://gpu-box:8080/v1, then Enter", id="server-url")
            yield Input(placeholder=f"API key (or ${self.api_key_env})", password=True, id="server-key")
        yield DataTable(id="server-models", cursor_type="row", zebra_stripes=True)
        yield Static(id="server-status")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Model", "Server")
        self._show_rows()
        self._status("Servers used recently are listed below." if self.recent
                     else "Type a server's address and press Enter to see its models.")

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#server-status", Static)
        status.update(literal(text))
        status.set_class(error, "error")

    def _show_rows(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for ref in self.rows:
            table.add_row(literal_cell(ref.model_id or "(its only model)"), literal_cell(ref.endpoint))

    @on(Input.Submitted, "#server-url")
    @on(Input.Submitted, "#server-key")
    def _list(self) -> None:
        raw = self.query_one("#server-url", Input).value.strip()
        if not raw:
            return
        try:
            endpoint = normalize_endpoint(raw)
        except ValueError as error:
            self._status(str(error), error=True)
            return
        key = self.query_one("#server-key", Input).value.strip()
        if key:
            from llama_tui.engine.secrets import keep_for_this_session, store_api_key

            if not store_api_key(endpoint, key):
                keep_for_this_session(endpoint, key)
        self._status(f"Asking {endpoint} for its models…")
        self._fetch(endpoint)

    @work(thread=True, exclusive=True, group="servers", exit_on_error=False)
    def _fetch(self, endpoint: str) -> None:
        from llama_tui.engine.remote_errors import RemoteOpenError
        from llama_tui.engine.remote_server import list_models
        from llama_tui.engine.secrets import read_api_key

        try:
            models = list_models(endpoint, read_api_key(endpoint, self.api_key_env))
        except RemoteOpenError as error:
            self.post_message(ServerModelsListed(endpoint, [], str(error)))
            return
        self.post_message(ServerModelsListed(endpoint, models))

    def on_server_models_listed(self, message: ServerModelsListed) -> None:
        if message.error:
            self._status(message.error, error=True)
            return
        listed = [ModelRef.server(message.endpoint, model) for model in message.models]
        self.rows = listed + [ref for ref in self.recent if ref not in listed]
        self._show_rows()
        count = len(message.models)
        if not count:
            self._status(f"{message.endpoint} lists no models.")
        elif count == 1:
            self._status(f"1 model at {message.endpoint}. Enter opens it.")
        else:
            self._status(f"{count} models at {message.endpoint}. Enter opens one.")
        if listed:
            self.query_one(DataTable).focus()

    @on(DataTable.RowSelected, "#server-models")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(ServerChosen(self.rows[event.cursor_row]))
