"""What a chat turn leaves behind in memory: only what the transcript shows.

Counts of live objects, not sizes or times, so they hold on any machine
(bench/memory_per_turn.py measures the bytes).
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from textual.widgets._footer import FooterKey

from llama_tui.engine.settings import SamplingSettings
from llama_tui.ui.app import LlamaApp
from llama_tui.ui.chat_pane import AssistantMessage
from tests.test_app import SIZE, reply_ended, send_chat, tiny_options, wait_for


def detached_footer_keys() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, FooterKey) and not o.is_attached)


async def test_footer_keys_of_past_turns_are_freed(tiny_model: Path) -> None:
    """The footer rebuilds its keys when a reply starts and when it ends (Esc comes and
    goes); the keys it drops must not stay alive (llama_tui/ui/footer.py)."""
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=5)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        for turn in range(1, 4):
            await send_chat(pilot, f"message {turn}")
            await wait_for(pilot, lambda turn=turn: len(app.query(AssistantMessage)) == turn and reply_ended(app))
        await pilot.pause()
        # Each turn rebuilt the footer twice, dropping ~9 keys each time; before the fix
        # they were all still alive here.
        await wait_for(pilot, lambda: detached_footer_keys() == 0, timeout=10)


async def test_a_new_chat_frees_the_old_replies(tiny_model: Path) -> None:
    app = LlamaApp(tiny_options(tiny_model, sampling=SamplingSettings(max_reply_tokens=5)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model is not None)
        await send_chat(pilot, "first chat")
        await wait_for(pilot, lambda: reply_ended(app))
        # (Not query_one: the screen's query_one cache would hold the reply itself.)
        old_reply = weakref.ref(app.query(AssistantMessage).last())
        await pilot.press("ctrl+n")
        # Textual's own layout caches let go of removed widgets after a few more layouts.
        for turn in range(1, 4):
            await send_chat(pilot, f"second chat {turn}")
            await wait_for(pilot, lambda turn=turn: len(app.query(AssistantMessage)) == turn and reply_ended(app))
        await pilot.pause()
        gc.collect()
        assert old_reply() is None
