"""The engine on real llama.cpp models: the tiny random one for mechanics, Gemma for real replies."""

from __future__ import annotations

import threading
from pathlib import Path

import llama_cpp
import pytest

from llama_tui.engine.events import Finished, PromptProgress, StopReason, TextDelta, TurnsDropped
from llama_tui.engine.model import (
    ChatMessage,
    EmptyPrompt,
    LoadedModel,
    ModelBusy,
    ModelClosed,
    ModelLoadError,
    PromptTooLong,
)
from llama_tui.engine.settings import LoadSettings, SamplingSettings

GREEDY = SamplingSettings(temperature=0.0)


def run(events) -> tuple[list[str], Finished, list]:
    """Drain a generation; return the text deltas, the Finished event and every event."""
    seen = list(events)
    finished = seen[-1]
    assert isinstance(finished, Finished)
    return [e.text for e in seen if isinstance(e, TextDelta)], finished, seen


@pytest.fixture
def tiny(tiny_model: Path):
    model = LoadedModel.load(tiny_model, LoadSettings(n_ctx=512, n_threads=1, n_threads_batch=1))
    yield model
    model.close()


@pytest.fixture(scope="module")
def gemma(starter_model: Path):
    model = LoadedModel.load(starter_model, LoadSettings(n_ctx=2048))
    yield model
    model.close()


# -- loading -------------------------------------------------------------------------------


def test_load_settings_take_effect(tiny_model: Path) -> None:
    settings = LoadSettings(n_ctx=768, n_threads=1, n_threads_batch=2, n_gpu_layers=0)
    model = LoadedModel.load(tiny_model, settings)
    try:
        llm = model._llm
        assert model.context_size == llama_cpp.llama_n_ctx(llm.ctx) == 768
        assert llama_cpp.llama_n_threads(llm.ctx) == 1
        assert llama_cpp.llama_n_threads_batch(llm.ctx) == 2
        # A CPU-only build ignores offloading; the value still reaches llama.cpp's params.
        assert llm.model_params.n_gpu_layers == 0
        assert model.name == "tiny-test-llama"
    finally:
        model.close()


def test_seed_makes_sampling_reproducible(tiny_model: Path) -> None:
    """The seed is a sampling setting: the same model, no reload, gives the same reply for the
    same seed, another for another seed."""
    model = LoadedModel.load(tiny_model, LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1))

    def reply(seed: int) -> str:
        sampling = SamplingSettings(seed=seed, temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, max_reply_tokens=24)
        return run(model.complete("once upon a time", sampling))[1].text

    try:
        assert reply(561371) == reply(561371)
        assert reply(561371) != reply(42)
        assert reply(42) == reply(42)
    finally:
        model.close()


def test_metadata_override_is_applied(tiny_model: Path) -> None:
    plain = LoadedModel.load(tiny_model, LoadSettings(n_ctx=256))
    overridden = LoadedModel.load(tiny_model, LoadSettings(n_ctx=256, overrides={"llama.context_length": 1234}))
    try:
        assert llama_cpp.llama_model_n_ctx_train(plain._llm.model) == 2048
        assert llama_cpp.llama_model_n_ctx_train(overridden._llm.model) == 1234
    finally:
        plain.close()
        overridden.close()


@pytest.mark.parametrize("kind, expected", [
    ("missing", "does not exist"),
    ("not_gguf", "is not a GGUF model file"),
    ("truncated", "could not load"),
])
def test_bad_model_files_give_a_clear_error(broken_model_files: dict[str, Path], kind: str, expected: str) -> None:
    with pytest.raises(ModelLoadError, match=expected) as error:
        LoadedModel.load(broken_model_files[kind], LoadSettings(n_ctx=256))
    assert broken_model_files[kind].name in str(error.value)


def test_truncated_file_error_carries_llama_cpp_reason(broken_model_files: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match="not within the file bounds"):
        LoadedModel.load(broken_model_files["truncated"], LoadSettings(n_ctx=256))


def test_invalid_settings_are_refused_before_loading(tiny_model: Path) -> None:
    with pytest.raises(ModelLoadError, match="n_threads must be a whole number from 1"):
        LoadedModel.load(tiny_model, LoadSettings(n_threads=0))


# -- streaming -----------------------------------------------------------------------------


def test_completion_streams_deltas_that_add_up(tiny: LoadedModel) -> None:
    deltas, finished, events = run(tiny.complete("hello world", SamplingSettings(max_reply_tokens=20)))
    assert len(deltas) >= 5  # streamed piece by piece, not at the end
    assert "".join(deltas) == finished.text
    assert finished.reason is StopReason.LENGTH
    assert finished.stats.generated_tokens == 20
    assert any(isinstance(e, PromptProgress) for e in events)
    # Context accounting is exact: BOS + prompt + the 19 tokens evaluated so far.
    assert finished.stats.context_used == tiny.context_used == finished.stats.prompt_tokens + 19


def test_chat_streams_and_reports_llama_cpp_figures(tiny: LoadedModel) -> None:
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello there")]
    deltas, finished, _ = run(tiny.chat(messages, SamplingSettings(max_reply_tokens=16)))
    stats = finished.stats
    assert "".join(deltas) == finished.text and len(deltas) > 3
    assert stats.prompt_evaluated == stats.prompt_tokens == stats.llama_prompt_tokens
    assert stats.llama_eval_tokens == stats.generated_tokens - 1  # the last token is sampled, not evaluated
    assert stats.tokens_per_second and stats.tokens_per_second > 0
    assert stats.time_to_first_token and stats.time_to_first_token > 0


def test_generation_never_runs_past_the_context(tiny_model: Path) -> None:
    model = LoadedModel.load(tiny_model, LoadSettings(n_ctx=64))
    try:
        _, finished, _ = run(model.complete("a b c", SamplingSettings()))
        assert finished.reason is StopReason.CONTEXT_FULL
        # llama.cpp rounds the context up to a multiple of 256.
        assert finished.stats.context_used <= model.context_size == 256
    finally:
        model.close()


def test_stop_between_tokens_keeps_the_partial_reply(tiny: LoadedModel) -> None:
    received: list[str] = []
    finished = None
    for event in tiny.complete("stop me", SamplingSettings()):
        if isinstance(event, TextDelta):
            received.append(event.text)
            if len(received) == 3:
                tiny.cancel()
        elif isinstance(event, Finished):
            finished = event
    assert finished is not None and finished.reason is StopReason.CANCELLED
    assert finished.text == "".join(received)
    assert 3 <= finished.stats.generated_tokens <= 4


def test_stop_during_a_long_prompt_evaluation(gemma: LoadedModel) -> None:
    """llama.cpp's abort callback stops a prompt evaluation mid-batch.

    The stop comes from inside llama.cpp's computation of the second batch: the test wraps
    the engine's abort callback (which llama.cpp asks between graph nodes) and presses
    stop the first time llama.cpp asks after the first batch was reported. So the stop
    lands mid-batch however fast or loaded the machine is, and what happened is told by
    counts: the batches reported, the tokens evaluated, how often llama.cpp asked (how
    long the stop takes is a figure of bench/latency.py)."""
    probe = SamplingSettings(temperature=0.0, max_reply_tokens=8)
    before = run(gemma.complete("The capital of France is", probe))[1].text
    long_text = "The quick brown fox jumps over the lazy dog. " * 170  # ~1700 tokens: 4 batches of 512

    engine_callback = gemma._abort_callback
    first_batch_done = False
    asked_after_stop = 0

    def ask(data: object) -> bool:
        nonlocal asked_after_stop
        if first_batch_done:
            if asked_after_stop == 0:
                gemma.cancel()  # what Esc does, arriving while llama.cpp computes a batch
            asked_after_stop += 1
        return engine_callback(data)

    gemma._abort_callback = llama_cpp.ggml_abort_callback(ask)
    events = []
    try:
        for event in gemma.complete(long_text, GREEDY):
            events.append(event)
            first_batch_done = first_batch_done or isinstance(event, PromptProgress)
    finally:
        gemma._abort_callback = engine_callback
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.reason is StopReason.CANCELLED
    assert not any(isinstance(e, TextDelta) for e in events)
    # One batch was evaluated and reported; the second was cut short inside llama.cpp: it
    # stopped at the first check after the stop, not at the end of the batch.
    batch = gemma._llm.n_batch
    progress = [e for e in events if isinstance(e, PromptProgress)]
    assert [e.done for e in progress] == [batch]
    to_evaluate = progress[0].total  # the prompt less what the KV cache already held
    assert to_evaluate > 2 * batch
    assert finished.stats.prompt_evaluated == batch < to_evaluate <= finished.stats.prompt_tokens
    assert asked_after_stop == 1
    # The model is still usable afterwards, and the aborted batch left nothing stale behind.
    assert run(gemma.complete("The capital of France is", probe))[1].text == before


def test_close_during_decode_waits_for_the_decode_thread(tiny_model: Path) -> None:
    model = LoadedModel.load(tiny_model, LoadSettings(n_ctx=2048, n_threads=1, n_threads_batch=1))
    first_token = threading.Event()
    outcome: list[object] = []

    def decode() -> None:
        for event in model.complete("keep going", SamplingSettings()):
            first_token.set()
            outcome.append(event)

    thread = threading.Thread(target=decode)
    thread.start()
    assert first_token.wait(10)
    model.close()  # would segfault if it freed the model under the decode
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome[-1], Finished) and outcome[-1].reason is StopReason.CANCELLED
    assert model.closed
    with pytest.raises(ModelClosed):
        list(model.complete("again", SamplingSettings()))


def test_one_decode_at_a_time(tiny: LoadedModel) -> None:
    first = tiny.complete("one", SamplingSettings(max_reply_tokens=4))
    next(first)
    with pytest.raises(ModelBusy):
        next(tiny.complete("two", SamplingSettings(max_reply_tokens=4)))
    first.close()
    run(tiny.complete("three", SamplingSettings(max_reply_tokens=4)))


# -- chat context --------------------------------------------------------------------------


def test_chat_turns_reuse_the_kv_cache_prefix(tiny_model_chatml: Path) -> None:
    """Turn N evaluates only what the cache does not hold, by llama.cpp's own n_p_eval."""
    model = LoadedModel.load(tiny_model_chatml, LoadSettings(n_ctx=2048))
    try:
        assert model.chat_template.name == "gguf"
        messages = [ChatMessage("system", "You are terse.")]
        previous_prompt = 0
        for turn in range(5):
            messages.append(ChatMessage("user", f"question number {turn} about the weather"))
            _, finished, _ = run(model.chat(messages, SamplingSettings(max_reply_tokens=12)))
            stats = finished.stats
            assert stats.llama_prompt_tokens == stats.prompt_evaluated  # llama.cpp agrees
            if turn:
                reused = stats.prompt_tokens - stats.prompt_evaluated
                assert reused >= previous_prompt, f"turn {turn}: re-evaluated part of the last prompt"
                assert stats.prompt_evaluated < stats.prompt_tokens / 2
            previous_prompt = stats.prompt_tokens
            messages.append(ChatMessage("assistant", finished.text))
    finally:
        model.close()


def test_a_message_too_long_for_the_context_is_refused(tiny: LoadedModel) -> None:
    huge = "word " * 2000
    with pytest.raises(PromptTooLong, match="context holds 512"):
        list(tiny.chat([ChatMessage("user", huge)], SamplingSettings()))
    with pytest.raises(PromptTooLong, match="--max-token"):
        list(tiny.complete(huge, SamplingSettings()))
    # Nothing is left half-done: the model still answers.
    run(tiny.complete("short", SamplingSettings(max_reply_tokens=3)))


def test_oldest_turns_are_dropped_but_never_the_system_prompt(tiny: LoadedModel) -> None:
    system = ChatMessage("system", "SYSTEMPROMPT stays")
    history = []
    for i in range(12):
        history += [ChatMessage("user", f"question {i} " + "filler " * 10), ChatMessage("assistant", "answer " * 10)]
    history.append(ChatMessage("user", "the last question"))
    events = list(tiny.chat([system, *history], SamplingSettings(max_reply_tokens=8)))
    dropped = [e for e in events if isinstance(e, TurnsDropped)]
    assert dropped and dropped[0].messages % 2 == 0 and dropped[0].messages >= 2
    context = tiny.context_text()
    assert "SYSTEMPROMPT stays" in context
    assert "the last question" in context
    assert "question 0 " not in context


# -- real behaviour ------------------------------------------------------------------------


def test_gemma_without_a_template_gives_a_real_reply(gemma: LoadedModel) -> None:
    assert "chat_template" not in " ".join(gemma.metadata)
    assert gemma.chat_template.name == "transcript"
    messages = [ChatMessage("user", "What is the capital of France?")]
    deltas, finished, _ = run(gemma.chat(messages, SamplingSettings(temperature=0.0, max_reply_tokens=48)))
    assert finished.reason is StopReason.END  # it ended its turn by itself
    assert "Paris" in finished.text
    assert len(deltas) > 2


def test_an_empty_completion_is_refused_with_a_message(tiny: LoadedModel) -> None:
    with pytest.raises(EmptyPrompt, match="no text to continue"):
        list(tiny.complete("  \n", SamplingSettings()))


def test_a_stop_before_the_decode_thread_begins_still_counts(tiny: LoadedModel) -> None:
    """Esc pressed right after a reply was asked for, before the decode thread started."""
    events = tiny.complete("hello", SamplingSettings(max_reply_tokens=50))
    tiny.cancel()
    finished = list(events)[-1]
    assert isinstance(finished, Finished) and finished.reason is StopReason.CANCELLED
