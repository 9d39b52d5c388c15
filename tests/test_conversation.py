"""The conversation tree (engine.conversation): branches and what deleting does to them."""

from __future__ import annotations

from llama_tui.engine.conversation import Conversation


def test_deleting_a_version_of_a_reply_shows_the_version_left() -> None:
    chat = Conversation()
    question = chat.add("user", "hi")
    first = chat.add("assistant", "hello")
    second = chat.add("assistant", "hey", parent_id=question.id)  # r: a second version
    assert [m.text for m in chat.branch()] == ["hi", "hey"] and chat.siblings(second.id) == (2, 2)
    assert chat.delete(second.id) == [second.id]
    assert [m.text for m in chat.branch()] == ["hi", "hello"] and chat.current_id == first.id


def test_deleting_the_only_reply_leaves_the_question_and_a_first_message_goes_to_its_other_version() -> None:
    chat = Conversation()
    question = chat.add("user", "hi")
    reply = chat.add("assistant", "hello")
    chat.add("user", "and?")
    assert chat.delete(reply.id)[0] == reply.id and len(chat) == 1  # what followed went with it
    assert chat.current_id == question.id
    edited = chat.add("user", "hi there", parent_id=None)  # e on the first message: a new root
    chat.add("assistant", "hello there")
    chat.delete(edited.id)
    assert [m.text for m in chat.branch()] == ["hi"]
