"""How a base model (the starter) is prompted: a User/Assistant transcript that opens with a
few worked exchanges (chat_templates.TRANSCRIPT_TEMPLATE), which give way when the context is
short. bench/first_answers.py shows the answers that made the examples worth their tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_tui.engine.chat_templates import (
    COMPACT_TEMPLATES,
    TRANSCRIPT_EXAMPLES,
    TRANSCRIPT_HEADER,
    TRANSCRIPT_TEMPLATE,
    choose_chat_template,
)
from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.events import Finished, StopReason, TurnsDropped
from llama_tui.engine.jinja_chat import render_chat
from llama_tui.engine.model import LoadedModel
from llama_tui.engine.settings import LoadSettings, SamplingSettings

EXAMPLES_TEXT = (
    "User: Hi there!\n"
    "Assistant: Hello! I'm an AI assistant. How can I help you?\n"
    "User: What is the largest planet in the solar system?\n"
    "Assistant: Jupiter is the largest planet in the solar system.\n"
    "User: Give me two tips for sleeping better.\n"
    "Assistant: 1. Go to bed at the same time every night.\n"
    "2. Keep screens out of the bedroom.\n"
    "User: Write a short poem about the sea.\n"
    "Assistant: Grey waves roll in and slip away,\n"
    "the gulls cry out above the bay.\n"
    "User: Write a Python function that adds two numbers.\n"
    "Assistant: def add(a, b):\n"
    "    return a + b\n"
    "User: What is a noun?\n"
    "Assistant: A noun is a word that names a person, place or thing, like 'teacher', 'city' or 'book'.\n"
)


def render(source: str, *messages: tuple[str, str]) -> str:
    return render_chat(source, [{"role": role, "content": text} for role, text in messages],
                       bos_token="<bos>", eos_token="<eos>")


def test_the_transcript_is_the_header_then_the_worked_examples_then_the_chat() -> None:
    prompt = render(TRANSCRIPT_TEMPLATE, ("user", "What is the capital of France?"))
    assert prompt == (
        "<bos>Below is a conversation between a user and an AI assistant. The assistant is helpful and "
        "knowledgeable: it answers questions correctly in a sentence or two, and when asked to write "
        "something, it writes it.\n\n"
        + EXAMPLES_TEXT
        + "User: What is the capital of France?\nAssistant:"
    )


def test_a_system_prompt_takes_the_headers_place_and_later_turns_follow_the_examples() -> None:
    prompt = render(TRANSCRIPT_TEMPLATE, ("system", "  Answer in French. "), ("user", "Hi"),
                    ("assistant", "Bonjour !"), ("user", "2+2=?"))
    assert prompt == ("<bos>Answer in French.\n\n" + EXAMPLES_TEXT
                      + "User: Hi\nAssistant: Bonjour !\nUser: 2+2=?\nAssistant:")
    assert TRANSCRIPT_HEADER not in prompt


def test_the_compact_form_is_the_same_transcript_without_the_examples() -> None:
    compact = render(COMPACT_TEMPLATES["transcript"], ("user", "Hi"))
    assert compact == f"<bos>{TRANSCRIPT_HEADER}\n\nUser: Hi\nAssistant:"
    full = render(TRANSCRIPT_TEMPLATE, ("user", "Hi"))
    assert full == compact.replace("\n\nUser: Hi", "\n\n" + EXAMPLES_TEXT + "User: Hi")
    base = choose_chat_template({"general.architecture": "gemma3", "general.name": "Gemma 3 270m"}, "<bos>", "<eos>")
    assert base.name == "transcript" and base.compact_source == COMPACT_TEMPLATES["transcript"]
    assert "worked exchanges" in base.reason
    chat = choose_chat_template({"general.architecture": "gemma3", "general.name": "gemma-3-1b-it"}, "<bos>", "<eos>")
    assert chat.compact_source is None


def test_no_example_could_end_a_reply_or_start_a_turn_early() -> None:
    """The transcript's stop string is "\\nUser:": an example holding it would teach the model
    to stop mid-answer, and one ending in a newline would double the turn break."""
    for asked, answered in TRANSCRIPT_EXAMPLES:
        for text in (asked, answered):
            assert "\nUser:" not in "\n" + text and "\nAssistant:" not in "\n" + text, text
            assert text == text.strip() and "{" not in text, text


def _reply(model: LoadedModel, messages: list[ChatMessage], max_tokens: int) -> tuple[list[object], Finished]:
    events = list(model.chat(messages, SamplingSettings(temperature=0.0, max_reply_tokens=max_tokens)))
    finished = events[-1]
    assert isinstance(finished, Finished)
    return events, finished


def test_the_examples_give_way_before_any_turn_of_the_chat(tiny_model: Path) -> None:
    """The tiny test model's small vocabulary spends ~740 tokens on the examples."""
    chat = [ChatMessage("user", "first"), ChatMessage("assistant", "reply"), ChatMessage("user", "second")]
    roomy = LoadedModel.load(tiny_model, LoadSettings(n_ctx=2048, n_threads=1, n_threads_batch=1))
    try:
        _reply(roomy, chat, 4)
        context = roomy.context_text()
        assert "User: Hi there!" in context and context.index("User: What is a noun?") < context.index("User: first")
    finally:
        roomy.close()
    short = LoadedModel.load(tiny_model, LoadSettings(n_ctx=512, n_threads=1, n_threads_batch=1))
    try:
        events, _ = _reply(short, chat, 4)
        assert not any(isinstance(event, TurnsDropped) for event in events)  # every turn is still there
        context = short.context_text()
        assert "Hi there!" not in context and "User: first\nAssistant: reply\nUser: second\nAssistant:" in context
    finally:
        short.close()


@pytest.fixture(scope="module")
def starter(starter_model: Path):
    model = LoadedModel.load(starter_model, LoadSettings(n_ctx=2048))
    yield model
    model.close()


@pytest.mark.parametrize("question, expected", [
    ("What is the capital of France?", ["Paris"]),
    # With the bare transcript (no examples) the starter answered these two off the point:
    # "I'm a fan of the show." and "What is the output?".
    ("Who wrote Romeo and Juliet?", ["Shakespeare"]),
    ("Write a Python function that reverses a string.", ["def ", "return", "[::-1]"]),
])
def test_the_starter_answers_a_newcomers_question_and_stops(
    starter: LoadedModel, question: str, expected: list[str]
) -> None:
    assert starter.chat_template.name == "transcript"
    starter.clear_context()
    _, finished = _reply(starter, [ChatMessage("user", question)], 64)
    assert finished.reason is StopReason.END, finished.text  # it ended its turn by itself
    for part in expected:
        assert part in finished.text, finished.text
