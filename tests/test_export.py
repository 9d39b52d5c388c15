"""Export of a conversation's current branch (Markdown, JSON) and import from JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest

from llama_tui.engine.conversation import Conversation, Message
from llama_tui.engine.export import import_conversation, to_json, to_json_text, to_markdown


def branched_chat() -> Conversation:
    chat = Conversation(title="Capitals", system_prompt="You are terse.\nAnswer in one line.", preset="terse")
    question = chat.add("user", "What is the capital of France?")
    chat.add("assistant", "Lyon.", model_name="Old", stop_reason="end")  # regenerated below
    chat.add(
        "assistant",
        "Paris.",
        parent_id=question.id,
        model_name="Gemma 3 270m",
        model_ref="starter:",
        sampling={"temperature": 0.8, "top_k": 40, "max_reply_tokens": None},
        seed=561371,
        figures={"tokens": 3, "tok_s": 41.5},
        stop_reason="end",
        thinking="France: Paris.",
    )
    chat.add("user", "And Japan? Say **why**.")
    chat.add("assistant", "Tokyo", model_name="Gemma 3 270m", stop_reason="length")
    return chat


def branch_facts(conversation: Conversation) -> list[tuple[object, ...]]:
    """Everything of the branch but ids."""
    fields = [f.name for f in dataclasses.fields(Message) if f.name not in ("id", "parent_id")]
    return [tuple(getattr(m, name) for name in fields) for m in conversation.branch()]


def test_markdown_has_a_header_and_the_current_branch() -> None:
    text = to_markdown(branched_chat())
    assert text.startswith("# Capitals\n\n- **Model:** Gemma 3 270m\n- **Date:** ")
    assert "- **Sampling:** temperature 0.8, top_k 40, seed 561371" in text
    assert "- **System prompt:**\n\n  > You are terse.\n  > Answer in one line.\n" in text
    assert "## User\n\nWhat is the capital of France?\n\n## Assistant\n\nParis.\n" in text
    assert "And Japan? Say **why**." in text and "*(stopped: length)*" in text
    assert "Lyon" not in text  # another branch
    assert "France: Paris." not in text  # thinking left out...
    with_thinking = to_markdown(branched_chat(), include_thinking=True)
    assert "> **Thinking**\n>\n> France: Paris.\n\nParis." in with_thinking  # ...unless asked for


def test_markdown_of_an_empty_chat() -> None:
    assert to_markdown(Conversation()).startswith("# New chat\n\n- **Date:** ")


def test_json_puts_openai_messages_first() -> None:
    data = to_json(branched_chat())
    assert list(data) == ["messages", "llama_tui"]
    assert data["messages"] == [
        {"role": "system", "content": "You are terse.\nAnswer in one line."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And Japan? Say **why**."},
        {"role": "assistant", "content": "Tokyo"},
    ]
    details = data["llama_tui"]["messages"]
    assert len(details) == 5 and details[0] == {"system_prompt": True}
    assert details[2]["seed"] == 561371 and details[2]["thinking"] == "France: Paris."
    assert data["llama_tui"]["title"] == "Capitals"
    json.loads(to_json_text(branched_chat()))  # and it is JSON as text


def test_export_then_import_gives_the_same_branch() -> None:
    chat = branched_chat()
    for exported in (to_json(chat), to_json_text(chat), to_json_text(chat).encode()):
        imported = import_conversation(exported)
        assert imported.id != chat.id  # a new conversation...
        assert branch_facts(imported) == branch_facts(chat)  # ...with the same branch
        for name in ("title", "system_prompt", "preset", "created_at", "updated_at"):
            assert getattr(imported, name) == getattr(chat, name), name
        assert len(imported) == 4  # only the branch was exported


def test_a_plain_openai_list_imports() -> None:
    messages = [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "Greet back."},
        {"role": "system", "content": "Now be brief."},
        {"role": "user", "content": "Bye"},
    ]
    for data in (messages, {"messages": messages}, json.dumps(messages)):
        chat = import_conversation(data)
        assert chat.system_prompt == "Be kind."
        assert [(m.role, m.text) for m in chat.branch()] == [
            ("user", "Hi there"),
            ("assistant", "Hello!"),
            ("system", "Now be brief."),
            ("user", "Bye"),
        ]
        assert chat.branch()[1].thinking == "Greet back."
        assert chat.display_title == "Hi there" and chat.branch()[-1].id == chat.current_id
    assert import_conversation([]).messages == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "this is not JSON"),
        ("42", "expected a list of messages"),
        ({"chat": []}, 'expected "messages"'),
        ({"messages": "hello"}, "expected a list of messages"),
        (["hello"], "message 1 must be an object"),
        ([{"content": "no role"}], "message 1: role None cannot be imported"),
        ([{"role": "user", "content": "a"}, {"role": "tool", "content": "{}"}], "message 2: role 'tool'"),
        ([{"role": "user"}], 'message 1: "content" must be text'),
        ([{"role": "user", "content": 5}], 'message 1: "content" must be text'),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
         "only text can be imported, not image_url"),
        ({"messages": [{"role": "user", "content": "a"}], "llama_tui": []}, '"llama_tui" must be an object'),
        ({"messages": [{"role": "user", "content": "a"}], "llama_tui": {"messages": []}}, "one entry per message (1)"),
        ({"messages": [{"role": "user", "content": "a"}], "llama_tui": {"messages": ["x"]}},
         "entry 1 must be an object"),
        ({"messages": [{"role": "user", "content": "a"}], "llama_tui": {"messages": [{"seed": "7"}]}},
         'message 1: "seed" must be a whole number, not "7"'),
        ({"messages": [{"role": "user", "content": "a"}], "llama_tui": {"messages": [{"created_at": True}]}},
         'message 1: "created_at" must be a number'),
        ({"messages": [], "llama_tui": {"title": 3}}, 'llama_tui: "title" must be text'),
    ],
)
def test_bad_input_is_refused_with_a_reason(data: object, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        import_conversation(data)
    assert message in str(refused.value)
    assert type(refused.value) is ValueError  # not a KeyError or TypeError from deep inside


def test_markdown_says_the_seed_once_when_the_sampling_holds_it() -> None:
    chat = Conversation()
    chat.add("user", "hi")
    chat.add("assistant", "hello", sampling={"temperature": 0.3, "seed": 7}, seed=7, stop_reason="end")
    text = to_markdown(chat)
    assert "- **Sampling:** temperature 0.3, seed 7\n" in text and text.count("seed 7") == 1
