"""Speculative decoding by prompt lookup (engine.decode_loop, engine.drafting) on real models.

The method is exact: a drafted token is kept only when the token sampled at its place
equals it, so with and without drafting every emitted token is the same draw from the
same distribution. What can differ is llama.cpp's arithmetic: on the CPU a batch of
several tokens takes other kernels (llamafile's tinyBLAS, the repacked Q4_K GEMM, tiled
flash attention) than a single token, which round differently (up to ~1.5 in the
starter's logits). The tiny model's F32 weights round alike to ~1e-5, so its replies are
compared token for token; the starter is compared with the kernels that are the same for
every batch of up to 4 tokens (flash attention on, weights not repacked).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import llama_cpp
import llama_cpp.llama_cpp as llama_low
import pytest

from llama_tui.engine import decode_loop
from llama_tui.engine.decode_loop import DecodeLoop, SamplerChain
from llama_tui.engine.drafting import DraftPolicy, SpeculativeMode
from llama_tui.engine.events import Finished, GenerationEvent, TextDelta
from llama_tui.engine.model import ChatMessage, LoadedModel
from llama_tui.engine.settings import LoadSettings, SamplingSettings
from llama_tui.engine.verify_threads import VerifyThreads

GREEDY = SamplingSettings(temperature=0.0)
RANDOM = SamplingSettings(temperature=0.7, top_k=40, top_p=0.95, min_p=0.05)
PENALIZED = SamplingSettings(temperature=0.0, repeat_penalty=1.3)
MODES: tuple[SpeculativeMode, ...] = ("off", "on", "auto")


def run(events: Iterator[GenerationEvent]) -> tuple[list[str], Finished]:
    seen = list(events)
    finished = seen[-1]
    assert isinstance(finished, Finished)
    return [e.text for e in seen if isinstance(e, TextDelta)], finished


def fresh_prompt(llm: llama_cpp.Llama, prompt: list[int]) -> None:
    """Empty the context and evaluate `prompt`, as the engine does for a new chat."""
    llm.reset()
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
    llm.eval(prompt)


def generate_tokens(
    llm: llama_cpp.Llama, prompt: list[int], sampling: SamplingSettings, seed: int, n: int
) -> list[int]:
    """The reply as the engine made it before this loop: the binding's Llama.generate."""
    fresh_prompt(llm, prompt)
    llm.set_seed(seed)
    return list(islice(llm.generate(
        prompt, temp=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
        min_p=sampling.min_p, repeat_penalty=sampling.repeat_penalty,
    ), n))


def loop_tokens(
    llm: llama_cpp.Llama, prompt: list[int], sampling: SamplingSettings, seed: int, n: int, mode: SpeculativeMode,
) -> tuple[list[int], decode_loop.DecodeCounters]:
    fresh_prompt(llm, prompt)
    loop = DecodeLoop(llm, sampling, seed, limit=n, drafts=DraftPolicy(mode))
    try:
        tokens = list(islice(loop.tokens(), n))
    finally:
        loop.close()
    return tokens, loop.counters


def kv_holds_exactly(llm: llama_cpp.Llama) -> bool:
    """The KV cache holds the tokens llm.n_tokens counts, and nothing beyond them."""
    last = llama_cpp.llama_memory_seq_pos_max(llama_cpp.llama_get_memory(llm.ctx), 0)
    return last == llm.n_tokens - 1


# A prompt that repeats itself, so the tiny model's reply repeats text from it and drafts
# are accepted; and one without repeats.
REPEATING = "the cat sat on the mat and the dog sat on the log. " * 6
PLAIN = "zebra quartz jumps over lazy vixen"


@pytest.fixture(scope="module")
def tiny(tiny_model: Path) -> Iterator[LoadedModel]:
    model = LoadedModel.load(tiny_model, LoadSettings(n_ctx=1024, n_threads=1, n_threads_batch=1))
    yield model
    model.close()


# -- the loop against the binding ----------------------------------------------------------


@pytest.mark.parametrize("sampling", [GREEDY, RANDOM, PENALIZED], ids=["greedy", "random", "repeat-penalty"])
@pytest.mark.parametrize("text", [REPEATING, PLAIN], ids=["repeating", "plain"])
def test_every_mode_gives_the_bindings_reply_token_for_token(
    tiny: LoadedModel, sampling: SamplingSettings, text: str
) -> None:
    llm = tiny._llm
    assert llm is not None
    prompt = llm.tokenize(text.encode(), add_bos=True)
    reference = generate_tokens(llm, prompt, sampling, 1234, 120)
    assert len(reference) == 120
    for mode in MODES:
        tokens, counters = loop_tokens(llm, prompt, sampling, 1234, 120, mode)
        assert tokens == reference, mode
        if mode == "on" and text == REPEATING and sampling is GREEDY:
            assert counters.accepted > 60  # the drafts did the work
        if mode == "off":
            assert counters.drafted == 0


def test_a_drafted_token_is_kept_only_when_the_sampled_token_equals_it(tiny: LoadedModel) -> None:
    """Drafts that are always wrong change nothing but the counters."""
    llm = tiny._llm
    assert llm is not None
    prompt = llm.tokenize(REPEATING.encode(), add_bos=True)
    reference = generate_tokens(llm, prompt, RANDOM, 99, 60)

    class WrongDrafts(decode_loop.PromptLookup):
        def draft(self, limit: int, *, min_ngram: int = 1) -> tuple[list[int], int]:
            return [3 + (token % 7) for token in range(limit)], 1  # byte tokens: never sampled

    original = decode_loop.PromptLookup
    decode_loop.PromptLookup = WrongDrafts  # type: ignore[misc]
    try:
        tokens, counters = loop_tokens(llm, prompt, RANDOM, 99, 60, "on")
    finally:
        decode_loop.PromptLookup = original  # type: ignore[misc]
    assert tokens == reference
    assert counters.drafted > 0 and counters.accepted == 0


def test_a_recurrent_model_is_never_drafted_for(tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recurrent state cannot give back rejected drafts: such models decode plainly."""
    llm = tiny._llm
    assert llm is not None
    prompt = llm.tokenize(REPEATING.encode(), add_bos=True)
    monkeypatch.setattr(llama_cpp, "llama_model_is_recurrent", lambda model: True)
    tokens, counters = loop_tokens(llm, prompt, GREEDY, 1, 80, "on")
    assert counters.drafted == 0
    assert tokens == generate_tokens(llm, prompt, GREEDY, 1, 80)


def test_verify_batches_try_both_thread_counts_and_the_prompt_threads_come_back(tiny_model: Path) -> None:
    """Verify batches run on whichever of the batch and decode threads was faster (engine.
    verify_threads), timed by the loop; the reply is the same, and a prompt evaluated after
    the reply runs on the batch threads it was set to."""
    model = LoadedModel.load(tiny_model, LoadSettings(n_ctx=1024, n_threads=1, n_threads_batch=2))
    try:
        llm = model._llm
        assert llm is not None
        prompt = llm.tokenize(REPEATING.encode(), add_bos=True)
        reference = generate_tokens(llm, prompt, GREEDY, 1, 120)
        def reply(chooser: VerifyThreads) -> tuple[list[int], set[int]]:
            """The reply's tokens, and the batch thread counts seen while it was made."""
            fresh_prompt(llm, prompt)
            loop = DecodeLoop(llm, GREEDY, 1, limit=120, drafts=DraftPolicy("on"), verify_threads=chooser)
            seen = set()
            try:
                tokens = []
                for token in islice(loop.tokens(), 120):
                    tokens.append(token)
                    seen.add(llama_cpp.llama_n_threads_batch(llm.ctx))
            finally:
                loop.close()
            return tokens, seen

        fresh = VerifyThreads((2, 1))
        assert reply(fresh) == (reference, {1, 2})
        timed = {(threads, size) for threads in (1, 2) for size in range(2, 17) if fresh.seconds(threads, size)}
        assert {threads for threads, _size in timed} == {1, 2}
        assert llama_cpp.llama_n_threads_batch(llm.ctx) == 2 and llama_cpp.llama_n_threads(llm.ctx) == 1

        busy = VerifyThreads((2, 1))  # as if the batch threads had stalled: one thread wins
        for size in range(2, 17):
            busy.timed(2, size, 1.0)
            busy.timed(1, size, 0.001)
        tokens, seen = reply(busy)
        assert tokens == reference and 1 in seen
        assert llama_cpp.llama_n_threads_batch(llm.ctx) == 2  # back for the next prompt
        # The engine keeps one chooser for the model's life: its replies feed it.
        sampling = SamplingSettings(temperature=0.0, max_reply_tokens=120, speculative="on")
        assert run(model.complete(REPEATING, sampling))[1].stats.accepted_tokens > 0
        assert model._verify_threads.seconds(2, 16) is not None and model._verify_threads.seconds(1, 16) is not None
        assert llama_cpp.llama_n_threads_batch(llm.ctx) == 2
    finally:
        model.close()


def test_greedy_sampling_takes_llama_cpps_greedy_choice(tiny: LoadedModel) -> None:
    """The greedy shortcut (numpy's argmax) and llama.cpp's greedy sampler agree."""
    llm = tiny._llm
    assert llm is not None
    fresh_prompt(llm, llm.tokenize(PLAIN.encode(), add_bos=True))
    shortcut = SamplerChain(GREEDY, 0, llm.n_vocab())
    chain = SamplerChain(SamplingSettings(temperature=0.0, repeat_penalty=1.0 + 1e-9), 0, llm.n_vocab())
    try:
        assert shortcut.greedy and not chain.greedy
        assert shortcut.sample(llm.ctx, -1) == chain.sample(llm.ctx, -1)
    finally:
        shortcut.close()
        chain.close()


# -- the engine: figures, limits, stops ----------------------------------------------------


def test_the_same_seed_gives_the_same_reply_with_speculation_on(tiny: LoadedModel) -> None:
    sampling = SamplingSettings(temperature=0.9, max_reply_tokens=80, speculative="on")
    first = run(tiny.complete(REPEATING, sampling, seed=5))[1].text
    assert run(tiny.complete(REPEATING, sampling, seed=5))[1].text == first
    assert run(tiny.complete(REPEATING, SamplingSettings(temperature=0.9, max_reply_tokens=80, speculative="off"),
                             seed=5))[1].text == first
    assert run(tiny.complete(REPEATING, sampling, seed=6))[1].text != first


@pytest.mark.parametrize("limit", [1, 2, 16, 37, 100])
def test_max_reply_tokens_is_exact_and_the_figures_add_up(tiny: LoadedModel, limit: int) -> None:
    def greedy(mode: SpeculativeMode) -> SamplingSettings:
        return SamplingSettings(temperature=0.0, max_reply_tokens=limit, speculative=mode)

    off = run(tiny.complete(REPEATING, greedy("off")))[1]
    deltas, on = run(tiny.complete(REPEATING, greedy("on")))
    s = on.stats
    assert on.text == off.text == "".join(deltas)
    assert s.generated_tokens == off.stats.generated_tokens == limit
    # Each batch evaluates its first token and its draft; each emits one more than it
    # accepted. So llama.cpp evaluated the reply but its last token, and the rejected drafts.
    assert s.llama_eval_tokens == limit - 1 + s.drafted_tokens - s.accepted_tokens
    assert off.stats.llama_eval_tokens == limit - 1
    assert s.context_used == tiny.context_used == s.prompt_tokens + limit - 1
    assert tiny._llm is not None and kv_holds_exactly(tiny._llm)
    # The prompt's figures are the prompt's alone, though verify batches count as prompt
    # batches in llama.cpp's own counters.
    assert s.llama_prompt_tokens == s.prompt_evaluated == off.stats.llama_prompt_tokens
    if limit == 100:  # the tiny model falls into a loop of its own after ~30 tokens
        assert s.accepted_tokens > limit / 2
        assert s.acceptance_rate is not None and 0.5 < s.acceptance_rate <= 1
        assert s.tokens_per_second and s.tokens_per_second > 0
        assert s.time_to_first_token and s.time_to_first_token > 0
    if limit == 1:
        assert s.drafted_tokens == 0  # no draft reaches past the limit


def test_off_reports_no_drafts(tiny: LoadedModel) -> None:
    stats = run(tiny.complete(REPEATING, SamplingSettings(max_reply_tokens=30, speculative="off")))[1].stats
    assert stats.drafted_tokens == stats.accepted_tokens == 0 and stats.acceptance_rate is None


def test_a_stop_string_inside_an_accepted_draft_cuts_the_reply_there(tiny: LoadedModel) -> None:
    llm = tiny._llm
    assert llm is not None
    prompt = llm.tokenize(REPEATING.encode(), add_bos=True)
    greedy = SamplingSettings(temperature=0.0, max_reply_tokens=80, speculative="off")
    free = run(tiny._run(lambda: (prompt, [], 0), greedy, None))[1].text
    at = len(free) * 3 // 4  # in the tiny model's loop, where drafts are being accepted
    stop = free[at : at + 6]
    assert len(stop) == 6
    expected = free[: free.index(stop)]
    for mode in MODES:
        sampling = SamplingSettings(temperature=0.0, max_reply_tokens=80, speculative=mode)
        deltas, finished = run(tiny._run(lambda: (prompt, [stop], 0), sampling, None))
        assert finished.text == "".join(deltas) == expected, mode
        assert kv_holds_exactly(llm)
        assert finished.stats.context_used == finished.stats.prompt_tokens + finished.stats.generated_tokens - 1


def test_the_context_limit_stops_a_speculative_reply_like_a_plain_one(tiny_model: Path) -> None:
    model = LoadedModel.load(tiny_model, LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1))
    try:
        results = {}
        for mode in MODES:
            finished = run(model.complete(REPEATING[:120], SamplingSettings(temperature=0.0, speculative=mode)))[1]
            assert finished.reason.value == "context full"
            assert finished.stats.context_used <= model.context_size == 256
            results[mode] = (finished.text, finished.stats.generated_tokens)
        assert results["on"] == results["auto"] == results["off"]
    finally:
        model.close()


def test_a_cancel_mid_batch_keeps_the_tokens_shown_and_a_consistent_context(tiny: LoadedModel) -> None:
    sampling = SamplingSettings(temperature=0.0, max_reply_tokens=120, speculative="on")
    full = run(tiny.complete(REPEATING, sampling))[1]
    received: list[str] = []
    finished = None
    for event in tiny.complete(REPEATING, sampling):
        if isinstance(event, TextDelta):
            received.append(event.text)
            if len(received) == 70:  # drafts of up to 15 are being accepted: mid-batch
                tiny.cancel()
        elif isinstance(event, Finished):
            finished = event
    assert finished is not None and finished.reason.value == "stopped"
    assert finished.text == "".join(received) and full.text.startswith(finished.text)
    assert finished.stats.generated_tokens == 70
    assert finished.stats.accepted_tokens > 20
    llm = tiny._llm
    assert llm is not None and kv_holds_exactly(llm)
    # The 71st token was decided but not shown; the 70 shown are all in the context.
    assert finished.stats.context_used == finished.stats.prompt_tokens + 70
    # What is kept is right: the next reply is the one a fresh context gives.
    assert run(tiny.complete(REPEATING, sampling))[1].text == full.text


def test_a_cancel_from_another_thread_while_drafting_stops_the_reply(tiny_model: Path) -> None:
    model = LoadedModel.load(tiny_model, LoadSettings(n_ctx=2048, n_threads=1, n_threads_batch=1))
    first = threading.Event()
    events: list[GenerationEvent] = []

    def decode() -> None:
        for event in model.complete(REPEATING, SamplingSettings(temperature=0.0, speculative="on")):
            first.set()
            events.append(event)

    thread = threading.Thread(target=decode)
    thread.start()
    try:
        assert first.wait(10)
        model.cancel()
        thread.join(10)
        assert not thread.is_alive()
        finished = events[-1]
        assert isinstance(finished, Finished) and finished.reason.value == "stopped"
        assert model._llm is not None and kv_holds_exactly(model._llm)
    finally:
        model.close()


def test_speculative_chat_turns_still_reuse_the_kv_cache_prefix(tiny_model_chatml: Path) -> None:
    """Turn N evaluates only what the cache does not hold, by llama.cpp's own counters,
    and replies are those of a model that evaluated everything afresh."""
    model = LoadedModel.load(tiny_model_chatml, LoadSettings(n_ctx=2048, n_threads=1, n_threads_batch=1))
    fresh = LoadedModel.load(tiny_model_chatml, LoadSettings(n_ctx=2048, n_threads=1, n_threads_batch=1))
    try:
        messages = [ChatMessage("system", "You repeat. " * 8)]
        previous_prompt = 0
        accepted = 0
        for turn in range(4):
            messages.append(ChatMessage("user", f"say it again: {REPEATING[: 40 + 20 * turn]}"))
            sampling = SamplingSettings(temperature=0.0, max_reply_tokens=40, speculative="on")
            _, finished = run(model.chat(messages, sampling))
            stats = finished.stats
            accepted += stats.accepted_tokens
            assert stats.llama_prompt_tokens == stats.prompt_evaluated  # llama.cpp agrees
            if turn:
                assert stats.prompt_tokens - stats.prompt_evaluated >= previous_prompt
            previous_prompt = stats.prompt_tokens
            fresh.clear_context()
            assert run(fresh.chat(messages, sampling))[1].text == finished.text
            messages.append(ChatMessage("assistant", finished.text))
        assert accepted > 0
    finally:
        model.close()
        fresh.close()


# -- the starter model ---------------------------------------------------------------------

EDIT_TASK = Path(__file__).parent.parent / "bench" / "edit_tasks" / "stop_scanner.py.txt"
"""bench/speculative.py's editing task: the code of a class, its first two methods here."""
EDIT_CODE = EDIT_TASK.read_text().split("\n    def flush")[0]
EDIT_PROMPT = (f"Task: rename `hits` to `found` in this code.\n\n```python\n{EDIT_CODE}```\n\n"
               "The code after the change:\n\n```python\n")


@pytest.fixture(scope="module")
def batch_invariant_starter(starter_model: Path) -> Iterator[LoadedModel]:
    """The starter with the kernels that compute a batch of up to 4 tokens exactly as one
    token (flash attention on, weights not repacked), one thread, drafts of 3."""
    patch = pytest.MonkeyPatch()
    default_params = llama_low.llama_model_default_params

    def unpacked() -> llama_low.llama_model_params:
        params = default_params()
        params.use_extra_bufts = False
        return params

    patch.setattr(llama_low, "llama_model_default_params", unpacked)
    patch.setattr(llama_cpp, "Llama", functools.partial(llama_cpp.Llama, flash_attn=True))
    try:
        model = LoadedModel.load(starter_model, LoadSettings(n_ctx=1024, n_threads=1, n_threads_batch=1))
    finally:
        patch.undo()
    patch.setattr(decode_loop, "MAX_DRAFT", 3)
    yield model
    patch.undo()
    model.close()


@pytest.mark.parametrize("temperature", [0.0, 0.8], ids=["greedy", "seeded-random"])
def test_starter_replies_are_the_same_in_every_mode(batch_invariant_starter: LoadedModel, temperature: float) -> None:
    model = batch_invariant_starter
    chat = [ChatMessage("user", "List three fruits, then three colours, each as a Markdown list.")]
    replies = (("edit", lambda s: model.complete(EDIT_PROMPT, s, seed=3)),
               ("chat", lambda s: model.chat(chat, s, seed=3)))
    for name, reply in replies:
        texts = {}
        for mode in MODES:
            model.clear_context()
            finished = run(reply(SamplingSettings(temperature=temperature, max_reply_tokens=160, speculative=mode)))[1]
            texts[mode] = finished.text
            if mode == "on" and name == "edit":
                assert finished.stats.accepted_tokens > 60, "the editing task should accept drafts"
        assert texts["on"] == texts["off"] and texts["auto"] == texts["off"], name


def test_starter_utf8_split_across_tokens_survives_drafting(starter_model: Path) -> None:
    model = LoadedModel.load(starter_model, LoadSettings(n_ctx=1024))
    try:
        text = "Ünïcödé 🦙 naïve café 日本語 — " * 8
        sampling = SamplingSettings(temperature=0.0, max_reply_tokens=120, speculative="on")
        deltas, finished = run(model.complete(text, sampling))
        assert finished.stats.accepted_tokens > 20
        assert "\ufffd" not in finished.text and "".join(deltas) == finished.text
        assert "🦙" in finished.text
    finally:
        model.close()
