"""A reasoning model's thinking in the app: shown live, folded when the answer starts, kept
apart from the answer (in the history, out of the next prompt)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.settings import LoadSettings, SamplingSettings
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_messages import AssistantMessage
from tests.scripted_model import ScriptedModel
from tests.test_app import SIZE, reply_ended, send_chat, tiny_options, wait_for
from tests.tiny_gguf import write_tiny_llama_gguf


def screen_text(app: LlamaApp) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", app.export_screenshot())).replace("\xa0", " ")


async def test_thinking_streams_live_then_folds_and_stays_out_of_the_next_prompt(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        scripted = ScriptedModel([("thinking", "The user greets me.\n"), ("thinking", "I should greet back."),
                                  "Hello! ", "How can I help?"])
        app.model = scripted
        await send_chat(pilot, "hi")
        await wait_for(pilot, lambda: reply_ended(app))
        reply = app.query(AssistantMessage).last()
        # Folded to one line once the answer came; the answer is the reply's text.
        assert reply.header_text == "▸ Thought for 2 s · 2 tokens (t shows it)"
        assert reply.text == "Hello! How can I help?"
        assert "I should greet back" not in screen_text(app)
        reply.focus()
        await pilot.press("t")
        assert reply.header_text.startswith("▾ Thought for 2 s · 2 tokens (t hides it)\nThe user greets me.")
        assert "I should greet back." in screen_text(app)
        await pilot.press("t")
        assert "I should greet back" not in screen_text(app)
        # Kept apart in the conversation (and so in the history), never sent back.
        pane_reply = app.chat_pane.conversation.branch()[-1]
        assert pane_reply.thinking == "The user greets me.\nI should greet back."
        assert pane_reply.text == "Hello! How can I help?"
        assert pane_reply.figures and pane_reply.figures["thinking_tokens"] == 2
        app.chat_pane.query_one("#chat-input").focus()
        await send_chat(pilot, "and you?")
        await wait_for(pilot, lambda: reply_ended(app) and len(scripted.asked) == 2)
        assert scripted.asked[1] == [ChatMessage("user", "hi"), ChatMessage("assistant", "Hello! How can I help?"),
                                     ChatMessage("user", "and you?")]


async def test_thinking_shows_while_the_model_thinks(tiny_model: Path) -> None:
    """Before any answer: the block is live, dimmed, with the running count; the state says thinking."""
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        app.model = ScriptedModel([("thinking", f"step {n}\n") for n in range(1, 13)])  # never answers
        await send_chat(pilot, "think hard")
        await wait_for(pilot, lambda: reply_ended(app))
        reply = app.query(AssistantMessage).last()
        # It ended while thinking: what it thought stays visible as it was.
        assert reply.header_text.startswith("▸ Thought for 12 s · 12 tokens")
        reply.focus()
        await pilot.press("t")
        assert "step 1\n" in reply.header_text and "step 12" in reply.header_text


async def test_a_local_model_s_thinking_markers_are_told_apart(tmp_path: Path) -> None:
    """The tiny model with <think> tokens in its vocabulary writes only "<think>": the engine
    recognises the marker, so the reply shows thinking, not a literal tag, and no answer."""
    model = write_tiny_llama_gguf(tmp_path / "thinker.gguf", chat_template="{{ messages[-1]['content'] }}",
                                  control_tokens=["<think>", "</think>"], favoured_token="<think>")
    app = LlamaApp(tiny_options(model, load=LoadSettings(n_ctx=512, n_threads=1, n_threads_batch=1),
                                sampling=SamplingSettings(temperature=0.0, max_reply_tokens=3)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "hi")
        await wait_for(pilot, lambda: reply_ended(app))
        reply = app.chat_pane.conversation.branch()[-1]
        assert reply.text == "" and reply.thinking == "<think><think>"
        assert app.query(AssistantMessage).last().header_text.startswith("▸ Thought for")


async def test_html_in_a_reply_is_shown_as_text(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        app.model = ScriptedModel(["<div>a block</div>\n\nInline <b>bold</b> and <think>not thinking</think>."])
        await send_chat(pilot, "html please")
        await wait_for(pilot, lambda: reply_ended(app))
        shown = screen_text(app)
        assert "<div>a block</div>" in shown
        assert "Inline <b>bold</b> and <think>not thinking</think>." in shown


async def test_a_reply_being_written_is_not_marked_cut_short(tiny_model: Path) -> None:
    """Mid-reply the footer is empty: "cut short" is only for a reply saved when the app stopped."""
    import threading

    hold = threading.Event()
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        app.model = ScriptedModel(["The first half, ", "the second half."], hold=hold)
        await send_chat(pilot, "write two halves")
        await wait_for(pilot, lambda: "The first half" in screen_text(app))
        assert "cut short" not in screen_text(app)
        hold.set()
        await wait_for(pilot, lambda: reply_ended(app))
        assert "cut short" not in screen_text(app)
        assert app.query(AssistantMessage).last().text == "The first half, the second half."


async def test_the_live_thinking_count_says_one_token_not_one_tokens(tiny_model: Path) -> None:
    import threading

    hold = threading.Event()
    app = LlamaApp(tiny_options(tiny_model))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        app.model = ScriptedModel([("thinking", "A first thought."), ("thinking", " A second."), "Done."], hold=hold)
        await send_chat(pilot, "think")
        await wait_for(pilot, lambda: "A first thought." in screen_text(app))
        assert "💭 Thinking · 1 token · 1 s" in screen_text(app)
        hold.set()
        await wait_for(pilot, lambda: reply_ended(app))
        assert app.query(AssistantMessage).last().header_text == "▸ Thought for 2 s · 2 tokens (t shows it)"
