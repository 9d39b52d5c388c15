"""A model whose replies are written by the test: for what a real model cannot be made to do
on demand (write markup, escape sequences, a given Markdown layout). Everything after it (the
app's request handling, the decode-thread worker, the reply buffer, the widgets, the store)
is the real path. It stands in for the model behind a real, loaded app."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from llama_tui.engine.backend import Capabilities
from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.events import Finished, GenerationEvent, GenerationStats, StopReason, TextDelta, ThinkingDelta
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.settings import SamplingSettings


class ScriptedModel:
    """Replies with `parts`, one TextDelta each (a ("thinking", text) part: a ThinkingDelta,
    as a server that sends reasoning_content gives), then Finished. With a `hold`, the reply
    waits after its first part until the test sets it (to look at a reply mid-way)."""

    def __init__(self, parts: Sequence[str | tuple[str, str]], *, name: str = "scripted",
                 hold: threading.Event | None = None) -> None:
        self.parts = list(parts)
        self.hold = hold
        self.name = name
        self.ref = ModelRef.server("http://scripted.invalid/v1", name)
        self.context_size = 4096
        self.context_used = 0
        self.capabilities = Capabilities()
        self.description = "a scripted model (tests)"
        self.asked: list[Sequence[ChatMessage]] = []

    def chat(self, messages: Sequence[ChatMessage], sampling: SamplingSettings, *, seed: int | None = None,
             prefill: str = "", enable_thinking: bool = True, thinking_budget: int | None = None
             ) -> Iterator[GenerationEvent]:
        self.asked.append(list(messages))
        return self._reply()

    def complete(self, text: str, sampling: SamplingSettings, *, seed: int | None = None) -> Iterator[GenerationEvent]:
        return self._reply()

    def _reply(self) -> Iterator[GenerationEvent]:
        answer, thinking = [], []
        for number, part in enumerate(self.parts, start=1):
            stats = GenerationStats(generated_tokens=number, decode_seconds=float(number),
                                    context_size=self.context_size)
            if isinstance(part, tuple):
                thinking.append(part[1])
                yield ThinkingDelta(part[1], stats)
            else:
                answer.append(part)
                yield TextDelta(part, stats)
            if number == 1 and self.hold is not None:
                self.hold.wait(30)
        yield Finished(StopReason.END, "".join(answer), GenerationStats(generated_tokens=len(self.parts)),
                       thinking="".join(thinking))

    def cancel(self) -> None:
        pass

    def count_tokens(self, text: str) -> int | None:
        return None

    def clear_context(self) -> bool:
        return True

    def close(self) -> None:
        pass
