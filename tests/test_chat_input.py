"""The message box: pastes arrive whole, newlines can be typed, nothing typed is lost."""

from __future__ import annotations

import re
from pathlib import Path

from textual import events

from llama_tui.engine.settings import LoadSettings, SamplingSettings
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_input import ChatInput
from llama_tui.ui.chat_pane import AssistantMessage, ChatPane, Notice, UserMessage
from llama_tui.ui.terminal_input import PasteSafeParser
from llama_tui.ui.text_box import TextBox
from tests.terminal import LLAMA_TUI, Terminal, app_env
from tests.test_app import SIZE, reply_ended, tiny_options, wait_for

PLACEHOLDER = "Message the model"
"""Shown in the message box while it is empty: the message was sent."""
POEM = "first line\nsecond line\n\n    indented fourth line"


async def test_a_multi_line_paste_is_sent_whole_as_one_message(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=5)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        box = app.query_one("#chat-input", ChatInput)
        box.focus()
        box.post_message(events.Paste(POEM))
        await pilot.pause()
        assert box.text == POEM
        await pilot.press("enter")
        await wait_for(pilot, lambda: reply_ended(app))
        pane = app.query_one(ChatPane)
        assert [(m.role, m.text) for m in pane.conversation.branch()][:1] == [("user", POEM)]
        assert [str(m.render()) for m in app.query(UserMessage)] == [POEM]
        assert box.text == ""


async def test_ctrl_j_and_shift_enter_type_a_newline_and_enter_sends(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=5)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        app.query_one("#chat-input", ChatInput).focus()
        await pilot.press("a", "ctrl+j", "b", "shift+enter", "c")
        assert app.query_one("#chat-input", ChatInput).text == "a\nb\nc"
        await pilot.press("enter")
        await wait_for(pilot, lambda: reply_ended(app))
        assert app.query_one(ChatPane).conversation.branch()[0].text == "a\nb\nc"


async def test_editing_keys_that_arrive_in_one_read_act_where_they_were_typed(tiny_model: Path) -> None:
    """One read from the terminal can hold several keys (a fast typist over ssh, a busy app).
    Home, ctrl+w and ctrl+u act where they were typed, not after the letters that follow them."""
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        box: TextBox = app.query_one("#chat-input", ChatInput)
        box.focus()
        await pilot.pause()

        async def one_read(keys: list[str], expected: str) -> None:
            # As Textual's driver hands over the keys of one read: posted in a row, no waiting between.
            for key in keys:
                app.post_message(events.Key(key, " " if key == "space" else key if len(key) == 1 else None))
            await wait_for(pilot, lambda: box.text == expected, timeout=10)

        await one_read([*"hello", "home", "x"], "xhello")
        await one_read(["end", "space", *"world", "ctrl+w", *"there"], "xhello there")
        await one_read(["ctrl+u", *"new"], "new")
        await one_read(["ctrl+j", *"two", "left", "left", "backspace", "o"], "new\nowo")

        # The Completion tab's text is the same kind of box.
        app.action_show_tab("completion")
        box = app.query_one("#completion-text", TextBox)
        box.load_text("")
        box.focus()
        await pilot.pause()
        await one_read([*"world", "home", *"hello ", "end", "ctrl+w", *"there"], "hello there")


async def test_a_paste_with_control_characters_shows_them_as_symbols(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        box = app.query_one("#chat-input", ChatInput)
        box.focus()
        box.post_message(events.Paste("a\x07b\r\nc\rd"))
        await pilot.pause()
        assert box.text == "a\u2407b\nc\nd"


async def test_a_message_too_long_for_the_context_is_refused_and_put_back(tiny_model: Path) -> None:
    """The README's promise: refused with a message, put back in the input box, the app goes on."""
    long_text = "word " * 600  # ~3,000 characters: far more than 256 tokens
    options = tiny_options(tiny_model, load=LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1),
                           sampling=SamplingSettings(max_reply_tokens=5))
    app = LlamaApp(options)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        box = app.query_one("#chat-input", ChatInput)
        box.focus()
        box.post_message(events.Paste(long_text))
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query(Notice) and not app.generating)
        await pilot.pause()
        notice = str(app.query_one(Notice).render())
        assert "tokens" in notice and "the context holds 256" in notice
        assert box.text == long_text  # exactly as it was, trailing space and all
        assert not app.query(UserMessage) and not app.query(AssistantMessage)
        assert not app.query_one(ChatPane).conversation.messages
        # The app goes on: a short message gets a reply.
        box.load_text("short one")
        await pilot.press("enter")
        await wait_for(pilot, lambda: reply_ended(app))
        assert [str(m.render()) for m in app.query(UserMessage)] == ["short one"]


async def test_put_back_keeps_text_typed_since_after_the_refused_message(tiny_model: Path) -> None:
    options = tiny_options(tiny_model, load=LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1))
    app = LlamaApp(options)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        pane = app.query_one(ChatPane)
        box = pane.chat_input
        box.put_back("refused text")
        box.load_text("typed since")
        box.put_back("refused text")
        assert box.text == "refused text\n\ntyped since"


async def test_the_message_box_grows_with_its_text_up_to_a_third_of_the_screen(tiny_model: Path) -> None:
    """README: "The message box grows with its text, up to a third of the screen"."""
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        box = app.query_one("#chat-input", ChatInput)
        box.focus()
        await pilot.pause()
        heights = [box.outer_size.height]
        for line in range(1, 25):
            await pilot.press(*f"line {line}", "ctrl+j")
            heights.append(box.outer_size.height)
        screen_rows = app.screen.size.height
        assert heights == sorted(heights)  # it never shrinks while text is added
        assert heights[3] > heights[0] + 2  # three more lines: three more rows
        assert screen_rows / 4 < max(heights) <= screen_rows / 3
        assert heights[-1] == heights[-5]  # then it stops growing, and scrolls
        assert box.cursor_location == (24, 0)
        assert box.scroll_offset.y > 0  # the line being typed is in view


# -- the terminal's bytes, parsed as in a real terminal ------------------------------------------


def parsed(*chunks: str) -> list[events.Event]:
    parser = PasteSafeParser()
    found: list[events.Event] = []
    for chunk in chunks:
        found += list(parser.feed(chunk))  # type: ignore[arg-type]
    return found


def test_an_escape_inside_a_paste_stays_in_place() -> None:
    data = "\x1b[200~Xab\x1b[31mc\x1b[201~"
    for cut in range(len(data) + 1):  # every way a read can split it
        found = parsed(data[:cut], data[cut:]) if 0 < cut < len(data) else parsed(data)
        assert [type(e) for e in found] == [events.Paste], cut
        assert found[0].text == "Xab\u241b[31mc"  # type: ignore[attr-defined]


def test_keys_around_a_paste_are_still_keys() -> None:
    found = parsed("a\x1b[200~one\x1b\x1b[201~b")
    assert [getattr(e, "key", None) or getattr(e, "text", None) for e in found] == ["a", "one\u241b", "b"]


# -- in a real terminal ---------------------------------------------------------------------------


def transcript_rows(term: Terminal) -> list[str]:
    """The screen's rows below the tabs and the chat's header line (which shows the title)."""
    return term.text().splitlines()[3:]


def test_pastes_in_a_real_terminal_arrive_whole_and_in_order(tiny_model: Path, tmp_path: Path) -> None:
    """Bracketed and unbracketed pastes, as a terminal sends them (one write each)."""
    argv = [*LLAMA_TUI, "--max-token", "512", "local", str(tiny_model)]
    with Terminal(argv, env=app_env(tmp_path)) as term:
        term.wait_for("idle")
        term.paste("Xab\x1b[31mc\nsecond line")
        term.wait_for("second line")
        term.press("enter")
        # Sent, and the reply has ended: the status bar is back to idle with a TTFT figure.
        term.wait_for(
            lambda: "Xab␛[31mc" in term.text() and re.search(r" idle .* TTFT \d+ ms", term.text()) is not None
        )
        rows = transcript_rows(term)
        first = next(i for i, row in enumerate(rows) if "Xab␛[31mc" in row)
        assert "second line" in rows[first + 1]  # one message of two lines

        term.paste("third line\nfourth line\n", bracketed=False)
        term.wait_for(lambda: "fourth line" in term.text() and PLACEHOLDER in term.text())
        rows = transcript_rows(term)
        third = next(i for i, row in enumerate(rows) if "third line" in row)
        assert "fourth line" in rows[third + 1]
        assert sum("third line" in row for row in rows) == 1

        term.write(b"fifth line\r\nsixth line")  # Windows line ends, unbracketed
        term.wait_for("sixth line")
        rows = transcript_rows(term)
        fifth = next(i for i, row in enumerate(rows) if "fifth line" in row)
        assert "sixth line" in rows[fifth + 1]  # one newline, not a blank line between
        term.press("ctrl+q")
        assert term.wait() == 0


def test_the_private_textual_parts_we_rely_on_are_still_there() -> None:
    """Private Textual APIs used here (pinned to textual<9): if an upgrade moves them, this says
    which, before a paste or a crash report silently stops working."""
    from textual.app import App
    from textual.drivers import linux_driver

    assert linux_driver.XTermParser.__name__ in ("XTermParser", "PasteSafeParser")  # ui/terminal_input.py
    for name in ("_handle_exception", "_fatal_error", "_close_messages_no_wait"):  # ui/app.py
        assert callable(getattr(App, name, None)), name


def test_a_pasted_crlf_is_enter_then_ctrl_j() -> None:
    """Why the message box treats ctrl+j right after Enter as the same newline."""
    found = parsed("one\r\ntwo")
    assert [getattr(e, "key", None) for e in found] == ["o", "n", "e", "enter", "ctrl+j", "t", "w", "o"]


def test_ctrl_j_types_a_new_line_in_a_real_terminal(tiny_model: Path, tmp_path: Path) -> None:
    """README: "shift+enter, ctrl+j | a new line in the message (ctrl+j works in every
    terminal)": a terminal sends ctrl+j as a line feed, Enter as a carriage return."""
    config = tmp_path / "llama-tui" / "config"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("[sampling]\nmax_reply_tokens = 3\n")  # a short reply: nothing scrolls
    with Terminal([*LLAMA_TUI, "--max-token", "512", "local", str(tiny_model)], env=app_env(tmp_path)) as term:
        term.wait_for(" idle ")
        term.type("top")
        term.press("ctrl+j")
        term.type("bottom")
        term.wait_for(lambda: PLACEHOLDER not in term.text() and "bottom" in term.text())
        term.press("enter")
        term.wait_for(
            lambda: PLACEHOLDER in term.text() and re.search(r" idle .* TTFT \d+ ms", term.text()) is not None
        )
        # A user message has a bar on its left; a notification may cover the right of the screen.
        rows = [row.split("▌")[0].strip(" █") for row in transcript_rows(term)]
        assert rows.count("top") == 1, term.text()
        assert rows[rows.index("top") + 1] == "bottom"  # one message of two lines, sent by Enter alone
        term.press("ctrl+q")
        assert term.wait() == 0
