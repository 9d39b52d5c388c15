"""The app against a real OpenAI-compatible server, driven as a user drives it.

The server is llama-cpp-python's own (`python -m llama_cpp.server`) on the tiny random-weight
model, started once for the session (tests/openai_server.py); its replies are gibberish, so
the tests assert that text came, where it went and what was kept, not what it says. Where a
test needs to see the requests or to make the server misbehave, tests/fault_proxy.py stands
in front of it: the client is the app's real one, over real HTTP.

Two tests run `llama-tui remote URL` on a real pseudo-terminal (tests/terminal.py); the others
drive the app through Pilot. No wall-clock thresholds: every wait is for a condition, with a
generous timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, TabbedContent, TextArea

from llama_tui.engine.config import AppConfig, load_config
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import LoadSettings, SamplingSettings, ServerSettings, Settings
from llama_tui.engine.store import open_store
from llama_tui.launch import LaunchOptions
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_input import ChatInput
from llama_tui.ui.chat_messages import AssistantMessage, Notice, UserMessage
from llama_tui.ui.chat_pane import ChatPane
from llama_tui.ui.picker_screen import ModelPickerScreen
from llama_tui.ui.settings_screen import SettingsScreen
from tests.fault_proxy import Fault, FaultProxy
from tests.openai_server import RunningServer, free_port, llama_cpp_python_server
from tests.terminal import LLAMA_TUI, Terminal, app_env
from tests.test_app import SIZE, label_text, reply_ended, send_chat, tiny_options, wait_for
from tests.test_signals import assert_terminal_given_back

SERVER_MODEL = "tiny-remote.gguf"
"""How the app names the session server's model (llama-cpp-python names it by its path)."""


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy_module(openai_server: RunningServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(openai_server.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(proxy_module: FaultProxy) -> Iterator[FaultProxy]:
    """A pass-through proxy in front of the session server that records every request; a
    test may set a fault on it."""
    proxy_module.reset()
    yield proxy_module
    proxy_module.reset()


def server_options(endpoint: str, tokens: int = 16, **options: Any) -> LaunchOptions:
    """Open the server's only model, with short replies (the tiny model never ends a turn)."""
    return LaunchOptions.opening(ModelRef.server(endpoint), sampling=SamplingSettings(max_reply_tokens=tokens),
                                 **options)


def host(server: RunningServer | FaultProxy) -> str:
    return f"127.0.0.1:{server.port}"


def notes(seen: list[Message]) -> list[str]:
    return [m.notification.message for m in seen if isinstance(m, Notify)]


def chat_requests(proxy: FaultProxy) -> list[dict[str, Any]]:
    return [s.json() for s in proxy.seen if s.path.endswith("/chat/completions")]


def replies(app: LlamaApp) -> list[AssistantMessage]:
    return list(app.query(AssistantMessage))


def error_notices(app: LlamaApp) -> list[str]:
    return [str(n.render()) for n in app.query(Notice) if n.has_class("error")]


async def choose_servers_tab(pilot: Pilot) -> ModelPickerScreen:
    """ctrl+o, then to the picker's tabs (shift+tab from the filter) and right to Servers,
    then tab into the address field."""
    app = pilot.app
    await pilot.press("ctrl+o")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen))
    picker: ModelPickerScreen = app.screen  # type: ignore[assignment]
    await pilot.press("shift+tab", "right", "right")
    await wait_for(pilot, lambda: picker.query_one("#picker-tabs", TabbedContent).active == "picker-servers")
    await pilot.press("tab")
    await wait_for(pilot, lambda: picker.focused is picker.query_one("#server-url", Input))
    return picker


def server_rows(picker: ModelPickerScreen) -> list[list[str]]:
    table = picker.query_one("#server-models", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def open_from_the_servers_tab(pilot: Pilot, endpoint: str) -> list[list[str]]:
    """Type the address, Enter lists the server's models, Enter opens the first; the rows seen."""
    picker = await choose_servers_tab(pilot)
    await pilot.press(*endpoint, "enter")
    await wait_for(pilot, lambda: picker.query_one("#server-models", DataTable).has_focus)
    rows = server_rows(picker)
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(pilot.app.screen, ModelPickerScreen))
    return rows


def on_the_server(app: LlamaApp) -> bool:
    return app.model is not None and app.model.ref.kind == "server" and not app.workers_in("model")


# -- `llama-tui remote URL` in a terminal ----------------------------------------------------


def status_row(term: Terminal) -> str:
    return term.text().splitlines()[-2]  # the row above the footer


def test_remote_url_opens_the_servers_model_and_chats_in_a_terminal(openai_server: RunningServer,
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env = app_env(tmp_path)
    argv = [*LLAMA_TUI, "--max-reply-tokens", "24", "remote", openai_server.endpoint]
    with Terminal(argv, env=env) as term:
        modes = term.terminal_modes()
        term.wait_for(lambda: re.search(rf"{re.escape(SERVER_MODEL)} +idle", status_row(term)) is not None)
        # The chat header says where the model runs.
        header = f"{SERVER_MODEL} at {host(openai_server)} (llama-cpp-python server"
        term.wait_for(lambda: header in term.text().splitlines()[2])
        # The whole row, waited for: a snapshot can fall between two frames of the same update.
        term.wait_for(lambda: re.fullmatch(rf" *{re.escape(SERVER_MODEL)} +idle +– tok/s +TTFT – +ctx – ━+",
                                           status_row(term)) is not None)

        term.type("hello there")
        term.press("enter")
        term.wait_for(lambda: re.search(r" idle +[\d.]+ tok/s +TTFT \d+ ms", status_row(term)) is not None)
        term.wait_for("reached the max reply length")
        lines = term.text().splitlines()
        asked = next(i for i, line in enumerate(lines) if "hello there" in line and "█" in line)
        ended = next(i for i, line in enumerate(lines) if "reached the max reply length" in line)
        reply = [line.split("▌")[0].strip(" █") for line in lines[asked + 1:ended]]
        assert any(reply), term.text()  # the reply area got the server's text
        term.wait_for(lambda: "esc Stop" not in term.text().splitlines()[-1])  # offered only while it writes

        term.press("ctrl+q")
        assert term.wait() == 0
        assert_terminal_given_back(term, modes)
        assert "Traceback" not in term.output_text()

    # What was said is in the history, the reply recorded as the server's.
    monkeypatch.setenv("LLAMA_TUI_HOME", env["LLAMA_TUI_HOME"])
    store, problem = open_store()
    try:
        assert problem is None
        conversation = store.load(store.last_id() or "")
    finally:
        store.close()
    said = [(m.role, m.model_ref) for m in conversation.branch()]
    server_ref = ModelRef.server(openai_server.endpoint, str(openai_server.model_path)).to_text()
    assert said == [("user", ""), ("assistant", server_ref)]
    answer = conversation.branch()[-1]
    assert answer.text.strip() and answer.stop_reason == "length"
    assert (answer.figures or {}).get("generated_tokens") == 24
    config, _ = load_config(Path(env["LLAMA_TUI_HOME"]) / "config" / "config.toml")
    assert config.last_model == ModelRef.server(openai_server.endpoint, str(openai_server.model_path))


def test_ctrl_q_while_a_server_holds_a_reply_quits_and_closes_the_connection(proxy: FaultProxy,
                                                                           tmp_path: Path) -> None:
    proxy.reset(Fault(stall_after=700, hold=600))  # some text, then the server holds the connection
    with Terminal([*LLAMA_TUI, "--max-reply-tokens", "200", "remote", proxy.endpoint], env=app_env(tmp_path)) as term:
        modes = term.terminal_modes()
        term.wait_for(lambda: re.search(rf"{re.escape(SERVER_MODEL)} +idle", status_row(term)) is not None)
        term.type("go on and on")
        term.press("enter")
        term.wait_for(lambda: re.search(r" generating ", status_row(term)) is not None)
        term.press("ctrl+q")
        assert term.wait() == 0
        assert_terminal_given_back(term, modes)
        assert "Traceback" not in term.output_text()
    assert proxy.faulted()[0].client_closed.wait(60)  # the server was told, not left generating


def test_remote_on_a_closed_port_says_so_and_the_app_stays_usable(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with Terminal([*LLAMA_TUI, "remote", f"127.0.0.1:{port}"], env=app_env(tmp_path)) as term:
        modes = term.terminal_modes()
        term.wait_for(f"Cannot reach the server at 127.0.0.1:{port}")
        assert re.search(r"connection refused \(is the server running,", term.text())
        term.wait_for(lambda: re.match(r" *no model +idle ", status_row(term)) is not None)

        # Usable: a message gets a word back, and stays in the box.
        term.type("anyone there?")
        term.press("enter")
        term.wait_for("No model is loaded yet.")
        assert any("anyone there?" in line and "▊" in line for line in term.text().splitlines())
        term.press("ctrl+o")
        term.wait_for("Open a model")
        term.press("escape")
        term.wait_for(lambda: "Open a model" not in term.text())

        term.press("ctrl+q")
        assert term.wait() == 0
        assert_terminal_given_back(term, modes)
        assert "Traceback" not in term.output_text()
    log = (tmp_path / "llama-tui" / "log" / "llama-tui.log").read_text(encoding="utf-8")
    assert f"Cannot reach the server at 127.0.0.1:{port}" in log and "Traceback" not in log


# -- the picker's Servers tab ----------------------------------------------------------------


async def test_the_servers_tab_lists_opens_and_remembers_a_servers_model(openai_server: RunningServer,
                                                                        tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=12), saved_config=AppConfig()))
    server_ref = ModelRef.server(openai_server.endpoint, str(openai_server.model_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        picker = await choose_servers_tab(pilot)
        assert server_rows(picker) == []  # no server used yet
        await pilot.press(*f"127.0.0.1:{openai_server.port}", "enter")  # http:// and /v1 are added
        await wait_for(pilot, lambda: bool(server_rows(picker)))
        assert server_rows(picker) == [[str(openai_server.model_path), openai_server.endpoint]]
        status = str(picker.query_one("#server-status").render())
        assert status == f"1 model at {openai_server.endpoint}. Enter opens it."
        await pilot.press("enter")

        await wait_for(pilot, lambda: on_the_server(app))
        assert app.model is not None and app.model.ref == server_ref
        assert label_text(app, "status-model") == SERVER_MODEL
        assert f"{SERVER_MODEL} at {host(openai_server)}" in label_text(app, "chat-model")
        await send_chat(pilot, "hello server")
        await wait_for(pilot, lambda: reply_ended(app))
        reply = app.query_one(ChatPane).conversation.branch()[-1]
        assert reply.text.strip() and reply.model_ref == server_ref.to_text() and reply.model_name == SERVER_MODEL
        assert app.last_stats is not None and app.last_stats.generated_tokens == 12
        assert label_text(app, "status-state") == "idle"

        # Next time, the server is listed at once, before anything is typed.
        picker = await choose_servers_tab(pilot)
        assert server_rows(picker) == [[str(openai_server.model_path), openai_server.endpoint]]
        assert str(picker.query_one("#server-status").render()) == "Servers used recently are listed below."
        await pilot.press("escape")

    config, warnings = load_config()
    assert not warnings
    assert config.last_model == server_ref
    assert config.recent_models[:2] == (server_ref, ModelRef.file(tiny_model))


async def test_the_servers_tab_says_when_a_server_does_not_answer() -> None:
    port = free_port()
    app = LlamaApp(LaunchOptions(model=None))
    async with app.run_test(size=SIZE) as pilot:
        picker = await choose_servers_tab(pilot)
        await pilot.press(*f"127.0.0.1:{port}", "enter")
        status = picker.query_one("#server-status")
        await wait_for(pilot, lambda: status.has_class("error"))
        assert f"Cannot reach the server at 127.0.0.1:{port}" in str(status.render())
        assert server_rows(picker) == [] and isinstance(app.screen, ModelPickerScreen)


async def test_the_servers_tab_refuses_a_port_out_of_range_before_asking() -> None:
    app = LlamaApp(LaunchOptions(model=None))
    async with app.run_test(size=SIZE) as pilot:
        picker = await choose_servers_tab(pilot)
        await pilot.press(*"127.0.0.1:88765", "enter")
        status = picker.query_one("#server-status")
        await wait_for(pilot, lambda: status.has_class("error"))
        assert str(status.render()) == (
            "'http://127.0.0.1:88765' has no usable port: a port is a number from 1 to 65535."
        )
        assert picker.query_one("#server-url", Input).value == "127.0.0.1:88765"  # kept, to be mended


# -- swapping between a local model and a server model -----------------------------------------


async def test_swapping_local_and_server_keeps_the_conversation(tiny_model: Path, proxy: FaultProxy,
                                                                openai_server: RunningServer) -> None:
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=12), saved_config=AppConfig()))
    local_ref = ModelRef.file(tiny_model).to_text()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "first question")
        await wait_for(pilot, lambda: reply_ended(app))
        first_reply = app.query_one(AssistantMessage).text
        assert first_reply

        rows = await open_from_the_servers_tab(pilot, proxy.endpoint)
        assert rows == [[str(openai_server.model_path), proxy.endpoint]]
        await wait_for(pilot, lambda: on_the_server(app))
        server_ref = ModelRef.server(proxy.endpoint, str(openai_server.model_path)).to_text()
        # The conversation stayed on screen.
        assert [str(m.render()) for m in app.query(UserMessage)] == ["first question"]
        assert [r.text for r in replies(app)] == [first_reply]

        await send_chat(pilot, "second question")
        await wait_for(pilot, lambda: len(replies(app)) == 2 and reply_ended(app))
        assert replies(app)[1].text

        # The server was sent the whole conversation, the local model's reply included.
        conversation = app.query_one(ChatPane).conversation
        first_text = conversation.branch()[1].text
        sent = chat_requests(proxy)
        assert len(sent) == 1
        assert sent[0]["messages"] == [{"role": "user", "content": "first question"},
                                       {"role": "assistant", "content": first_text},
                                       {"role": "user", "content": "second question"}]

        # And back to the local model (F9: the previous one), which answers the third turn.
        await pilot.press("f9")
        await wait_for(pilot, lambda: app.model is not None and app.model.ref.is_local and not app.workers_in("model"))
        await send_chat(pilot, "third question")
        await wait_for(pilot, lambda: len(replies(app)) == 3 and reply_ended(app))
        assert len(chat_requests(proxy)) == 1  # not the server's
        said = [(m.role, m.model_ref) for m in conversation.branch()]
        assert said == [("user", ""), ("assistant", local_ref), ("user", ""), ("assistant", server_ref),
                        ("user", ""), ("assistant", local_ref)]
        conversation_id = conversation.id

    # The history keeps which model wrote each reply.
    store, _ = open_store()
    try:
        kept = store.load(conversation_id)
    finally:
        store.close()
    assert [(m.role, m.model_ref) for m in kept.branch()] == said
    assert [m.model_name for m in kept.branch() if m.role == "assistant"] == [
        "tiny-test-llama", SERVER_MODEL, "tiny-test-llama"]


async def test_a_model_the_server_does_not_have_is_named_with_the_ones_it_has(openai_server: RunningServer) -> None:
    seen: list[Message] = []
    app = LlamaApp(LaunchOptions(model=ModelRef.server(openai_server.endpoint, "no-such-model")))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: any("no-such-model" in n for n in notes(seen)))
        await wait_for(pilot, lambda: label_text(app, "status-state") == "idle")
        said = next(n for n in notes(seen) if "no-such-model" in n)
        assert str(openai_server.model_path) in said and host(openai_server) in said
        assert app.model is None and label_text(app, "status-model") == "no model"


# -- stopping and continuing a server's reply ------------------------------------------------


async def test_esc_stops_a_server_reply_at_once_and_c_continues_it(proxy: FaultProxy) -> None:
    app = LlamaApp(server_options(proxy.endpoint, tokens=200))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: on_the_server(app))
        proxy.reset(Fault(stall_after=700, hold=600))  # some text, then the server holds the connection
        await send_chat(pilot, "go on and on")
        await wait_for(pilot, lambda: bool(replies(app) and replies(app)[0].text))
        await wait_for(pilot, lambda: label_text(app, "status-state") == "generating")
        await pilot.press("escape")
        await wait_for(pilot, lambda: reply_ended(app))
        assert "stopped (c continues)" in replies(app)[0].footer_text
        assert error_notices(app) == []
        held = proxy.faulted()[0]
        await wait_for(pilot, held.client_closed.is_set)  # the connection was closed, not left to the server
        conversation = app.query_one(ChatPane).conversation
        partial = conversation.branch()[1].text
        assert partial.strip() and conversation.branch()[1].stop_reason == "stopped"

        # c on the reply (shift+tab reaches it): the server is asked to go on from the text so far.
        proxy.reset()
        await pilot.press("shift+tab")
        await wait_for(pilot, lambda: isinstance(app.focused, AssistantMessage))
        await pilot.press("c")
        await wait_for(pilot, lambda: bool(chat_requests(proxy)) and reply_ended(app))
        assert chat_requests(proxy)[0]["messages"] == [{"role": "user", "content": "go on and on"},
                                                      {"role": "assistant", "content": partial}]
        grown = conversation.branch()[1]
        assert len(conversation.branch()) == 2 and grown.text.startswith(partial) and len(grown.text) > len(partial)
        assert grown.stop_reason == "length" and "reached the max reply length" in replies(app)[0].footer_text


# -- a server that fails -----------------------------------------------------------------------


async def test_a_server_dying_mid_reply_keeps_the_partial_reply_marked(proxy: FaultProxy) -> None:
    seen: list[Message] = []
    app = LlamaApp(server_options(proxy.endpoint, tokens=200, saved_config=AppConfig()))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: on_the_server(app))
        proxy.reset(Fault(stall_after=700, hold=600))
        await send_chat(pilot, "tell me a long story")
        await wait_for(pilot, lambda: bool(replies(app) and replies(app)[0].text))
        await wait_for(pilot, lambda: label_text(app, "status-state") == "generating")
        shown = replies(app)[0].text
        await pilot.press(*"my next")  # typed while the reply is written
        proxy.cut_held()  # the server goes away: the connection closes mid-reply

        await wait_for(pilot, lambda: reply_ended(app))
        reply = replies(app)[0]
        assert reply.text == shown  # what came stays
        assert "stopped (c continues)" in reply.footer_text
        errors = error_notices(app)
        assert len(errors) == 1 and "text so far is kept" in errors[0] and host(proxy) in errors[0]
        conversation = app.query_one(ChatPane).conversation
        assert [m.role for m in conversation.branch()] == ["user", "assistant"]
        assert conversation.branch()[1].stop_reason == "stopped"
        assert conversation.branch()[1].text.lstrip() == shown
        assert label_text(app, "status-state") == "idle"
        assert "Traceback" not in "".join(notes(seen))
        assert app.query_one("#chat-input", ChatInput).text == "my next"  # nothing typed is lost

        # The app goes on: the server is back, and the next message gets a whole reply.
        proxy.reset()
        await send_chat(pilot, "are you back?")
        await wait_for(pilot, lambda: len(replies(app)) == 2 and reply_ended(app))
        assert replies(app)[1].text and "reached the max reply length" in replies(app)[1].footer_text


async def test_a_server_refusing_a_reply_gives_the_message_back(proxy: FaultProxy) -> None:
    app = LlamaApp(server_options(proxy.endpoint))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: on_the_server(app))
        proxy.reset(Fault(status=500, body={"error": {"message": "CUDA out of memory", "code": 500}}))
        await send_chat(pilot, "my precious words")
        await wait_for(pilot, lambda: bool(error_notices(app)) and not app.generating)
        assert "500: CUDA out of memory" in error_notices(app)[0]
        # Nothing typed is lost: the message is back in the box, not left unanswered in the chat.
        assert app.query_one("#chat-input", ChatInput).text == "my precious words"
        assert app.query_one(ChatPane).conversation.branch() == []
        assert not replies(app) and label_text(app, "status-state") == "idle"
        assert len(proxy.faulted()) == 1  # asked once, no retries

        proxy.reset()
        await pilot.press("enter")  # sent again, as it was
        await wait_for(pilot, lambda: reply_ended(app))
        assert [str(m.render()) for m in app.query(UserMessage)] == ["my precious words"]
        assert replies(app)[0].text


async def test_a_server_gone_between_replies_is_said_and_the_message_kept(tmp_path: Path) -> None:
    from tests.tiny_gguf import write_tiny_llama_gguf

    model = write_tiny_llama_gguf(tmp_path / "private.gguf")
    with ExitStack() as running:
        server = running.enter_context(llama_cpp_python_server(model, tmp_path / "server.log"))
        app = LlamaApp(server_options(server.endpoint, tokens=8))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: on_the_server(app))
            await send_chat(pilot, "hello")
            await wait_for(pilot, lambda: reply_ended(app))
            running.close()  # the server process ends

            await send_chat(pilot, "still there?")
            await wait_for(pilot, lambda: len(error_notices(app)) == 1 and not app.generating)
            assert f"Cannot reach the server at {host(server)}" in error_notices(app)[0]
            assert app.query_one("#chat-input", ChatInput).text == "still there?"
            assert [m.role for m in app.query_one(ChatPane).conversation.branch()] == ["user", "assistant"]
            assert label_text(app, "status-state") == "idle" and label_text(app, "status-model") == "private.gguf"


# -- the Completion tab ------------------------------------------------------------------------


async def test_the_completion_tab_continues_text_on_the_server(proxy: FaultProxy) -> None:
    seen: list[Message] = []
    app = LlamaApp(server_options(proxy.endpoint, tokens=20))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: on_the_server(app))
        await pilot.press("f3")
        area = app.query_one("#completion-text", TextArea)
        assert area.has_focus
        await pilot.press(*"Once upon a time")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: bool(proxy.seen) and not app.generating)
        await pilot.pause()

        sent = [s.json() for s in proxy.seen if s.path.endswith("/v1/completions")]
        assert len(sent) == 1 and sent[0]["prompt"] == "Once upon a time" and sent[0]["max_tokens"] == 20
        assert chat_requests(proxy) == []  # the text alone, not a chat
        assert area.text.startswith("Once upon a time") and len(area.text) > len("Once upon a time")
        assert not area.read_only
        stats = app.last_stats
        assert stats is not None and stats.generated_tokens == 20
        assert re.fullmatch(r"[\d.]+ tok/s", label_text(app, "status-speed"))
        assert label_text(app, "status-state") == "idle"

        # The server dies mid-continuation: the text so far stays, editable, and the reason is given.
        before = area.text
        proxy.reset(Fault(stall_after=700, hold=600))
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(area.text) > len(before) and label_text(app, "status-state") == "generating")
        proxy.cut_held()
        await wait_for(pilot, lambda: not app.generating)
        await pilot.pause()
        assert area.text.startswith(before) and len(area.text) > len(before) and not area.read_only
        said = [n for n in notes(seen) if "text so far is kept" in n]
        assert len(said) == 1 and host(proxy) in said[0]


# -- the settings panel --------------------------------------------------------------------------

LOCAL_ONLY = ("n_ctx", "n_gpu_layers", "n_threads", "n_threads_batch", "chat_format", "overrides")


def note(screen: SettingsScreen, name: str) -> str:
    return str(screen.query_one(f"#settings-{name}-note", Label).render())


def marked_unused(screen: SettingsScreen, name: str) -> bool:
    row = screen.query_one(f"#settings-{name}").parent
    return isinstance(row, Widget) and row.has_class("-unused")


async def test_the_settings_panel_says_what_a_server_model_does_not_use(openai_server: RunningServer) -> None:
    seen: list[Message] = []
    app = LlamaApp(server_options(openai_server.endpoint, saved_config=AppConfig()))
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await wait_for(pilot, lambda: on_the_server(app))
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen: SettingsScreen = app.screen  # type: ignore[assignment]
        for name in LOCAL_ONLY:
            assert note(screen, name) == f"not used by {SERVER_MODEL}: its server loads the model", name
            assert marked_unused(screen, name), name
        for name in ("thinking_budget", "saved_contexts_mib"):  # the engine's own: a server has no such thing
            assert note(screen, name) == f"not used by {SERVER_MODEL}: for local models only", name
        effects = [str(label.render()) for label in screen.query(".settings-group-effect").results(Label)]
        assert effects[0] == f"for local models only: not used by {SERVER_MODEL}"
        # What the server does use reads as usual.
        for name in ("temperature", "top_k", "seed", "max_reply_tokens", "api_key_env", "context_size"):
            assert "not used" not in note(screen, name), name
            assert not marked_unused(screen, name), name

        # A local-only change is kept, but no reload is offered for the server model.
        screen.query_one("#settings-n_ctx", Input).value = "2048"
        screen.query_one("#settings-top_k", Input).value = "5"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        await pilot.pause()
        assert type(app.screen).__name__ != "ConfirmScreen"
        assert app.settings.load.n_ctx == 2048 and app.settings.sampling.top_k == 5
        assert (f"Settings saved. Context length applies to local models, from the next one opened: {SERVER_MODEL} "
                "is loaded by its server. The other changes apply to the next reply.") in notes(seen)
    saved, _ = load_config()
    assert saved.settings.load.n_ctx == 2048 and saved.settings.sampling.top_k == 5


async def test_the_settings_panel_with_a_local_model_shows_its_usual_notes(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen: SettingsScreen = app.screen  # type: ignore[assignment]
        assert note(screen, "n_ctx").startswith("context length in tokens")
        assert not screen.query(".-unused")
        effects = [str(label.render()) for label in screen.query(".settings-group-effect").results(Label)]
        assert effects[0] == "changes reload the model"


async def test_a_server_models_reply_length_is_not_capped_by_the_local_context_length(
        openai_server: RunningServer) -> None:
    settings = Settings(load=LoadSettings(n_ctx=1024), sampling=SamplingSettings(max_reply_tokens=16),
                        server=ServerSettings(context_size=4096))
    app = LlamaApp(LaunchOptions(model=ModelRef.server(openai_server.endpoint), settings=settings))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: on_the_server(app))
        assert app.model is not None and app.model.context_size == 4096  # the Server context setting
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen: SettingsScreen = app.screen  # type: ignore[assignment]
        screen.query_one("#settings-max_reply_tokens", Input).value = "2000"
        await pilot.pause()
        assert not note(screen, "max_reply_tokens").startswith("must be"), note(screen, "max_reply_tokens")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen), timeout=10)
        assert app.settings.sampling.max_reply_tokens == 2000
