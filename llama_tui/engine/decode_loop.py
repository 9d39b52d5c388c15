"""The token loop on llama.cpp's low-level API, with prompt-lookup speculative decoding.

Each step is one `llama_decode` of the last emitted token plus, when drafting, the tokens
drafted after it (engine.drafting), logits requested at every position of that batch (each
is sampled) and nowhere else. Each position is then sampled with llama.cpp's sampler chain,
`llama_sampler_sample(chain, ctx, i)`, in order: a drafted token is kept only when the
token sampled before it equals it, and the first sample that differs is emitted in its
place and ends the step. So every emitted token is drawn from the model's own distribution
given the tokens before it, sampling runs once per emitted token (the chain's RNG and
penalty history advance exactly as without drafting: the same seed gives the same reply),
and a draft can only make decoding faster or waste compute, never change the text.

Ownership: the llama_batch and the sampler chain are native memory owned by the loop and
freed by `close()` (also on garbage collection); samplers added to a chain belong to the
chain, which frees them with itself.

State kept for the rest of the engine: `llm.input_ids[:llm.n_tokens]` always lists the
tokens whose KV entries are kept, and the KV cache holds nothing beyond them once the
loop is closed. As with `Llama.generate`, the last emitted token is not evaluated, so a
reply of N tokens leaves prompt + N - 1 tokens in the context.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np

from llama_tui.engine.drafting import DraftPolicy, PromptLookup
from llama_tui.engine.settings import SamplingSettings
from llama_tui.engine.verify_threads import VerifyThreads

PENALTY_LAST_N = 64
"""Tokens the repeat penalty looks back over: Llama()'s default last_n_tokens_size."""

MAX_DRAFT = 15
"""Longest draft: with the token before it, batches of up to 16."""

BATCH_ALIGN = 4
"""Verify batches are padded to a multiple of this many tokens where the draft allows.

llama.cpp's CPU matrix multiplication (llamafile's tinyBLAS on x86) works in tiles of four
columns: on the starter model a batch of 2 took 2.3x a single token and one of 4 took 3.2x,
one of 6 as long as one of 8 (bench/speculative.py measures it)."""


class DecodeError(RuntimeError):
    """llama_decode failed."""


def hold_all_tokens(llm: llama_cpp.Llama) -> None:
    """Make `llm.input_ids` as long as the context: the binding sizes it by the n_ctx asked
    for, and llama.cpp may round the context up (64 becomes 256)."""
    missing = llm.n_ctx() - len(llm.input_ids)
    if missing > 0:
        llm.input_ids = np.concatenate([llm.input_ids, np.zeros(missing, dtype=llm.input_ids.dtype)])


def can_take_back_tokens(llm: llama_cpp.Llama) -> bool:
    """Whether rejected drafts can be removed from the model's memory. A recurrent model
    (Mamba, RWKV) or a hybrid one keeps a state that has taken in every token of a batch
    and cannot drop the last few (llama_memory_seq_rm fails), so it is never drafted for."""
    model = llm.model
    return not (llama_cpp.llama_model_is_recurrent(model) or llama_cpp.llama_model_is_hybrid(model))


class SamplerChain:
    """A llama.cpp sampler chain built as `Llama.generate` builds it (`Llama._init_sampler`),
    so replies are the same as through the binding.

    Greedy sampling without a repeat penalty is the one exception: it takes the first
    largest logit with numpy, the rule of llama.cpp's greedy sampler, without the chain.
    `llama_sampler_sample` first copies every logit into a candidate array (3 MB for the
    starter's 262,144 tokens), which took 0.18-0.4 ms a token against ~0.02 ms for numpy's
    argmax (bench/speculative.py measures both).
    """

    def __init__(self, sampling: SamplingSettings, seed: int, n_vocab: int) -> None:
        temp = sampling.temperature
        self._chain: llama_cpp.llama_sampler_p | None = None
        self.greedy = temp == 0.0 and sampling.repeat_penalty == 1.0
        self._n_vocab = n_vocab
        self._row_address: int | None = None
        self._row: np.ndarray = np.zeros(0, dtype=np.float32)
        if self.greedy:
            return
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True  # we keep no sampler timings
        self._chain = llama_cpp.llama_sampler_chain_init(params)
        if not self._chain:
            raise MemoryError("llama.cpp could not create a sampler chain")
        # The binding always adds the penalties sampler; with its neutral values (repeat 1,
        # frequency and presence 0) llama.cpp's apply returns at once, so it is left out
        # then, which saves recording each token in its history.
        if sampling.repeat_penalty != 1.0:
            self._add(llama_cpp.llama_sampler_init_penalties(
                n_vocab, PENALTY_LAST_N, sampling.repeat_penalty, 0.0, 0.0))
        if temp < 0.0:
            self._add(llama_cpp.llama_sampler_init_dist(seed))
        elif temp == 0.0:
            self._add(llama_cpp.llama_sampler_init_greedy())
        else:
            self._add(llama_cpp.llama_sampler_init_top_k(sampling.top_k))
            self._add(llama_cpp.llama_sampler_init_typical(1.0, 1))
            self._add(llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
            self._add(llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1))
            self._add(llama_cpp.llama_sampler_init_temp(temp))
            self._add(llama_cpp.llama_sampler_init_dist(seed))

    def _add(self, sampler: llama_cpp.llama_sampler_p) -> None:
        # The chain takes ownership: llama_sampler_free(chain) frees the samplers in it.
        llama_cpp.llama_sampler_chain_add(self._chain, sampler)

    def sample(self, ctx: llama_cpp.llama_context_p, index: int) -> int:
        """Sample the batch's `index`th output (-1: the last) and record the token in the
        chain (penalties, RNG): llama_sampler_sample accepts it itself."""
        if self._chain is None:
            logits = llama_cpp.llama_get_logits_ith(ctx, index)
            if not logits:
                raise DecodeError(f"llama.cpp has no logits for output {index}")
            # A numpy view of llama.cpp's row, made again only when the row moves: making one
            # costs more than the argmax. llama.cpp owns the memory; the view is read at once.
            address = ctypes.cast(logits, ctypes.c_void_p).value
            if address != self._row_address:
                self._row_address = address
                self._row = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
            return int(self._row.argmax())
        return int(llama_cpp.llama_sampler_sample(self._chain, ctx, index))

    def accept(self, token: int) -> None:
        """Record a token the chain did not sample (one the engine wrote), as sampling would."""
        if self._chain is not None:
            llama_cpp.llama_sampler_accept(self._chain, token)

    def close(self) -> None:
        if self._chain:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None

    def __del__(self) -> None:
        self.close()


class _Batch:
    """A llama_batch for one sequence, with every position's logits requested: a verify
    batch samples each of its positions. Prompt batches go through `Llama.eval` instead."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.batch: llama_cpp.llama_batch | None = llama_cpp.llama_batch_init(capacity, 0, 1)
        batch = self.batch
        if not batch.token:
            raise MemoryError("llama.cpp could not allocate a batch")
        for i in range(capacity):  # the same for every step: set once
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1

    def close(self) -> None:
        if self.batch is not None:
            llama_cpp.llama_batch_free(self.batch)
            self.batch = None

    def __del__(self) -> None:
        self.close()


@dataclass
class DecodeCounters:
    """What the loop did, for GenerationStats."""

    drafted: int = 0
    """Drafted tokens verified by the model."""
    accepted: int = 0
    """Drafted tokens kept (emitted)."""
    batches: int = 0
    """llama_decode calls."""


class DecodeLoop:
    """Emits the reply's tokens one at a time, after the prompt has been evaluated by
    `Llama.eval` (its last token's logits are sampled first).

    Iterate `tokens()`; stop whenever (a stop string, the length limit, a cancel), then
    call `close()`, which drops the KV entries of any tokens verified but not emitted and
    frees the native memory. `limit` is the most tokens the caller will take, so no draft
    reaches past it; None means until the context is full. `verify_threads` picks the thread
    count of each verify batch (the context's batch threads when None).
    """

    def __init__(
        self,
        llm: llama_cpp.Llama,
        sampling: SamplingSettings,
        seed: int,
        *,
        limit: int | None = None,
        drafts: DraftPolicy | None = None,
        verify_threads: VerifyThreads | None = None,
    ) -> None:
        self._llm = llm
        hold_all_tokens(llm)
        self._ctx = llm.ctx
        self._memory = llama_cpp.llama_get_memory(llm.ctx)
        self._n_ctx = llm.n_ctx()
        self._limit = limit
        self._policy = drafts if drafts is not None and drafts.mode != "off" else None
        self._max_draft = min(MAX_DRAFT, llm.n_batch - 1, llama_cpp.llama_n_ubatch(llm.ctx) - 1)
        if self._max_draft < 1 or not can_take_back_tokens(llm):
            self._policy = None
        self.counters = DecodeCounters()
        self._forced: list[int] = []
        self._chain = SamplerChain(sampling, seed, llm.n_vocab())
        self._batch = _Batch(1 + max(self._max_draft, 0) if self._policy else 1)
        # llama.cpp runs a batch of several tokens on its batch threads and one token on its
        # decode threads; a verify batch may be moved to other threads (see engine.verify_threads).
        self._verify_threads = verify_threads if self._policy else None
        self._decode_threads = llama_cpp.llama_n_threads(self._ctx)
        self._batch_threads = self._threads_now = llama_cpp.llama_n_threads_batch(self._ctx)

    def close(self) -> None:
        """Forget what was verified but not emitted; free the batch and the chain."""
        if self._batch.batch is None:
            return
        llama_cpp.llama_memory_seq_rm(self._memory, 0, self._llm.n_tokens, -1)
        self._set_batch_threads(self._batch_threads)  # the next prompt runs on the usual threads
        self._batch.close()
        self._chain.close()

    def force(self, tokens: list[int]) -> None:
        """Make `tokens` the next ones, in place of what the model would write after the token
        just yielded (a thinking budget's close marker). They are yielded like sampled ones."""
        self._forced = list(tokens)

    def tokens(self) -> Iterator[int]:
        """The reply's tokens, as they are decided. Before each token is yielded,
        `llm.n_tokens` counts the tokens before it: the last one yielded is not evaluated."""
        llm, ctx, chain = self._llm, self._ctx, self._chain
        # The binding types the batch's arrays as arrays of llama_token objects; they take ints.
        batch: Any = self._batch.batch
        assert batch is not None
        policy = self._policy
        counters = self.counters
        lookup: PromptLookup | None = None
        token = chain.sample(ctx, -1)
        emitted = 1
        pos = llm.n_tokens  # where `token` goes in the KV cache
        while True:
            yield token
            if pos + 1 >= self._n_ctx:
                return  # no room for `token`: the caller stops here on the context limit
            draft: list[int] = []
            guess = -1
            forced = bool(self._forced)
            if policy is not None:
                if lookup is None:  # built after the first token, so it never delays it
                    lookup = PromptLookup(llm.input_ids[:pos].tolist())
                lookup.append(token)
                if forced:
                    pass  # the next token is known: nothing to draft or guess
                elif policy.drafting:
                    draft = self._draft(policy, lookup, pos, emitted)
                else:
                    guessed, _n = lookup.draft(1)
                    guess = guessed[0] if guessed else -1
            n = 1 + len(draft)
            batch.n_tokens = n
            batch.token[0] = token
            batch.pos[0] = pos
            for i, drafted in enumerate(draft, start=1):
                batch.token[i] = drafted
                batch.pos[i] = pos + i
            if draft:
                self._verify(batch, n)
            else:
                status = llama_cpp.llama_decode(ctx, batch)
                if status != 0:
                    raise DecodeError(f"llama_decode returned {status}")
            counters.batches += 1
            llm.input_ids[pos] = token
            if not draft:
                if forced:
                    token = self._forced.pop(0)
                    chain.accept(token)
                else:
                    token = chain.sample(ctx, 0)
                pos += 1
                llm.n_tokens = pos
                emitted += 1
                if policy is not None and not forced:
                    policy.watched(token == guess)
                continue
            assert policy is not None and lookup is not None
            llm.input_ids[pos + 1 : pos + n] = draft
            counters.drafted += len(draft)
            accepted = 0
            for i in range(n):
                token = chain.sample(ctx, i)
                llm.n_tokens = pos + 1 + i
                if i < len(draft) and token == draft[i]:
                    accepted += 1
                    counters.accepted += 1
                    emitted += 1
                    yield token
                    lookup.append(token)
                    if self._forced:  # the tokens after this one are the engine's: the rest is dropped
                        break
                    continue
                break
            if accepted < len(draft):  # drop the rejected drafts from the cache
                llama_cpp.llama_memory_seq_rm(self._memory, 0, pos + 1 + accepted, -1)
            policy.record(len(draft), accepted)
            if self._forced:
                token = self._forced.pop(0)
                chain.accept(token)
            pos += 1 + accepted
            emitted += 1

    def _verify(self, batch: Any, n: int) -> None:
        """llama_decode a verify batch of n tokens, on the threads chosen for it, timed."""
        chooser = self._verify_threads
        threads = self._batch_threads if chooser is None else chooser.pick(n)
        self._set_batch_threads(threads)
        started = time.perf_counter()
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            raise DecodeError(f"llama_decode returned {status}")
        if chooser is not None:
            llama_cpp.llama_synchronize(self._ctx)  # the CPU backend is done already; others may not be
            chooser.timed(threads, n, time.perf_counter() - started)

    def _set_batch_threads(self, threads: int) -> None:
        if threads != self._threads_now:
            llama_cpp.llama_set_n_threads(self._ctx, self._decode_threads, threads)
            self._threads_now = threads

    def _draft(self, policy: DraftPolicy, lookup: PromptLookup, pos: int, emitted: int) -> list[int]:
        """The draft to verify with the token at `pos`: as long as the policy wants, no
        longer than the context and the caller's limit allow, and cut so the batch is a
        multiple of BATCH_ALIGN tokens (none when that leaves no draft)."""
        want = min(policy.limit(), self._max_draft, self._n_ctx - pos - 2)
        if self._limit is not None:
            want = min(want, self._limit - emitted - 1)  # the token after the draft is free
        draft, _n = lookup.draft(want)
        aligned = (len(draft) + 1) // BATCH_ALIGN * BATCH_ALIGN - 1
        return draft[:aligned] if aligned > 0 else []
