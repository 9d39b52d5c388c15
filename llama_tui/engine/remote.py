"""A model on an OpenAI-compatible server (llama-server, vLLM, Ollama, llama-cpp-python's
server...), behind the same ModelBackend interface as a local GGUF.

Built on the official `openai` client: it decodes the stream, maps HTTP errors to types and
authenticates. Around it, three things the app needs that it does not give:

- Cancel at once. A reply runs in its own thread that puts what it reads on a queue; the
  iterator reads the queue. cancel() puts a stop on the queue (the iterator ends with
  Finished(CANCELLED) at once, whatever the connection is doing: resolving a name,
  connecting, waiting for the first byte) and shuts the reply's socket down, so the server
  sees the connection close and stops generating, and the thread ends. The socket comes
  from httpcore's `trace` hook at connect time; each reply gets a connection of its own
  (no keep-alive for replies) so its socket is always known.
- Figures. Token counts come from the server when it sends them (`usage`, with
  stream_options.include_usage; llama-server's `timings` with its prompt and decode times);
  otherwise each streamed chunk counts as one token and Capabilities.exact_figures is False.
  Times to the first token and between tokens are the client's clock, as a user sees them.
- Errors in words (engine.remote_errors), the text already streamed kept.
- A chat longer than the server's context loses its oldest exchanges, as LoadedModel's
  does (engine.remote_fit).
"""

from __future__ import annotations

import functools
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any, Literal

import httpx2
import openai
from openai.types import Completion
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from llama_tui.engine.backend import Capabilities, ModelBusy, ModelClosed
from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.events import (
    Finished,
    GenerationEvent,
    GenerationStats,
    PromptProgress,
    StopReason,
    TextDelta,
    ThinkingDelta,
    TurnsDropped,
)
from llama_tui.engine.model import DEFAULT_REPLY_ROOM, EmptyPrompt
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.remote_errors import (
    ConnectionDropped,
    NoCompletion,
    RemoteOpenError,
    ServerRejected,
    reply_error,
)
from llama_tui.engine.remote_fit import context_exceeded, drop_more
from llama_tui.engine.remote_server import (
    DEFAULT_CONNECT_TIMEOUT,
    NO_KEY,
    SAMPLING_BY_KIND,
    SEEDED_KINDS,
    ServerInfo,
    ServerModel,
    choose_model,
    fetch_models,
    host_label,
    list_models,
    make_api,
    make_http_client,
    normalize_endpoint,
    probe_server,
    root_url,
    short_timeout,
    stream_timeout,
)
from llama_tui.engine.settings import SamplingSettings

log = logging.getLogger(__name__)

__all__ = ["RemoteModel", "RemoteOpenError", "list_models"]

_OpenStream = Callable[[bool, int], "openai.Stream[Any]"]
"""Sends the request (with stream_options or not, leaving out the first N turns)."""
_Fit = Callable[[int, ServerRejected], "int | None"]
"""How many turns to leave out after a rejection when N were; None: not a context problem."""

_CANCELLED = object()
_END = object()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


@dataclass(frozen=True)
class _Fields:
    """Sampling as request fields; openai.omit leaves a field out (the server's default)."""

    temperature: float
    top_p: float
    max_tokens: int | openai.Omit
    seed: int | openai.Omit
    extra_body: dict[str, object] | None


class _Call:
    """One streamed request: its cancel flag, the queue its thread fills, its sockets."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.items: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def trace(self, name: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: keep the socket of each connection this request opens."""
        if name != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.append(sock)
                if self.cancelled.is_set():  # cancelled while connecting: never send the request
                    _shut(sock)

    def cancel(self) -> None:
        with self._lock:
            if self.cancelled.is_set():
                return
            self.cancelled.set()
            for sock in self._sockets:
                _shut(sock)
        self.items.put(_CANCELLED)


def _shut(sock: socket.socket) -> None:
    # shutdown, not close: close() from another thread does not wake a recv() blocked on
    # the socket (Linux), and sends nothing to the server until that recv returns.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


class _ReplyThread(threading.Thread):
    """Sends one request and queues each chunk it reads, then _END or _Failed."""

    def __init__(self, call: _Call, open_stream: Callable[[], openai.Stream[Any]]) -> None:
        super().__init__(name="remote-reply", daemon=True)
        self.call = call
        self._open_stream = open_stream

    def run(self) -> None:
        call = self.call
        try:
            if call.cancelled.is_set():
                return
            with self._open_stream() as stream:
                for chunk in stream:
                    call.items.put(chunk)
                    if call.cancelled.is_set():
                        return
            call.items.put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the iterator, raised there
            call.items.put(_Failed(error))


def _trace_reply_connections(request: httpx2.Request) -> None:
    """httpx request hook: requests made by a reply thread report their connections to it."""
    thread = threading.current_thread()
    if isinstance(thread, _ReplyThread):
        request.extensions["trace"] = thread.call.trace


def _warm_up(api: openai.OpenAI) -> None:
    """Do at open what the openai client does lazily on first use: import the chat and
    completion resources and build the chunk models (~30 ms, else added to the first TTFT)."""
    _ = api.chat.completions, api.completions
    sample: dict[str, Any] = {"id": "", "object": "chat.completion.chunk", "created": 0, "model": "",
              "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": None}]}
    ChatCompletionChunk.model_construct(**sample)
    Completion.model_construct(**{**sample, "object": "text_completion", "choices": [
        {"index": 0, "text": "", "finish_reason": "stop"}]})


def _message(message: ChatMessage) -> ChatCompletionMessageParam:
    # One branch per role: each role is its own TypedDict in openai's types.
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "user":
        return {"role": "user", "content": message.content}
    return {"role": "assistant", "content": message.content}


def _display_name(model_id: str, alias: str) -> str:
    name = alias or model_id
    if name.endswith(".gguf"):  # llama-cpp-python and llama-server name a model by its path by default
        return PurePosixPath(name).name
    return name


class RemoteModel:
    """A model on a server, ready to chat. Create it with `RemoteModel.open`."""

    def __init__(self, info: ServerInfo, model: ServerModel, api_key: str | None, context_size: int,
                 timeout_connect: float) -> None:
        self._info = info
        self._model = model
        self._endpoint = info.endpoint
        self._host = host_label(info.endpoint)
        self._api_key = api_key
        self._context_size = context_size
        self._context_used = 0
        self._short_http = make_http_client(short_timeout(timeout_connect))
        self._api = make_api(self._endpoint, api_key, self._short_http)
        self._stream_http = make_http_client(stream_timeout(timeout_connect), keep_alive=False,
                                             on_request=_trace_reply_connections)
        self._stream_api = make_api(self._endpoint, api_key, self._stream_http)
        self._busy = threading.Lock()
        self._call: _Call | None = None
        self._closed = False
        self._has_completion: bool | None = None if info.kind == "openai-compatible" else True
        """Known for the servers we know; for others found on first use (a 404 says no)."""
        self._counted_usage: bool | None = None
        """Whether the last reply came with the server's token counts."""
        self._send_stream_options = info.kind != "llama-cpp-python"  # it ignores them
        self._bos_offset: int | None = None
        self._last_timings: dict[str, Any] | None = None
        _warm_up(self._stream_api)

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    def open(cls, endpoint: str, model_id: str | None = None, *, api_key: str | None = None,
             context_size: int | None = None, timeout_connect: float = DEFAULT_CONNECT_TIMEOUT) -> RemoteModel:
        """Connect to the server at `endpoint` (its API base URL, e.g. http://host:8080/v1) and
        pick `model_id`, or its only model. The context size is the server's where it says
        (llama-server /props, vLLM max_model_len), else `context_size`, else 0 (unknown).
        Raises RemoteOpenError with a message for the user."""
        endpoint = normalize_endpoint(endpoint)
        host = host_label(endpoint)
        with make_http_client(short_timeout(timeout_connect)) as http:
            models = fetch_models(make_api(endpoint, api_key, http), endpoint)
            model = choose_model(models, model_id, host)
            info = probe_server(http, endpoint, api_key, models, model)
        size = info.context_size or context_size or 0
        log.info("opened %s at %s: %s server, context %s (%s)", model.id, endpoint, info.kind, size or "unknown",
                 info.context_source or ("setting" if size else "unknown"))
        return cls(info, model, api_key, size, timeout_connect)

    def close(self) -> None:
        """Stop any reply and let its iterator end, then close the connections. Idempotent."""
        self._closed = True
        self.cancel()
        # The iterator ends at once after cancel() if it is being read; do not hang if not.
        if self._busy.acquire(timeout=5):
            self._busy.release()
        self._stream_api.close()
        self._api.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- what it is ----------------------------------------------------------------------

    @property
    def ref(self) -> ModelRef:
        return ModelRef.server(self._endpoint, self._model.id)

    @property
    def model_id(self) -> str:
        return self._model.id

    @property
    def server_kind(self) -> str:
        return self._info.kind

    @property
    def name(self) -> str:
        return _display_name(self._model.id, self._info.model_alias)

    @property
    def context_size(self) -> int:
        """Tokens the server's context holds; 0 when neither the server nor a setting says."""
        return self._context_size

    @property
    def context_used(self) -> int:
        """Tokens in the context as of the last reply, when the server counted them; else 0."""
        return self._context_used

    @property
    def description(self) -> str:
        if self._info.context_source:
            context = f"context {self._context_size} from the server's {self._info.context_source}"
        elif self._context_size:
            context = f"context {self._context_size} from the settings (the server does not say)"
        else:
            context = "context size unknown (the server does not say; set it in the settings)"
        return f"{self.name} at {self._host} ({self._info.kind} server; {context})"

    @property
    def last_server_timings(self) -> dict[str, Any] | None:
        """llama-server's own `timings` for the last reply that ended (predicted_per_second,
        prompt_ms...), as it sent them; None from other servers."""
        return self._last_timings

    @property
    def capabilities(self) -> Capabilities:
        kind = self._info.kind
        return Capabilities(
            completion=self._has_completion is not False,
            seed=kind in SEEDED_KINDS,
            sampling=SAMPLING_BY_KIND[kind],
            gpu_offload=False,
            # Before the first reply: what this kind of server does (llama-cpp-python's never counts).
            exact_figures=self._counted_usage if self._counted_usage is not None else kind != "llama-cpp-python",
            # llama-server and vLLM pass chat_template_kwargs on to the model's template.
            thinking_switch=kind in ("llama-server", "vllm"),
        )

    # -- generation ----------------------------------------------------------------------

    def chat(self, messages: Sequence[ChatMessage], sampling: SamplingSettings, *,
             seed: int | None = None, prefill: str = "", enable_thinking: bool = True,
             thinking_budget: int | None = None) -> Generator[GenerationEvent, None, None]:
        """Stream the reply to `messages` from /v1/chat/completions. When the server says the
        chat is longer than its context, the oldest exchanges are left out (TurnsDropped says
        how many) and it is sent again; never the system prompt or the last message.
        `prefill`: an unfinished reply to continue, sent as a last assistant message (which
        llama-server continues; vLLM is asked to with continue_final_message)."""
        system = list(messages[:1]) if messages and messages[0].role == "system" else []
        turns = list(messages[len(system):])
        if prefill:
            turns.append(ChatMessage("assistant", prefill))
        fields = self._fields(sampling, sampling.seed if seed is None else seed)
        if prefill and self._info.kind == "vllm":
            fields = replace(fields, extra_body={**(fields.extra_body or {}),
                                                 "continue_final_message": True, "add_generation_prompt": False})
        if not enable_thinking and self.capabilities.thinking_switch:
            fields = replace(fields, extra_body={**(fields.extra_body or {}),
                                                 "chat_template_kwargs": {"enable_thinking": False}})

        def open_stream(include_usage: bool, dropped: int) -> openai.Stream[Any]:
            return self._stream_api.chat.completions.create(
                model=self._model.id, messages=[_message(m) for m in system + turns[dropped:]], stream=True,
                stream_options={"include_usage": True} if include_usage else openai.omit,
                temperature=fields.temperature, top_p=fields.top_p, max_tokens=fields.max_tokens, seed=fields.seed,
                extra_body=fields.extra_body,
            )

        def fit(dropped: int, rejection: ServerRejected) -> int | None:
            excess = context_exceeded(rejection.body, str(rejection))
            if not excess:
                return None
            room = sampling.max_reply_tokens or DEFAULT_REPLY_ROOM
            return drop_more(turns, dropped, sum(len(m.content) for m in system), excess, room)

        return self._start(open_stream, sampling, "chat", fit)

    def complete(self, text: str, sampling: SamplingSettings, *,
                 seed: int | None = None) -> Generator[GenerationEvent, None, None]:
        """Stream a continuation of `text` from /v1/completions."""
        if self._has_completion is False:
            raise NoCompletion(self._no_completion_message())
        if not text.strip():
            raise EmptyPrompt("There is no text to continue: write the start of one first.")
        fields = self._fields(sampling, sampling.seed if seed is None else seed)

        def open_stream(include_usage: bool, _dropped: int) -> openai.Stream[Any]:
            return self._stream_api.completions.create(
                model=self._model.id, prompt=text, stream=True,
                stream_options={"include_usage": True} if include_usage else openai.omit,
                temperature=fields.temperature, top_p=fields.top_p, max_tokens=fields.max_tokens, seed=fields.seed,
                extra_body=fields.extra_body,
            )

        return self._start(open_stream, sampling, "completion")

    def cancel(self) -> None:
        """Stop the reply at once: its iterator ends with Finished(CANCELLED) and its
        connection is shut, from whichever thread calls this."""
        call = self._call
        if call is not None:
            call.cancel()

    def clear_context(self) -> bool:
        """Nothing is held here: each request sends the whole conversation."""
        self._context_used = 0
        return True

    def count_tokens(self, text: str) -> int | None:
        """Tokens in `text` by the server's own tokenizer (llama-server /tokenize,
        llama-cpp-python /extras/tokenize/count), or None when it has none or is busy."""
        kind = self._info.kind
        if self._closed:
            return None
        try:
            if kind == "llama.cpp":
                data = self._post_root("/tokenize", {"content": text, "add_special": False})
                tokens = data.get("tokens")
                return len(tokens) if isinstance(tokens, list) else None
            if kind == "llama-cpp-python":
                if self._busy.locked():  # it serves one request at a time: this would wait for the reply
                    return None
                if self._bos_offset is None:  # it always adds BOS when the model does
                    self._bos_offset = self._llama_cpp_python_count("")
                count = self._llama_cpp_python_count(text)
                return max(0, count - self._bos_offset)
        except (httpx2.HTTPError, ValueError, KeyError, TypeError) as error:
            log.info("count_tokens at %s: %s", self._host, error)
        return None

    # -- helpers -------------------------------------------------------------------------

    def _post_root(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._short_http.post(root_url(self._endpoint) + path, json=body,
                                         headers={"Authorization": f"Bearer {self._api_key or NO_KEY}"})
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return data

    def _llama_cpp_python_count(self, text: str) -> int:
        return int(self._post_root("/extras/tokenize/count", {"input": text, "model": self._model.id})["count"])

    def _fields(self, sampling: SamplingSettings, seed: int | None) -> _Fields:
        """The request fields for `sampling`: standard ones for every server, the others in
        extra_body where the server takes them (see remote_server)."""
        kind = self._info.kind
        extra: dict[str, object] = {}
        if kind in ("llama.cpp", "llama-cpp-python", "vllm"):
            extra = {"top_k": sampling.top_k, "min_p": sampling.min_p}
            extra["repetition_penalty" if kind == "vllm" else "repeat_penalty"] = sampling.repeat_penalty
        if kind == "llama.cpp":
            extra["return_progress"] = True  # prompt_progress chunks while a long prompt is evaluated
        return _Fields(
            sampling.temperature, sampling.top_p,
            sampling.max_reply_tokens if sampling.max_reply_tokens else openai.omit,  # omitted: the server's default
            openai.omit if seed is None else seed,
            extra or None,
        )

    def _no_completion_message(self) -> str:
        return (f"The server at {self._host} has no /v1/completions, so it cannot continue raw text: "
                "use the Chat tab with this model.")

    def _start(self, open_stream: _OpenStream, sampling: SamplingSettings, what: Literal["chat", "completion"],
               fit: _Fit | None = None) -> Generator[GenerationEvent, None, None]:
        """Check and arm the request on the caller's thread; stream it wherever it is read.
        The call is made here so that a cancel() between now and the first read counts."""
        if self._closed:
            raise ModelClosed("the connection to the server was closed")
        if self._busy.locked():
            raise ModelBusy("a reply is already being generated")
        call = _Call()
        self._call = call
        return self._stream(call, open_stream, sampling, what, fit, time.perf_counter())

    def _stream(self, call: _Call, open_stream: _OpenStream, sampling: SamplingSettings,
                what: Literal["chat", "completion"], fit: _Fit | None,
                started: float) -> Generator[GenerationEvent, None, None]:
        if not self._busy.acquire(blocking=False):
            raise ModelBusy("a reply is already being generated")
        try:
            if self._closed:
                raise ModelClosed("the connection to the server was closed")
            reader = _ReplyReader(self, sampling, what, started)
            include_usage = self._send_stream_options
            dropped = 0
            while True:
                thread = _ReplyThread(call, functools.partial(open_stream, include_usage, dropped))
                thread.start()
                try:
                    yield from reader.read(call)
                    return
                except ServerRejected as error:
                    # Nothing was generated: the request may be sent again, changed.
                    if include_usage and "stream_options" in str(error):
                        # A server that refuses stream_options: without them, from now on.
                        log.info("%s refuses stream_options; sending without them", self._host)
                        include_usage = self._send_stream_options = False
                    else:
                        more = fit(dropped, error) if fit is not None else None
                        if more is None:
                            raise
                        log.info("%s: the chat is longer than its context; leaving out %d more messages",
                                 self._host, more - dropped)
                        yield TurnsDropped(more - dropped)
                        dropped = more
                    previous, call = call, _Call()
                    self._call = call  # before the check: a cancel() now reaches one or the other
                    if previous.cancelled.is_set():  # cancelled between the two requests
                        yield Finished(StopReason.CANCELLED, "", reader.stats)
                        return
        finally:
            call.cancel()  # a reader that stops early (closed iterator, error) shuts the connection
            self._busy.release()

    def _finished(self, counted: bool, context_used: int | None, timings: dict[str, Any] | None) -> None:
        self._counted_usage = counted
        self._last_timings = timings
        if context_used is not None:
            self._context_used = context_used


class _ReplyReader:
    """Turns the chunks of one reply into events, keeping its text and figures."""

    def __init__(self, model: RemoteModel, sampling: SamplingSettings, what: Literal["chat", "completion"],
                 started: float) -> None:
        self._model = model
        self._sampling = sampling
        self._what = what
        self._started = started
        self._first_at = 0.0
        self._parts: list[str] = []
        self._chunks = 0
        self.stats = GenerationStats(context_size=model.context_size)
        self._finish_reason: str | None = None
        self._usage: Any = None
        self._timings: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def read(self, call: _Call) -> Iterator[GenerationEvent]:
        model = self._model
        while True:
            item = call.items.get()
            if item is _CANCELLED or call.cancelled.is_set():
                yield Finished(StopReason.CANCELLED, self.text, self._final_stats(done=False))
                return
            if item is _END:
                break
            if isinstance(item, _Failed):
                raise self._error(item.error) from item.error
            try:
                events = self._chunk_events(item)
            except (ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
                raise self._error(error) from error
            yield from events
        if self._finish_reason is None:  # the stream ended, but not as the API says it ends
            if self._parts:
                message = (f"The server at {model._host} ended the reply without saying it was done (the "
                           "connection may have dropped, or the server failed); the text so far is kept.")
            else:
                message = (f"The server at {model._host} ended the reply before any text, without saying why "
                           "(its log may tell; llama-cpp-python's server does this when the prompt is longer "
                           "than its context).")
            raise ConnectionDropped(message, self.text, self.stats)
        stats = self._final_stats()
        yield Finished(self._stop_reason(stats), self.text, stats)

    def _error(self, error: BaseException) -> BaseException:
        model = self._model
        if (self._what == "completion" and isinstance(error, openai.NotFoundError)
                and "model" not in str(error).lower()):
            model._has_completion = False
            return NoCompletion(model._no_completion_message())
        if not isinstance(error, Exception):
            return error
        return reply_error(error, model._host, model.model_id, self.text, self.stats)

    def _chunk_events(self, chunk: object) -> list[GenerationEvent]:
        """The events in one chunk (a chat delta or a completion piece, with extras)."""
        if not isinstance(chunk, openai.BaseModel):
            raise TypeError(f"a chunk that is not a JSON object: {chunk!r:.80}")
        extra: dict[str, Any] = chunk.model_extra or {}
        usage = getattr(chunk, "usage", None)  # absent from a completion chunk of some servers
        if usage is not None:
            self._usage = usage
        if isinstance(extra.get("timings"), dict):
            self._timings = extra["timings"]
        events: list[GenerationEvent] = []
        progress = extra.get("prompt_progress")
        if isinstance(progress, dict):
            events.append(self._progress(progress))
        for choice in getattr(chunk, "choices", None) or []:
            if getattr(choice, "index", 0) != 0:
                continue
            if choice.finish_reason:
                self._finish_reason = str(choice.finish_reason)
            if self._what == "chat":
                delta = choice.delta
                thinking = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
                if isinstance(thinking, str) and thinking:
                    events.append(ThinkingDelta(thinking, self._count_token()))
                content = delta.content
            else:
                content = choice.text
            if isinstance(content, str) and content:
                self._parts.append(content)
                events.append(TextDelta(content, self._count_token()))
        return events

    def _progress(self, progress: dict[str, Any]) -> PromptProgress:
        cached = int(progress.get("cache", 0))
        total = int(progress.get("total", 0))
        done = int(progress.get("processed", 0)) - cached
        self.stats = replace(self.stats, prompt_tokens=total, prompt_evaluated=max(0, done),
                             prompt_seconds=float(progress.get("time_ms", 0.0)) / 1000)
        return PromptProgress(max(0, done), max(0, total - cached), self.stats)

    def _count_token(self) -> GenerationStats:
        """One more token (a chunk) arrived: the client's count and clock."""
        now = time.perf_counter()
        if not self._first_at:
            self._first_at = now
            self.stats = replace(self.stats, time_to_first_token=now - self._started)
        self._chunks += 1
        self.stats = replace(self.stats, generated_tokens=self._chunks, decode_seconds=now - self._first_at)
        return self.stats

    def _final_stats(self, done: bool = True) -> GenerationStats:
        """The server's figures where it sent them, over the client's estimates; `done`: the
        reply ran to its end, so whether the server counted tells what it does."""
        stats = self.stats
        usage, timings = self._usage, self._timings
        counted = usage is not None or timings is not None
        prompt_tokens: int | None = None
        if timings is not None:
            prompt_n = int(timings.get("prompt_n", 0))
            predicted_n = int(timings.get("predicted_n", 0))
            prompt_tokens = int(timings.get("cache_n", 0)) + prompt_n
            stats = replace(stats, prompt_tokens=prompt_tokens, prompt_evaluated=prompt_n, llama_prompt_tokens=prompt_n,
                            prompt_seconds=float(timings.get("prompt_ms", 0.0)) / 1000,
                            generated_tokens=predicted_n, llama_eval_tokens=predicted_n,
                            llama_eval_seconds=float(timings.get("predicted_ms", 0.0)) / 1000)
            if "draft_n" in timings:  # llama-server with speculative decoding
                stats = replace(stats, drafted_tokens=int(timings.get("draft_n", 0)),
                                accepted_tokens=int(timings.get("draft_n_accepted", 0)))
        if usage is not None:
            prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
            stats = replace(stats, prompt_tokens=prompt_tokens,
                            generated_tokens=int(getattr(usage, "completion_tokens", 0) or 0))
            if timings is None:
                stats = replace(stats, prompt_evaluated=prompt_tokens)
        context_used = prompt_tokens + stats.generated_tokens if prompt_tokens is not None else None
        stats = replace(stats, context_used=context_used or 0, context_size=self._model.context_size)
        if done:
            self._model._finished(counted, context_used, timings)
        return stats

    def _stop_reason(self, stats: GenerationStats) -> StopReason:
        if self._finish_reason != "length":
            return StopReason.END
        wanted = self._sampling.max_reply_tokens
        if wanted and stats.generated_tokens >= wanted:
            return StopReason.LENGTH
        if stats.context_size and stats.context_used >= stats.context_size - 1:
            return StopReason.CONTEXT_FULL
        return StopReason.LENGTH
