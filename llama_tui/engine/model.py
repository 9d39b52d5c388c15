"""A loaded GGUF model: streaming chat and completion on llama.cpp, with exact figures.

One decode runs at a time, guarded by a lock that `close()` also takes: freeing a model while
another thread decodes on it crashes the process, so closing first stops the decode and
waits for it to leave llama.cpp.

The decode loop is our own rather than `create_completion`, for five reasons: prompt
evaluation in batches we can report and abort (`Llama.eval`), exact token counts, a stop
between any two tokens, text decoding that stays linear in the reply length
(`create_completion` re-detokenizes the whole reply at every token), and speculative
decoding by prompt lookup: engine.decode_loop drives llama.cpp's low-level API for the
reply's tokens, drafting from the conversation (engine.drafting) when that pays.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import jinja2
import llama_cpp
import llama_cpp.llama_chat_format as llama_chat_format
import numpy as np

from llama_tui.engine.backend import Capabilities, ModelBusy, ModelClosed, PromptError
from llama_tui.engine.chat_templates import (
    BUILT_IN_TEMPLATES,
    ChatTemplate,
    choose_chat_template,
    fallback_template_choice,
)
from llama_tui.engine.config import load_settings_problems
from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.decode_loop import DecodeLoop, hold_all_tokens
from llama_tui.engine.drafting import DraftPolicy
from llama_tui.engine.events import (
    Finished,
    GenerationEvent,
    GenerationStats,
    Notice,
    PromptProgress,
    StopReason,
    TextDelta,
    ThinkingFormat,
    TurnsDropped,
)
from llama_tui.engine.gguf_header import GGUFHeaderError, check_gguf_start
from llama_tui.engine.jinja_chat import render_chat
from llama_tui.engine.logs import route_native_log, take_native_errors
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.saved_contexts import MIN_GAIN, SavedContexts, common_prefix, model_identity
from llama_tui.engine.settings import LoadSettings, SamplingSettings
from llama_tui.engine.template_sandbox import TemplateCancelled, TemplateFailed, TemplateSandbox
from llama_tui.engine.text_stream import StopScanner, TokenTextDecoder
from llama_tui.engine.thinking import (
    VOCABULARY_CANDIDATES,
    ThinkingMarkers,
    has_thinking_switch,
    starts_thinking,
    thinking_markers,
)
from llama_tui.engine.thinking_budget import ThinkingBudget
from llama_tui.engine.thinking_events import split_events
from llama_tui.engine.verify_threads import VerifyThreads

log = logging.getLogger(__name__)

# Room kept free for the reply when fitting a chat into the context, unless the max reply
# tokens setting asks for a different amount.
DEFAULT_REPLY_ROOM = 256

SAVE_WAIT = 60.0
"""Seconds a new request waits for the last reply's context to be saved (a disk that slow is broken)."""


class ModelLoadError(Exception):
    """The model could not be loaded; the message says why, for the user."""


class PromptTooLong(PromptError):
    """The prompt cannot fit the context, even after dropping old chat turns."""


class EmptyPrompt(PromptError):
    """There is no text to continue."""


class TemplateError(PromptError):
    """The chat template failed, never ended or made too much text; the message says which and why."""


class _StderrToLog(io.TextIOBase):
    """The binding prints progress notes to sys.stderr while loading; keep them in the log."""

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                log.debug("llama-cpp-python: %s", line)
        return len(text)


class _Cancelled(Exception):
    pass


@dataclass(frozen=True)
class _Perf:
    """llama.cpp's evaluation counters for the request so far (reset when it starts)."""

    tokens: int
    seconds: float

    @classmethod
    def read(cls, llm: llama_cpp.Llama) -> _Perf:
        perf = llama_cpp.llama_perf_context(llm.ctx)
        # llama.cpp counts a decode of one token in n_eval and one of several in n_p_eval,
        # and reports at least 1 for each count: a zero time means nothing ran.
        tokens = (perf.n_p_eval if perf.t_p_eval_ms > 0 else 0) + (perf.n_eval if perf.t_eval_ms > 0 else 0)
        return cls(tokens, (perf.t_p_eval_ms + perf.t_eval_ms) / 1000)


class LoadedModel:
    """A model in memory, ready to chat or complete text. Create it with `LoadedModel.load`."""

    def __init__(
        self,
        llm: llama_cpp.Llama,
        path: Path,
        settings: LoadSettings,
        template: ChatTemplate,
        ref: ModelRef | None = None,
        contexts: SavedContexts | None = None,
    ) -> None:
        self._llm: llama_cpp.Llama | None = llm
        self.path = path
        self.ref = ref or ModelRef.file(path)
        """Which model this is, as recent models and history record it."""
        self.settings = settings
        self.chat_template = template
        self._sandbox = TemplateSandbox() if template.from_file else None
        """Where the file's own template is rendered: a process a runaway template cannot hang."""
        self.metadata: dict[str, str] = dict(llm.metadata)
        # llama.cpp applies -o overrides while loading but reports the file's own metadata.
        overridden_name = settings.overrides.get("general.name")
        self.name: str = (
            overridden_name if isinstance(overridden_name, str) else self.metadata.get("general.name") or path.stem
        )
        self.context_size: int = llm.n_ctx()
        hold_all_tokens(llm)  # else the KV prefix reuse could not see past the n_ctx asked for
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._busy = threading.Lock()
        self._saving = threading.Event()
        """Set while the last reply's context is being saved: a new request waits for it."""
        self._contexts = contexts
        self._identity = model_identity(path, {"n_ctx": settings.n_ctx, "overrides": settings.overrides})
        self._cancel = threading.Event()
        self._closing = False
        self.thinking_markers: ThinkingMarkers | None = thinking_markers(
            self.metadata.get("tokenizer.chat_template") or template.source,
            self._special_tokens(VOCABULARY_CANDIDATES),
        )
        """How this model marks its thinking (engine.thinking), from its template and vocabulary."""
        # Control tokens are not text (llama.cpp decodes them to nothing), except the ones
        # that make up thinking markers (gpt-oss's <|channel|>, Cohere's <|START_THINKING|>):
        # without them the thinking could not be told from the answer.
        self._shown_tokens = frozenset(self._special_tokens(_marker_pieces(self.thinking_markers)).values())
        self._thinking_format: ThinkingFormat | None = None  # the current chat reply's, set while preparing it
        self._notices: list[str] = []  # said before the current reply's text (a template fallback)
        # Installed only while a prompt is evaluated: llama.cpp calls it between graph nodes,
        # and a Python callback per node would slow down token generation.
        self._abort_callback = llama_cpp.ggml_abort_callback(lambda _data: self._cancel.is_set())
        # Kept across replies: what it learned of this machine's verify batches still holds.
        self._verify_threads = VerifyThreads(
            (llama_cpp.llama_n_threads_batch(llm.ctx), llama_cpp.llama_n_threads(llm.ctx))
        )

    # -- loading and closing -------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str, settings: LoadSettings, *, ref: ModelRef | None = None,
             contexts: SavedContexts | None = None) -> LoadedModel:
        """Load a GGUF file (`ref`: which model it is, when not just this file: the starter;
        `contexts`: where chats' KV states are saved, to resume them without reading them again).
        Raises ModelLoadError with a message meant for the user."""
        path = Path(path).expanduser()
        problems = load_settings_problems(settings)
        if problems:
            raise ModelLoadError("Invalid settings: " + "; ".join(problems) + ".")
        _check_is_gguf(path)
        route_native_log()
        log.info("loading %s with %s", path, settings)
        take_native_errors()  # forget errors from earlier loads
        try:
            with contextlib.redirect_stderr(_StderrToLog()), _without_the_bindings_chat_templates():
                llm = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=settings.n_ctx,
                    n_gpu_layers=settings.n_gpu_layers,
                    n_threads=settings.n_threads,
                    n_threads_batch=settings.n_threads_batch,
                    kv_overrides=dict(settings.overrides) or None,
                    # verbose=False would redirect fds 1 and 2 while loading, blanking the
                    # TUI; the native log is routed to Python logging instead.
                    verbose=True,
                )
        except (ValueError, RuntimeError, OSError, AssertionError) as error:
            reason = _load_failure_reason(take_native_errors()) or str(error)
            raise ModelLoadError(f"llama.cpp could not load {path.name}: {reason}") from error
        llm.verbose = False  # the binding's later notes (prefix hits, timings) are noise to us
        try:
            template = choose_chat_template(
                dict(llm.metadata), _token_text(llm, llm.token_bos()), _token_text(llm, llm.token_eos()),
                settings.chat_format,
            )
        except ValueError as error:
            llm.close()
            raise ModelLoadError(str(error)) from error
        log.info("loaded %s; chat template %s (%s)", path.name, template.name, template.reason)
        model = cls(llm, path, settings, template, ref, contexts)
        if model._sandbox is not None:
            model._sandbox.start()  # so the first reply does not wait for it
        return model

    # -- what the UI asks of any backend (engine.backend.ModelBackend) -----------------------

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            completion=True, seed=True, gpu_offload=False, exact_figures=True,
            sampling=frozenset({"seed", "temperature", "top_p", "top_k", "min_p", "repeat_penalty",
                                "max_reply_tokens", "speculative"}),
            thinking_switch=self.chat_template.from_file and has_thinking_switch(self.chat_template.source),
        )

    @property
    def description(self) -> str:
        template = self.chat_template
        return f"{self.path.name} in llama.cpp · chat template {template.name}: {template.reason}"

    def cancel(self) -> None:
        """Stop the reply being generated, between two tokens or mid-prompt."""
        self._cancel.set()

    def close(self) -> None:
        """Stop any decode, wait for it to leave llama.cpp, then free the model."""
        self._closing = True  # a decode about to start gives up instead
        self.cancel()
        if self._sandbox is not None:
            self._sandbox.close()  # ends a template render at once
        with self._busy:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
                _return_freed_memory()
                log.info("closed %s", self.path.name)

    @property
    def closed(self) -> bool:
        return self._llm is None

    @property
    def context_used(self) -> int:
        """Tokens held in the context (KV cache) right now."""
        return self._llm.n_tokens if self._llm is not None else 0

    def clear_context(self) -> bool:
        """Empty the KV cache, unless a reply is being generated; whether it was emptied."""
        if not self._busy.acquire(blocking=False):
            return False
        try:
            llm = self._require_llm()
            llm.reset()
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
            return True
        except ModelClosed:
            return False
        finally:
            self._busy.release()

    def context_text(self) -> str:
        """What the context holds now, as text with special tokens: for tests and debugging."""
        with self._busy:
            llm = self._require_llm()
            tokens = llm.input_ids[: llm.n_tokens].tolist()
            return llm.detokenize(tokens, special=True).decode("utf-8", errors="replace")

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text, add_bos=False, special=False))

    # -- public generation API -----------------------------------------------------------

    def chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingSettings,
        *,
        seed: int | None = None,
        enable_thinking: bool = True,
        prefill: str = "",
        thinking_budget: int | None = None,
    ) -> Iterator[GenerationEvent]:
        """Stream the assistant's reply to `messages`, reusing the cached prefix of the chat.

        When the chat is too long for the context the oldest turns are left out (never the
        system prompt) and a TurnsDropped event says so first. A model with thinking markers
        sends a ThinkingFormat event before the text. `enable_thinking` is passed to the
        template (see thinking.has_thinking_switch). `thinking_budget`: at that many tokens of
        thinking the engine writes the model's close marker in its place (engine.thinking_budget).
        `prefill`: the start of the reply, already written (a reply to continue); the model
        writes what follows it. Close the iterator (or run it to the end) so the model is free again.
        """
        events = self._run(lambda: self._fit_chat(messages, sampling, enable_thinking, prefill), sampling, seed,
                           thinking_budget=thinking_budget)
        return split_events(events)

    def complete(self, text: str, sampling: SamplingSettings, *, seed: int | None = None) -> Iterator[GenerationEvent]:
        """Stream a continuation of `text`. The seed (sampling.seed unless `seed` is given)
        makes sampling reproducible."""

        def prepare() -> tuple[list[int], list[str], int]:
            if not text.strip():
                raise EmptyPrompt("There is no text to continue: write the start of one first.")
            tokens = self._tokenize(text, add_bos=True, special=False)
            room = self._reply_room(sampling)
            if len(tokens) + room > self.context_size:
                raise PromptTooLong(
                    f"The text is {len(tokens)} tokens, and the context holds {self.context_size} "
                    f"with {room} kept for the continuation. Shorten it, or load the model "
                    "with a larger context (--max-token)."
                )
            return tokens, [], 0

        return self._run(prepare, sampling, seed)

    # -- prompt building -------------------------------------------------------------------

    def _fit_chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingSettings,
        enable_thinking: bool = True,
        prefill: str = "",
    ) -> tuple[list[int], list[str], int]:
        system = [m for m in messages[:1] if m.role == "system"]
        turns = list(messages[len(system):])
        room = self._reply_room(sampling)
        dropped = 0
        compact = False  # the template's worked examples (a base model's transcript) go first
        while True:
            prompt = self._render_prompt(
                [{"role": m.role, "content": m.content} for m in system + turns], enable_thinking, compact=compact
            ) + prefill  # a reply's generation prompt is its start: what it already says follows
            tokens = self._tokenize(prompt, add_bos=False, special=True)
            if len(tokens) + room <= self.context_size:
                if self.thinking_markers is not None:
                    self._thinking_format = ThinkingFormat(
                        self.thinking_markers, starts_thinking(prompt, self.thinking_markers)
                    )
                return tokens, self.chat_template.stops, dropped
            if not compact and self.chat_template.compact_source is not None:
                compact = True
                continue
            if len(turns) <= 1:
                raise PromptTooLong(
                    f"This message needs {len(tokens)} tokens with the chat template"
                    + (" and system prompt" if system else "")
                    + f", but the context holds {self.context_size} with {room} kept for the "
                    "reply. Shorten it, or load the model with a larger context (--max-token)."
                )
            # Drop the oldest exchange (user + assistant) so turns keep alternating.
            cut = 2 if len(turns) > 2 and turns[1].role == "assistant" else 1
            turns = turns[cut:]
            dropped += cut

    def _render_prompt(
        self, messages: list[dict[str, str]], enable_thinking: bool = True, *, compact: bool = False
    ) -> str:
        """The chat template applied to `messages`. The file's own template failing (raising,
        never ending, exploding) is said in a Notice, and the architecture's built-in format
        is used from then on. `compact`: without the template's worked examples, if it has
        any. Raises TemplateError (a built-in failing), or _Cancelled."""
        try:
            return self._render_with_template(messages, enable_thinking, compact)
        except TemplateError as error:
            if not self.chat_template.from_file:
                raise
            name, reason = fallback_template_choice(self.metadata)
            old = self.chat_template
            self.chat_template = ChatTemplate(name, f"{reason} (the file's own failed)", BUILT_IN_TEMPLATES[name],
                                              old.bos_token, old.eos_token)
            if self._sandbox is not None:
                self._sandbox.close()
                self._sandbox = None
            self._notices.append(f"{error} The built-in {name} format is used instead "
                                 "(the chat format setting, F6, can pick another).")
            log.warning("chat template of %s failed (%s); falling back to %s", self.path.name, error, name)
            return self._render_with_template(messages, enable_thinking, compact)

    def _render_with_template(
        self, messages: list[dict[str, str]], enable_thinking: bool, compact: bool = False
    ) -> str:
        template = self.chat_template
        if self._sandbox is None:  # a built-in template: ours, rendered here
            source = (compact and template.compact_source) or template.source
            try:
                return render_chat(source, messages, bos_token=template.bos_token,
                                   eos_token=template.eos_token, enable_thinking=enable_thinking)
            except (jinja2.TemplateError, ValueError) as error:
                raise TemplateError(f"The built-in chat template {template.name} failed: {error}") from error
        try:
            return self._sandbox.render(
                template.source, messages, bos_token=template.bos_token, eos_token=template.eos_token,
                cancelled=self._cancel.is_set, template_name=f"in {self.path.name}", enable_thinking=enable_thinking,
            )
        except TemplateCancelled:
            raise _Cancelled from None
        except TemplateFailed as error:
            raise TemplateError(str(error)) from error

    def _reply_room(self, sampling: SamplingSettings) -> int:
        wanted = sampling.max_reply_tokens or DEFAULT_REPLY_ROOM
        return max(1, min(wanted, self.context_size // 2))

    def _tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        return self._require_llm().tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def _require_llm(self) -> llama_cpp.Llama:
        if self._llm is None:
            raise ModelClosed("the model was closed")
        return self._llm

    # -- the decode loop ---------------------------------------------------------------

    def _run(
        self,
        prepare: Callable[[], tuple[list[int], list[str], int]],
        sampling: SamplingSettings,
        seed: int | None,
        *,
        thinking_budget: int | None = None,
    ) -> Iterator[GenerationEvent]:
        """Start a request on the caller's thread, then stream it wherever it is iterated.

        The stop flag is reset here, not in the decode thread: a cancel() that comes after
        chat() or complete() returned, but before the decode thread began, still counts.
        """
        if self._busy.locked() and not self._saving.is_set():
            raise ModelBusy("a reply is already being generated")
        self._cancel.clear()
        return self._stream(prepare, sampling, seed, time.perf_counter(), thinking_budget)

    def _stream(
        self,
        prepare: Callable[[], tuple[list[int], list[str], int]],
        sampling: SamplingSettings,
        seed: int | None,
        started: float,
        thinking_budget: int | None,
    ) -> Iterator[GenerationEvent]:
        # Only a save of the last reply's context may be in the way: it ends on its own.
        busy = self._busy
        acquired = busy.acquire(timeout=SAVE_WAIT) if self._saving.is_set() else busy.acquire(blocking=False)
        if not acquired:
            raise ModelBusy("a reply is already being generated")
        try:
            llm = self._require_llm()
            if self._closing:
                raise ModelClosed("the model is being closed")
            stats = GenerationStats(context_size=self.context_size)
            try:
                self._thinking_format = None
                tokens, stops, dropped = prepare()
                while self._notices:
                    yield Notice(self._notices.pop(0))
                if dropped:
                    yield TurnsDropped(dropped)
                if self._thinking_format is not None:  # set by a chat's prepare
                    yield self._thinking_format
                llama_cpp.llama_perf_context_reset(llm.ctx)
                stats = replace(stats, prompt_tokens=len(tokens))
                for progress in self._evaluate_prompt(llm, tokens, stats):
                    stats = progress.stats
                    yield progress
                budget = None
                if thinking_budget and self._thinking_format is not None:
                    budget = ThinkingBudget(self._thinking_format.markers, thinking_budget,
                                            opened_in_prompt=self._thinking_format.opened_in_prompt)
                yield from self._decode(llm, tokens, stops, sampling, stats, started, seed, budget)
            except _Cancelled:
                yield Finished(StopReason.CANCELLED, "", self._with_counters(llm, stats))
                return
            # After the reply's end was delivered: the user reads it while this is written.
            self._save_context(llm)
        finally:
            self._busy.release()
            self._saving.clear()  # after the release, so a request never sees it busy and not saving

    def _save_context(self, llm: llama_cpp.Llama) -> None:
        if self._contexts is None:
            return
        self._saving.set()
        memory = llama_cpp.llama_get_memory(llm.ctx)
        llama_cpp.llama_memory_seq_rm(memory, 0, llm.n_tokens, -1)  # only what input_ids lists
        self._contexts.save(llm.ctx, self._identity, llm.input_ids[: llm.n_tokens].tolist())

    def _load_saved_context(self, llm: llama_cpp.Llama, tokens: list[int]) -> None:
        """Load a saved state that spares more of `tokens` than the context holds now."""
        if self._contexts is None:
            return
        found = self._contexts.best(self._identity, tokens)
        held = common_prefix(llm.input_ids[: llm.n_tokens], tokens)
        if found is None or found[1] < held + MIN_GAIN:
            return
        loaded = self._contexts.load(llm.ctx, found[0], llm.n_ctx())
        if loaded is None:
            llm.reset()  # the sequence was emptied: the prompt is evaluated from its start
            return
        if len(llm.input_ids) < len(loaded):  # sized by the n_ctx asked; llama.cpp may round up
            llm.input_ids = np.resize(llm.input_ids, llm.n_ctx())
        llm.input_ids[: len(loaded)] = loaded
        llm.n_tokens = len(loaded)
        log.info("loaded a saved context of %d tokens (%d shared with the prompt)", len(loaded), found[1])

    def _evaluate_prompt(
        self, llm: llama_cpp.Llama, tokens: list[int], stats: GenerationStats
    ) -> Iterator[PromptProgress]:
        """Evaluate the part of the prompt not already in the KV cache, in batches."""
        self._load_saved_context(llm, tokens)
        reused = self._reuse_cached_prefix(llm, tokens)
        todo = tokens[reused:]
        stats = replace(stats, context_used=reused)
        llama_cpp.llama_set_abort_callback(llm.ctx, self._abort_callback, None)
        try:
            for start in range(0, len(todo), llm.n_batch):
                if self._cancel.is_set():
                    raise _Cancelled
                try:
                    llm.eval(todo[start : start + llm.n_batch])
                except RuntimeError:
                    if self._cancel.is_set():  # llama_decode returns 2 when aborted
                        raise _Cancelled from None
                    raise
                done = min(start + llm.n_batch, len(todo))
                yield PromptProgress(done, len(todo), replace(stats, prompt_evaluated=done, context_used=llm.n_tokens))
        finally:
            llama_cpp.llama_set_abort_callback(llm.ctx, llama_cpp.ggml_abort_callback(), None)  # NULL: no callback

    @staticmethod
    def _reuse_cached_prefix(llm: llama_cpp.Llama, tokens: list[int]) -> int:
        """Keep the longest prefix of `tokens` already in the KV cache; drop the rest of the cache."""
        cached = llm.input_ids[: llm.n_tokens]
        n = min(len(cached), len(tokens))
        mismatches = np.flatnonzero(cached[:n] != np.asarray(tokens[:n], dtype=cached.dtype))
        prefix = int(mismatches[0]) if mismatches.size else n
        # The last prompt token is always evaluated again: sampling needs fresh logits.
        prefix = min(prefix, len(tokens) - 1)
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if prefix <= 0 or not llama_cpp.llama_memory_seq_rm(memory, 0, prefix, -1):
            llm.reset()  # recurrent models cannot drop part of their state: start over
            llama_cpp.llama_memory_clear(memory, True)
            return 0
        llm.n_tokens = prefix
        return prefix

    def _decode(
        self,
        llm: llama_cpp.Llama,
        tokens: list[int],
        stops: list[str],
        sampling: SamplingSettings,
        stats: GenerationStats,
        started: float,
        seed: int | None,
        budget: ThinkingBudget | None = None,
    ) -> Iterator[GenerationEvent]:
        # Verify batches of several tokens count as prompt tokens in llama.cpp's counters:
        # the prompt's figures are the counters as they stand now. llama.cpp adds a decode
        # to them when it synchronizes (sampling would do that next anyway).
        llama_cpp.llama_synchronize(llm.ctx)
        prompt_perf = _Perf.read(llm)
        stats = self._with_counters(llm, stats, prompt_perf)
        decoder = TokenTextDecoder(self._token_bytes)
        scanner = StopScanner(stops)
        reply: list[str] = []
        first_token_at = 0.0
        reason = StopReason.END
        vocab = self._vocab
        cancel = self._cancel
        limit = sampling.max_reply_tokens
        loop = DecodeLoop(
            llm, sampling, sampling.seed if seed is None else seed, limit=limit,
            drafts=DraftPolicy(sampling.speculative) if sampling.speculative != "off" else None,
            verify_threads=self._verify_threads,
        )
        generated = 0
        try:
            for token in loop.tokens():
                if cancel.is_set():
                    reason = StopReason.CANCELLED
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                now = time.perf_counter()
                if not first_token_at:
                    first_token_at = now
                    stats = replace(stats, time_to_first_token=now - started)
                generated += 1
                piece = decoder.feed(token)
                if budget is not None:
                    budget.count(piece)
                text = scanner.feed(piece)
                if text:
                    counters = loop.counters
                    stats = replace(
                        stats,
                        generated_tokens=generated,
                        decode_seconds=now - first_token_at,
                        context_used=llm.n_tokens,
                        drafted_tokens=counters.drafted,
                        accepted_tokens=counters.accepted,
                    )
                    reply.append(text)
                    yield TextDelta(text, stats)
                if scanner.stopped:
                    break
                if budget is not None and budget.due:  # the next tokens are the model's close marker
                    loop.force(self._tokenize(budget.end_text, add_bos=False, special=True))
                    budget.closed()
                if limit and generated >= limit:
                    reason = StopReason.LENGTH
                    break
                if llm.n_tokens + 1 >= self.context_size:
                    reason = StopReason.CONTEXT_FULL
                    break
            else:
                reason = StopReason.CONTEXT_FULL  # the loop found no room for another token
        finally:
            loop.close()
        if first_token_at:
            stats = replace(stats, generated_tokens=generated, decode_seconds=now - first_token_at)
        stats = replace(stats, drafted_tokens=loop.counters.drafted, accepted_tokens=loop.counters.accepted)
        if not scanner.stopped:
            tail = scanner.feed(decoder.flush()) + scanner.flush()
            if tail:
                reply.append(tail)
                yield TextDelta(tail, self._with_counters(llm, stats, prompt_perf))
        yield Finished(reason, "".join(reply), self._with_counters(llm, stats, prompt_perf))

    def _with_counters(
        self, llm: llama_cpp.Llama, stats: GenerationStats, prompt: _Perf | None = None
    ) -> GenerationStats:
        """Fill in llama.cpp's own counters for this request; `prompt`: as they stood when
        the prompt was evaluated (None: still evaluating it)."""
        now = _Perf.read(llm)
        prompt = prompt or now
        return replace(
            stats,
            prompt_seconds=prompt.seconds,
            llama_prompt_tokens=prompt.tokens,
            llama_eval_tokens=now.tokens - prompt.tokens,
            llama_eval_seconds=now.seconds - prompt.seconds,
            context_used=llm.n_tokens,
        )

    def _special_tokens(self, texts: Iterable[str]) -> dict[str, int]:
        """Those of `texts` that are one control or user-defined token of the vocabulary,
        and the special tokens the others are made of, to their ids."""
        llm = self._require_llm()
        wanted = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        found: dict[str, int] = {}
        for text in texts:
            for token in llm.tokenize(text.encode("utf-8"), add_bos=False, special=True):
                if llama_cpp.llama_vocab_get_attr(self._vocab, token) & wanted:
                    found[_token_text(llm, token)] = token
        return found

    def _token_bytes(self, token: int) -> bytes:
        buffer = self._piece_buffer
        special = token in self._shown_tokens
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, special)
        if n < 0:  # the piece is longer than the buffer: -n is the size it needs
            buffer = self._piece_buffer = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, special)
        return buffer.raw[:n]


class _NoChatFormatter:
    """Stands in for llama-cpp-python's Jinja2ChatFormatter while a model loads."""

    def __init__(self, **_: object) -> None:
        pass

    def to_chat_handler(self) -> None:
        return None


@contextlib.contextmanager
def _without_the_bindings_chat_templates() -> Iterator[None]:
    """Llama() compiles every chat template in the file, in this process, for chat handlers
    we never use; Jinja computes constant expressions while compiling, so a hostile template
    would cost memory and time here, outside the template sandbox. Loads run one at a time
    (the app's load lock), so swapping the class for the load is safe."""
    real = llama_chat_format.Jinja2ChatFormatter
    llama_chat_format.Jinja2ChatFormatter = _NoChatFormatter  # type: ignore[misc,assignment]  # duck-typed, load only
    try:
        yield
    finally:
        llama_chat_format.Jinja2ChatFormatter = real  # type: ignore[misc]  # a class name, put back as it was


def _return_freed_memory() -> None:
    """Hand memory freed with a model back to the system. glibc keeps ~75 MiB of a closed
    starter model's heap otherwise (bench/startup_memory.py), so swapping to a smaller model
    would not shrink the process."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _marker_pieces(markers: ThinkingMarkers | None) -> list[str]:
    if markers is None:
        return []
    return [text for text in (markers.open, markers.close, markers.answer_suffix, *markers.answer_prefixes) if text]


def _token_text(llm: llama_cpp.Llama, token: int) -> str:
    if token < 0:
        return ""
    return llm.detokenize([token], special=True).decode("utf-8", errors="replace")


def _load_failure_reason(native_errors: list[str]) -> str | None:
    """The most telling of llama.cpp's error lines; the last one is usually a generic summary."""
    for line in native_errors:
        if "error loading model:" in line:
            return line.split("error loading model:", 1)[1].strip()
    specific = [line for line in native_errors if not line.endswith("failed to load model")]
    lines = specific or native_errors
    return lines[0] if lines else None


def _check_is_gguf(path: Path) -> None:
    """Fail early, with a plain message, on paths llama.cpp would only log an error for."""
    try:
        check_gguf_start(path)
    except GGUFHeaderError as error:
        raise ModelLoadError(str(error)) from None
