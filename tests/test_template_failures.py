"""Chat templates from model files that raise, never end or explode never break a chat: the
failure is said, naming the template, and the architecture's built-in format answers instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_pane import AssistantMessage, ChatPane, Notice, UserMessage
from tests.test_app import SIZE, reply_ended, send_chat, tiny_options, wait_for
from tests.tiny_gguf import write_tiny_llama_gguf

RAISES = (
    "{% if messages[0]['role'] == 'user' %}"
    "{{ raise_exception('Conversations must start with a system turn') }}{% endif %}"
)
ESCAPES = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
RUNAWAY = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
EXPLODES = "{{ 'x ' * 50000000 }}"
# 2 GiB in one string at render time, refused by the worker's memory limit. It depends on the
# messages: a constant ('x' * 2147483648) would be folded by Jinja's compiler when
# llama-cpp-python compiles the template while loading (see test_readme_promises.py).
GREEDY = "{{ 'x' * (1073741824 * (messages | length + 1)) }}"


def model_with_template(tmp_path: Path, template: str) -> Path:
    return write_tiny_llama_gguf(tmp_path / "strange-template.gguf", chat_template=template, name="strange")


@pytest.mark.parametrize("template, reason", [
    (RAISES, "raised an error: Conversations must start with a system turn"),
    (ESCAPES, "SecurityError"),
    (EXPLODES, "produced more than 8,388,608 characters and was stopped"),
    # README: "one that ... never ends (stopped after 5 s ...) ... or 1 GiB of memory gives a
    # message naming it, and your message is put back". In the app, with the app's own limits.
    (RUNAWAY, "was stopped after 5 s: it was still running, and may never end."),
    (GREEDY, "ran out of memory: it tried to use more than 1 GiB and was stopped."),
])
async def test_a_failing_template_is_named_and_a_built_in_format_answers(
    tmp_path: Path, template: str, reason: str
) -> None:
    app = LlamaApp(tiny_options(model_with_template(tmp_path, template)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "hello there")
        await wait_for(pilot, lambda: reply_ended(app))
        notice = str(app.query_one(Notice).render())
        assert notice.startswith("The chat template in strange-template.gguf") and reason in notice
        assert "The built-in chatml format is used instead" in notice
        # The chat goes on: the message was sent and answered, in the built-in format.
        assert [str(m.render()) for m in app.query(UserMessage)] == ["hello there"]
        assert [m.role for m in app.query_one(ChatPane).conversation.branch()] == ["user", "assistant"]
        assert app.model is not None and app.model.description.split(" · ")[1].startswith("chat template chatml")
        # From then on the built-in one is used: no second failure, no second notice.
        await send_chat(pilot, "and again")
        await wait_for(pilot, lambda: reply_ended(app) and len(app.query(UserMessage)) == 2)
        assert len(app.query(Notice)) == 1


async def test_escape_stops_a_template_that_never_ends(tmp_path: Path) -> None:
    app = LlamaApp(tiny_options(model_with_template(tmp_path, RUNAWAY)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "hello there")
        await wait_for(pilot, lambda: app.generating)
        await pilot.pause(0.3)  # the template is running in its worker now
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.generating)
        await pilot.pause()
        # Stopped by the key, not by the template's time limit (that would be an error notice).
        assert not app.query(Notice)
        assert "stopped" in app.query_one(AssistantMessage).footer_text
        # And the app goes on: the worker was replaced, the next render runs (and is stopped too).
        assert app.model is not None and app.model._sandbox is not None
        await send_chat(pilot, "again")
        await wait_for(pilot, lambda: app.generating)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.generating)
        assert len(app.query(AssistantMessage)) == 2
