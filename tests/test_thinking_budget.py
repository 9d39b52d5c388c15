"""A thinking budget ends a reasoning model's thinking at that many tokens: the engine
evaluates the model's own close marker as if the model had written it, and the answer follows.

The model: the tiny random-weight llama with <think> and </think> as control tokens in its
vocabulary (so the engine finds the markers there) and <think> as the token it always writes:
it would think for ever, which is what a budget is for.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.events import Finished, GenerationEvent, TextDelta, ThinkingDelta
from llama_tui.engine.model import LoadedModel
from llama_tui.engine.settings import LoadSettings, SamplingSettings
from llama_tui.engine.thinking import ThinkingMarkers
from llama_tui.engine.thinking_budget import ThinkingBudget
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_messages import AssistantMessage
from tests.test_app import SIZE, reply_ended, send_chat, tiny_options, wait_for
from tests.tiny_gguf import write_tiny_llama_gguf

LONGER = SamplingSettings(temperature=0.0, max_reply_tokens=16)
THINK = ThinkingMarkers("<think>", "</think>", style="<think>")


@pytest.fixture(scope="module")
def thinker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("thinker") / "thinker.gguf",
                                 chat_template="{{ messages[-1]['content'] }}",
                                 control_tokens=["<think>", "</think>"], favoured_token="<think>")


def run(model: LoadedModel, budget: int | None) -> tuple[list[GenerationEvent], Finished]:
    events = list(model.chat([ChatMessage("user", "hi")], LONGER, thinking_budget=budget))
    finished = events[-1]
    assert isinstance(finished, Finished)
    return events, finished


def test_without_a_budget_the_model_thinks_until_the_reply_limit(thinker: Path) -> None:
    model = LoadedModel.load(thinker, LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1))
    try:
        _, finished = run(model, None)
        assert finished.text == "" and finished.thinking == "<think>" * 15  # the first one opened the block
        assert finished.stats.generated_tokens == 16
    finally:
        model.close()


def test_a_budget_closes_the_thinking_and_the_answer_follows(thinker: Path) -> None:
    model = LoadedModel.load(thinker, LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1))
    try:
        events, finished = run(model, 3)
        # Three tokens of thinking (the opener and two more), then the close the engine put in
        # (the style's end text: "</think>" between newlines); the model goes on writing its
        # token, now as the answer.
        assert finished.thinking == "<think><think>"
        assert finished.text and set(finished.text.split("<think>")) == {""}, finished.text
        kinds = [type(e) for e in events if isinstance(e, (TextDelta, ThinkingDelta))]
        assert kinds.index(TextDelta) > kinds.index(ThinkingDelta)
        assert ThinkingDelta not in kinds[kinds.index(TextDelta):]  # once the answer starts, no more thinking
        assert finished.stats.generated_tokens == 16  # the inserted tokens are part of the reply
    finally:
        model.close()


def test_the_budget_counts_only_tokens_inside_the_thinking() -> None:
    budget = ThinkingBudget(THINK, 2)
    budget.count("\n")  # before the thinking starts: not counted
    assert not budget.thinking and budget.thinking_tokens == 0
    budget.count("<think>")
    budget.count("Hmm")
    assert budget.thinking and budget.due
    budget.closed()
    assert not budget.due and budget.closed_by_budget
    budget.count("</thi")  # the close marker's tokens come next
    assert budget.thinking and not budget.due  # not inserted twice
    budget.count("nk>")
    budget.count("Paris")
    assert not budget.thinking and budget.thinking_tokens == 2

    opened = ThinkingBudget(THINK, 2, opened_in_prompt=True)  # the template opened the block
    opened.count("Let")
    assert opened.thinking and not opened.due
    opened.count("</think>")  # the model closed it itself, within the budget
    opened.count("Paris")
    assert not opened.due and not opened.closed_by_budget


async def test_the_thinking_budget_setting_caps_the_thinking_in_the_app(thinker: Path) -> None:
    options = tiny_options(thinker, load=LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1), sampling=LONGER)
    options = replace(options, settings=options.settings.with_values({"thinking_budget": 3}))
    app = LlamaApp(options)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "hi")
        await wait_for(pilot, lambda: reply_ended(app))
        reply = app.chat_pane.conversation.branch()[-1]
        assert reply.thinking == "<think><think>" and reply.text.startswith("<think>"), reply
        shown = app.query(AssistantMessage).last()
        assert shown.header_text.startswith("▸ Thought for") and "3 tokens" in shown.header_text


def test_the_budget_closes_the_thinking_at_the_same_token_while_drafting(thinker: Path) -> None:
    """A model that repeats itself is drafted for (speculative "on"): drafts verified past the
    budget are dropped, and the reply is the one without drafting."""
    model = LoadedModel.load(thinker, LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1))
    try:
        plain = list(model.chat([ChatMessage("user", "hi")], LONGER, thinking_budget=3))[-1]
        drafting = SamplingSettings(temperature=0.0, max_reply_tokens=16, speculative="on")
        drafted = list(model.chat([ChatMessage("user", "hi")], drafting, thinking_budget=3))[-1]
        assert isinstance(plain, Finished) and isinstance(drafted, Finished)
        assert drafted.stats.drafted_tokens > 0  # drafting did happen
        assert (drafted.thinking, drafted.text) == (plain.thinking, plain.text) == ("<think><think>", plain.text)
        assert drafted.stats.generated_tokens == plain.stats.generated_tokens == 16
    finally:
        model.close()
