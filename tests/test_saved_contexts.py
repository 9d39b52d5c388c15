"""Saved chat contexts on the real tiny model: a chat resumed after the model was closed and
opened again is not read again, replies stay token for token the same, and the folder keeps
to its cap whatever is in it."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.events import Finished
from llama_tui.engine.model import LoadedModel
from llama_tui.engine.saved_contexts import MIN_TOKENS, STATE, TOKENS, SavedContexts
from llama_tui.engine.settings import LoadSettings, SamplingSettings

GREEDY = SamplingSettings(temperature=0.0, max_reply_tokens=12)
SETTINGS = LoadSettings(n_ctx=1024, n_threads=1, n_threads_batch=1)
LONG = " ".join(f"item {n} is {'red' if n % 3 else 'blue'} and weighs {n * 7 % 50} grams;" for n in range(14))


def reply(model: LoadedModel, messages: list[ChatMessage]) -> Finished:
    events = list(model.chat(messages, GREEDY))
    finished = events[-1]
    assert isinstance(finished, Finished)
    return finished


def chat_of(first_reply: str) -> list[ChatMessage]:
    return [ChatMessage("user", f"Here is a list: {LONG}"), ChatMessage("assistant", first_reply),
            ChatMessage("user", "Which items are blue?")]


def states(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{STATE}"))


def test_a_chat_resumed_after_reopening_is_not_read_again(tiny_model: Path, tmp_path: Path) -> None:
    contexts = SavedContexts(tmp_path / "contexts", cap_mib=64)
    model = LoadedModel.load(tiny_model, SETTINGS, contexts=contexts)
    try:
        first = reply(model, chat_of("")[:1])
        assert first.stats.prompt_tokens > MIN_TOKENS
        assert len(states(contexts.folder)) == 1  # saved after the reply
    finally:
        model.close()

    resumed_model = LoadedModel.load(tiny_model, SETTINGS, contexts=contexts)
    plain_model = LoadedModel.load(tiny_model, SETTINGS)  # no saved contexts: reads it all
    try:
        resumed = reply(resumed_model, chat_of(first.text))
        plain = reply(plain_model, chat_of(first.text))
    finally:
        resumed_model.close()
        plain_model.close()
    assert contexts.loaded == 1
    assert plain.stats.prompt_evaluated == plain.stats.prompt_tokens
    # Only what follows the saved chat is evaluated: the new message and its template.
    assert resumed.stats.prompt_tokens == plain.stats.prompt_tokens
    assert resumed.stats.prompt_evaluated < plain.stats.prompt_tokens - first.stats.prompt_tokens + 1
    assert resumed.text == plain.text  # the loaded state is the same context
    # The longer chat replaced the state of its start: one file per chat.
    assert len(states(contexts.folder)) == 1


def test_a_damaged_state_is_deleted_and_the_chat_read_as_usual(tiny_model: Path, tmp_path: Path) -> None:
    contexts = SavedContexts(tmp_path / "contexts", cap_mib=64)
    model = LoadedModel.load(tiny_model, SETTINGS, contexts=contexts)
    try:
        first = reply(model, chat_of("")[:1])
    finally:
        model.close()
    (saved,) = states(contexts.folder)
    saved.write_bytes(saved.read_bytes()[:1000])  # cut short, as by a full disk

    model = LoadedModel.load(tiny_model, SETTINGS, contexts=contexts)
    try:
        resumed = reply(model, chat_of(first.text))
    finally:
        model.close()
    assert contexts.loaded == 0
    assert resumed.stats.prompt_evaluated == resumed.stats.prompt_tokens
    assert resumed.text  # the chat went on
    assert saved not in states(contexts.folder)  # the damaged one is gone; the new chat is saved
    assert len(states(contexts.folder)) == 1


def test_another_context_length_does_not_use_the_state(tiny_model: Path, tmp_path: Path) -> None:
    contexts = SavedContexts(tmp_path / "contexts", cap_mib=64)
    model = LoadedModel.load(tiny_model, SETTINGS, contexts=contexts)
    try:
        first = reply(model, chat_of("")[:1])
    finally:
        model.close()
    other = LoadedModel.load(tiny_model, LoadSettings(n_ctx=2048, n_threads=1, n_threads_batch=1), contexts=contexts)
    try:
        resumed = reply(other, chat_of(first.text))
    finally:
        other.close()
    assert contexts.loaded == 0
    assert resumed.stats.prompt_evaluated == resumed.stats.prompt_tokens


def test_short_chats_are_not_saved_and_a_zero_cap_saves_nothing(tiny_model: Path, tmp_path: Path) -> None:
    contexts = SavedContexts(tmp_path / "contexts", cap_mib=64)
    # ChatML, not the base-model transcript the tiny model would get: its worked examples alone
    # are ~740 tokens in the tiny model's small vocabulary, so no chat of it is short.
    model = LoadedModel.load(tiny_model, replace(SETTINGS, chat_format="chatml"), contexts=contexts)
    try:
        short = reply(model, [ChatMessage("user", "hi")])
        assert short.stats.prompt_tokens < MIN_TOKENS
        assert states(contexts.folder) == []
        contexts.cap_mib = 0
        reply(model, chat_of("")[:1])
        assert states(contexts.folder) == []
    finally:
        model.close()


def test_the_folder_keeps_under_its_cap_least_recently_used_out(tiny_model: Path, tmp_path: Path) -> None:
    contexts = SavedContexts(tmp_path / "contexts", cap_mib=64)
    model = LoadedModel.load(tiny_model, SETTINGS, contexts=contexts)
    try:
        reply(model, [ChatMessage("user", f"First chat. {LONG}")])
        (one,) = states(contexts.folder)
        size = one.stat().st_size
        contexts.cap_mib = size * 2.5 / 2**20  # room for two such states
        for n in range(2, 5):
            reply(model, [ChatMessage("user", f"Chat number {n}. {LONG}")])
    finally:
        model.close()
    kept = states(contexts.folder)
    assert len(kept) == 2
    assert one not in kept  # the oldest went first
    assert sum(path.stat().st_size for path in kept) <= size * 2.5
    assert sorted(contexts.folder.glob(f"*{TOKENS}")) == [path.with_suffix(TOKENS) for path in kept]


@pytest.fixture(autouse=True)
def _no_saved_state_leaks(tmp_path: Path):
    yield
    assert not list(tmp_path.glob("contexts/.*.part"))  # no half-written file is left behind


async def test_a_chat_resumed_in_the_app_reads_only_the_new_message(tiny_model: Path) -> None:
    """As the README says: after the app is started again and the chat resumed, the next reply
    reads only the new message (the -v line under it says how much of the prompt was new)."""
    from llama_tui.engine.config import AppConfig
    from llama_tui.ui.app import LlamaApp
    from llama_tui.ui.chat_messages import AssistantMessage
    from tests.test_app import SIZE, reply_ended, send_chat, tiny_options, wait_for

    def options(**more):
        return tiny_options(tiny_model, load=SETTINGS, sampling=GREEDY, saved_config=AppConfig(), verbose=True, **more)

    app = LlamaApp(options())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, f"Here is a list: {LONG}")
        await wait_for(pilot, lambda: reply_ended(app))
        first_prompt = app.chat_pane.conversation.branch()[-1].figures["prompt_tokens"]
    assert first_prompt > MIN_TOKENS

    app = LlamaApp(options(resume="last"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None and len(app.chat_pane.conversation.branch()) == 2)
        await send_chat(pilot, "Which items are blue?")
        await wait_for(pilot, lambda: reply_ended(app) and len(app.chat_pane.conversation.branch()) == 4)
        footer = app.query(AssistantMessage).last().footer_text
    new, total = map(int, re.search(r"prompt (\d+) new of (\d+)", footer).groups())
    assert total > first_prompt
    assert new <= total - first_prompt + 1  # the saved chat was not read again
