"""The remote backend against a real OpenAI-compatible server: llama-cpp-python's own, on the
tiny random-weight model, started once for the session (tests/openai_server.py). Faults go
through tests/fault_proxy.py in front of it: the client is the real `openai` one.

No wall-clock thresholds: a test asserts on outcomes and their order. Where a test waits
for something that should happen at once (a cancel), the wait is a failsafe (a thread join
with a generous timeout), so a hang fails the test instead of the run.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llama_tui.engine import secrets
from llama_tui.engine.backend import ModelBusy, ModelClosed, PromptError
from llama_tui.engine.conversation import ChatMessage
from llama_tui.engine.events import (
    Finished,
    GenerationEvent,
    PromptProgress,
    StopReason,
    TextDelta,
    ThinkingDelta,
    TurnsDropped,
)
from llama_tui.engine.model_ref import ModelRef
from llama_tui.engine.remote import RemoteModel, list_models
from llama_tui.engine.remote_errors import (
    BadStreamData,
    ConnectionDropped,
    NoCompletion,
    RemoteOpenError,
    ServerFailed,
    ServerRateLimited,
    ServerRefused,
    ServerRejected,
    ServerUnreachable,
    UnknownModel,
)
from llama_tui.engine.remote_fit import context_exceeded, drop_more
from llama_tui.engine.remote_server import ServerInfo, ServerModel
from llama_tui.engine.settings import SamplingSettings
from tests.fault_proxy import Fault, FaultProxy
from tests.openai_server import RunningServer, free_port

FAILSAFE = 60.0
"""Seconds before a wait that should end at once is called a hang."""

HELLO = [ChatMessage("user", "Say something.")]


def sampling(tokens: int = 16, **changes: Any) -> SamplingSettings:
    # The tiny model never emits EOS: every reply needs a max length.
    return SamplingSettings(max_reply_tokens=tokens, **changes)


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `work` in a thread; its result or exception lands in the dict."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = work()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            out["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def finish(thread: threading.Thread, out: dict[str, Any]) -> Any:
    thread.join(FAILSAFE)
    assert not thread.is_alive(), "still running: the cancel or timeout did not unblock it"
    if "error" in out:
        raise out["error"]
    return out["result"]


def texts(events: list[GenerationEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.fixture(scope="session")
def proxy_session(openai_server: RunningServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(openai_server.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(proxy_session: FaultProxy) -> Iterator[FaultProxy]:
    proxy_session.reset()
    yield proxy_session
    proxy_session.reset()


@pytest.fixture
def remote(openai_server: RunningServer) -> Iterator[RemoteModel]:
    model = RemoteModel.open(openai_server.endpoint)
    yield model
    model.close()


@pytest.fixture
def proxied(proxy: FaultProxy) -> Iterator[RemoteModel]:
    """A model opened through the proxy (faults are set after opening)."""
    model = RemoteModel.open(proxy.endpoint, context_size=512)
    yield model
    model.close()


# -- opening -------------------------------------------------------------------------------

def test_open_picks_the_only_model_and_says_what_it_knows(openai_server: RunningServer) -> None:
    model = RemoteModel.open(openai_server.endpoint)
    try:
        assert model.model_id == str(openai_server.model_path)  # llama-cpp-python lists the path
        assert model.name == "tiny-remote.gguf"
        assert model.server_kind == "llama-cpp-python"
        assert model.ref == ModelRef.server(openai_server.endpoint, str(openai_server.model_path))
        # llama-cpp-python's server says nothing of its context: unknown, and said so.
        assert model.context_size == 0
        assert "context size unknown" in model.description
        assert "127.0.0.1" in model.description
        caps = model.capabilities
        assert caps.completion and caps.seed and not caps.gpu_offload
        assert caps.sampling == {"temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_reply_tokens"}
        assert caps.exact_figures is False  # it sends no usage in a stream
    finally:
        model.close()


def test_open_takes_the_context_size_setting_when_the_server_does_not_say(openai_server: RunningServer) -> None:
    model = RemoteModel.open(openai_server.endpoint.removesuffix("/v1"), context_size=512)  # /v1 is added
    try:
        assert model.context_size == 512
        assert "context 512 from the settings" in model.description
    finally:
        model.close()


def test_list_models(openai_server: RunningServer) -> None:
    assert list_models(openai_server.endpoint) == [str(openai_server.model_path)]


def test_unknown_model_lists_the_ones_there_are(openai_server: RunningServer) -> None:
    with pytest.raises(RemoteOpenError) as caught:
        RemoteModel.open(openai_server.endpoint, "no-such-model")
    message = str(caught.value)
    assert "no model 'no-such-model'" in message
    assert str(openai_server.model_path) in message


def test_refused_port_is_reported_unreachable() -> None:
    with pytest.raises(RemoteOpenError) as caught:
        RemoteModel.open(f"http://127.0.0.1:{free_port()}/v1", timeout_connect=2)
    assert "Cannot reach the server" in str(caught.value)
    assert "refused" in str(caught.value)


@pytest.fixture
def blackholed_port() -> Iterator[int]:
    """A listener with a backlog of 0 that never accepts: once one connection waits in its
    queue, the kernel drops further SYNs, as a firewall that blackholes a port does."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    yield port
    filler.close()
    listener.close()


def test_blackholed_address_is_reported_unreachable(blackholed_port: int) -> None:
    url = f"http://127.0.0.1:{blackholed_port}/v1"
    thread, out = in_thread(lambda: RemoteModel.open(url, timeout_connect=1))
    with pytest.raises(RemoteOpenError) as caught:
        finish(thread, out)
    assert "Cannot reach the server" in str(caught.value)
    assert "no answer to the connection request" in str(caught.value)


def test_server_that_never_answers_is_reported() -> None:
    # Connections are accepted by the kernel into the backlog, but nothing ever answers.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        thread, out = in_thread(lambda: RemoteModel.open(f"http://127.0.0.1:{port}/v1", timeout_connect=1))
        with pytest.raises(RemoteOpenError) as caught:
            finish(thread, out)
        assert "did not answer in time" in str(caught.value)
    finally:
        listener.close()


def test_open_refused_key_mentions_the_setting(proxy: FaultProxy) -> None:
    proxy.reset(Fault(status=401, body={"detail": "Invalid API key"}, paths=("/models",)))
    with pytest.raises(RemoteOpenError) as caught:
        RemoteModel.open(proxy.endpoint, api_key="wrong")
    assert "Invalid API key" in str(caught.value)
    assert "api_key_env" in str(caught.value)
    assert proxy.seen[0].headers["authorization"] == "Bearer wrong"


def test_api_key_is_sent_and_no_env_key_leaks(proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-meant-for-openai")
    model = RemoteModel.open(proxy.endpoint)
    try:
        list(model.chat(HELLO, sampling(4)))
    finally:
        model.close()
    assert {s.headers.get("authorization") for s in proxy.seen} == {"Bearer no-key"}


# -- streaming -----------------------------------------------------------------------------

def test_chat_streams_text_then_finished_with_timed_figures(remote: RemoteModel) -> None:
    events = list(remote.chat(HELLO, sampling(16), seed=3))
    *deltas, last = events
    assert deltas and all(isinstance(e, TextDelta) for e in deltas)
    assert isinstance(last, Finished)
    assert last.reason == StopReason.LENGTH
    assert last.text == texts(deltas) and last.text
    stats = last.stats
    # Timed by the client: one chunk per token (llama-cpp-python streams each token alone).
    assert stats.generated_tokens == 16
    assert stats.time_to_first_token is not None and stats.time_to_first_token > 0
    assert stats.tokens_per_second is not None
    assert stats.prompt_tokens == 0  # the server does not say
    assert remote.capabilities.exact_figures is False
    # Figures grow with each delta.
    counts = [e.stats.generated_tokens for e in deltas if isinstance(e, TextDelta)]
    assert counts == sorted(counts) and counts[-1] == 16


def test_completion_streams_a_continuation(remote: RemoteModel) -> None:
    events = list(remote.complete("Once upon a time", sampling(12), seed=3))
    assert isinstance(events[-1], Finished)
    assert events[-1].reason == StopReason.LENGTH
    assert events[-1].text == texts(events[:-1]) and events[-1].text
    assert remote.capabilities.completion


def test_sampling_fields_and_seed_reach_the_server(proxied: RemoteModel, proxy: FaultProxy) -> None:
    settings = SamplingSettings(temperature=0.5, top_p=0.9, top_k=12, min_p=0.1, repeat_penalty=1.1,
                                max_reply_tokens=8)
    list(proxied.chat(HELLO, settings, seed=42))
    list(proxied.complete("Text", settings, seed=43))
    chat, completion = (s.json() for s in proxy.faulted())
    for body, seed in ((chat, 42), (completion, 43)):
        assert body["stream"] is True
        assert body["seed"] == seed
        assert body["max_tokens"] == 8
        assert (body["temperature"], body["top_p"], body["top_k"], body["min_p"], body["repeat_penalty"]) == (
            0.5, 0.9, 12, 0.1, 1.1)
        assert "stream_options" not in body  # llama-cpp-python ignores them; not sent
    assert chat["messages"] == [{"role": "user", "content": "Say something."}]
    assert completion["prompt"] == "Text"


def test_same_seed_gives_the_same_text(remote: RemoteModel) -> None:
    settings = sampling(24, temperature=1.0)
    first = list(remote.chat(HELLO, settings, seed=7))[-1]
    again = list(remote.chat(HELLO, settings, seed=7))[-1]
    other = list(remote.chat(HELLO, settings, seed=8))[-1]
    assert isinstance(first, Finished) and isinstance(again, Finished) and isinstance(other, Finished)
    assert first.text == again.text
    assert other.text != first.text


def test_count_tokens_matches_the_local_tokenizer(remote: RemoteModel, openai_server: RunningServer) -> None:
    from llama_tui.engine.model import LoadedModel
    from llama_tui.engine.settings import LoadSettings

    local = LoadedModel.load(openai_server.model_path, LoadSettings(n_ctx=256, n_threads=1, n_threads_batch=1))
    try:
        for text in ("hello world", "Say something, anything at all.", ""):
            assert remote.count_tokens(text) == local.count_tokens(text)
    finally:
        local.close()


def test_busy_then_closed(remote: RemoteModel) -> None:
    stream = remote.chat(HELLO, sampling(8))
    assert isinstance(next(stream), TextDelta)
    with pytest.raises(ModelBusy):
        remote.chat(HELLO, sampling(8))
    stream.close()  # an iterator closed early frees the model
    assert isinstance(list(remote.chat(HELLO, sampling(4)))[-1], Finished)
    remote.close()
    remote.close()  # idempotent
    with pytest.raises(ModelClosed):
        remote.chat(HELLO, sampling(4))
    assert remote.clear_context() is True
    assert remote.count_tokens("hello") is None


def test_server_figures_are_used_when_sent(proxied: RemoteModel, proxy: FaultProxy) -> None:
    # llama-server's last chunks, added to the real stream: timings, then usage.
    timings = {"cache_n": 2, "prompt_n": 9, "prompt_ms": 4.5, "predicted_n": 8, "predicted_ms": 20.0,
               "predicted_per_second": 400.0, "draft_n": 6, "draft_n_accepted": 3}
    final = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 8, "total_tokens": 19},
             "timings": timings, "id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    proxy.reset(Fault(extra_events=(b"data: " + json.dumps(final).encode() + b"\n\n",)))
    last = list(proxied.chat(HELLO, sampling(8)))[-1]
    assert isinstance(last, Finished)
    stats = last.stats
    assert (stats.prompt_tokens, stats.prompt_evaluated, stats.generated_tokens) == (11, 9, 8)
    assert (stats.llama_eval_tokens, stats.llama_eval_seconds, stats.prompt_seconds) == (8, 0.02, 0.0045)
    assert (stats.drafted_tokens, stats.accepted_tokens, stats.acceptance_rate) == (6, 3, 0.5)  # speculative decoding
    assert stats.context_used == 19 == proxied.context_used
    assert proxied.capabilities.exact_figures is True
    assert proxied.last_server_timings == timings


def test_thinking_is_passed_through_apart(proxied: RemoteModel, proxy: FaultProxy) -> None:
    thinking = {"choices": [{"index": 0, "delta": {"reasoning_content": "Let me think."}, "finish_reason": None}],
                "id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    proxy.reset(Fault(malformed_after=1, malformed=b"data: " + json.dumps(thinking).encode() + b"\n\n"))
    events = list(proxied.chat(HELLO, sampling(6)))
    kinds = [type(e) for e in events]
    assert kinds[0] is ThinkingDelta and events[0].text == "Let me think."  # type: ignore[union-attr]
    assert kinds[1:-1] == [TextDelta] * (len(events) - 2) and kinds[-1] is Finished
    assert "Let me think." not in events[-1].text  # type: ignore[union-attr]


def test_prompt_progress_is_passed_on(proxied: RemoteModel, proxy: FaultProxy) -> None:
    progress = {"choices": [], "prompt_progress": {"total": 40, "cache": 10, "processed": 40, "time_ms": 5.0},
                "id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    proxy.reset(Fault(malformed_after=1, malformed=b"data: " + json.dumps(progress).encode() + b"\n\n"))
    events = list(proxied.chat(HELLO, sampling(4)))
    first = events[0]
    assert isinstance(first, PromptProgress)
    assert (first.done, first.total) == (30, 30)


# -- cancelling ----------------------------------------------------------------------------

def test_cancel_mid_stream_ends_at_once_and_closes_the_connection(proxied: RemoteModel, proxy: FaultProxy) -> None:
    # The proxy passes ~4 events of the reply, then holds the connection for 60 s: only a
    # cancel that closes the stream lets this test end.
    proxy.reset(Fault(stall_after=1000, hold=60))
    stream = proxied.chat(HELLO, sampling(64))
    first = next(stream)
    assert isinstance(first, TextDelta)
    timer = threading.Timer(0.2, proxied.cancel)  # from another thread, while next() waits
    timer.start()
    thread, out = in_thread(lambda: list(stream))
    rest = finish(thread, out)
    events = [first, *rest]
    last = events[-1]
    assert isinstance(last, Finished) and last.reason == StopReason.CANCELLED
    assert last.text == texts(events[:-1])
    assert all(isinstance(e, TextDelta) for e in events[:-1])
    assert proxy.faulted()[0].client_closed.wait(FAILSAFE)


def test_cancel_while_waiting_for_the_first_byte(proxied: RemoteModel, proxy: FaultProxy) -> None:
    proxy.reset(Fault(delay=60))  # a server too slow to answer
    thread, out = in_thread(lambda: list(proxied.chat(HELLO, sampling(8))))
    assert proxy.request_seen.wait(FAILSAFE)
    proxied.cancel()
    events = finish(thread, out)
    assert len(events) == 1
    assert isinstance(events[0], Finished) and events[0].reason == StopReason.CANCELLED and events[0].text == ""
    assert proxy.faulted()[0].client_closed.wait(FAILSAFE)
    # The model is free again at once.
    proxy.reset()
    assert isinstance(list(proxied.chat(HELLO, sampling(4)))[-1], Finished)


def test_cancel_while_connecting(blackholed_port: int) -> None:
    # The connect to a blackholed port would wait out its timeout (120 s here, longer than the
    # failsafe): the iterator ends only because a cancel does not wait for the connection.
    info = ServerInfo(f"http://127.0.0.1:{blackholed_port}/v1", "openai-compatible", ())
    model = RemoteModel(info, ServerModel("m"), None, 0, timeout_connect=120)
    try:
        thread, out = in_thread(lambda: list(model.chat(HELLO, sampling(8))))
        time.sleep(0.5)  # not a threshold: a cancel that comes sooner must end it as well
        model.cancel()
        events = finish(thread, out)
        assert [type(e) for e in events] == [Finished]
        assert events[0].reason == StopReason.CANCELLED
    finally:
        model.close()


def test_cancel_before_the_first_read_sends_nothing(proxied: RemoteModel, proxy: FaultProxy) -> None:
    stream = proxied.chat(HELLO, sampling(8))
    proxied.cancel()
    events = list(stream)
    assert [type(e) for e in events] == [Finished]
    assert events[0].reason == StopReason.CANCELLED  # type: ignore[union-attr]
    assert proxy.faulted() == []


# -- failures ------------------------------------------------------------------------------

def test_drop_mid_reply_keeps_the_text(proxied: RemoteModel, proxy: FaultProxy) -> None:
    proxy.reset(Fault(drop_after=1000))
    events: list[GenerationEvent] = []
    with pytest.raises(ConnectionDropped) as caught:
        events.extend(proxied.chat(HELLO, sampling(64)))  # keeps what came before the error
    assert events and all(isinstance(e, TextDelta) for e in events)
    assert caught.value.partial_text == texts(events)
    assert "dropped mid-reply" in str(caught.value) and "text so far is kept" in str(caught.value)


def test_connection_closed_before_answering(proxied: RemoteModel, proxy: FaultProxy) -> None:
    proxy.reset(Fault(close_at_once=True))
    with pytest.raises(ServerUnreachable) as caught:
        list(proxied.chat(HELLO, sampling(8)))
    assert "closed the connection without answering" in str(caught.value)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key(proxied: RemoteModel, proxy: FaultProxy, status: int) -> None:
    proxy.reset(Fault(status=status, body={"error": {"message": "Invalid API Key", "type": "authentication_error"}}))
    with pytest.raises(ServerRefused) as caught:
        list(proxied.chat(HELLO, sampling(8)))
    assert f"{status}: Invalid API Key" in str(caught.value)
    assert "api_key_env" in str(caught.value)
    assert len(proxy.faulted()) == 1  # no retry


def test_rate_limited_says_to_wait(proxied: RemoteModel, proxy: FaultProxy) -> None:
    proxy.reset(Fault(status=429, body={"error": {"message": "Too many requests"}}, headers={"Retry-After": "7"}))
    with pytest.raises(ServerRateLimited) as caught:
        list(proxied.chat(HELLO, sampling(8)))
    assert "Too many requests" in str(caught.value)
    assert "Wait" in str(caught.value) and "7 s" in str(caught.value)
    assert len(proxy.faulted()) == 1  # no retry


def test_server_error_quotes_the_server(proxied: RemoteModel, proxy: FaultProxy) -> None:
    proxy.reset(Fault(status=500, body={"error": {"message": "CUDA out of memory", "code": 500}}))
    with pytest.raises(ServerFailed) as caught:
        list(proxied.chat(HELLO, sampling(8)))
    assert "500: CUDA out of memory" in str(caught.value)
    assert len(proxy.faulted()) == 1  # no retry


def test_malformed_stream_data(proxied: RemoteModel, proxy: FaultProxy) -> None:
    # The role event, one token, a broken line, then the connection held open: the client
    # must close it (or the server would go on generating for no one).
    proxy.reset(Fault(malformed_after=2, stall_after=0, hold=60))
    events: list[GenerationEvent] = []
    with pytest.raises(BadStreamData) as caught:
        events.extend(proxied.chat(HELLO, sampling(16)))  # keeps what came before the error
    assert [type(e) for e in events] == [TextDelta]
    assert caught.value.partial_text == texts(events)
    assert "not the API's" in str(caught.value)
    assert proxy.faulted()[0].client_closed.wait(FAILSAFE)


def test_error_event_inside_the_stream(proxied: RemoteModel, proxy: FaultProxy) -> None:
    # llama-server reports a failure after the 200 as an event of its own.
    error = {"error": {"code": 500, "message": "llama_decode failed", "type": "server_error"}}
    proxy.reset(Fault(malformed_after=2, malformed=b"data: " + json.dumps(error).encode() + b"\n\n"))
    events: list[GenerationEvent] = []
    with pytest.raises(ServerFailed) as caught:
        events.extend(proxied.chat(HELLO, sampling(16)))  # keeps what came before the error
    assert [type(e) for e in events] == [TextDelta]
    assert "llama_decode failed" in str(caught.value) and "text so far is kept" in str(caught.value)
    assert caught.value.partial_text == texts(events)


def test_unknown_model_when_chatting(proxied: RemoteModel, proxy: FaultProxy) -> None:
    # e.g. the model was unloaded from the server since it was opened (vLLM and OpenAI say 404)
    proxy.reset(Fault(status=404, body={"error": {"message": "The model `x` does not exist.",
                                                  "code": "model_not_found"}}))
    with pytest.raises(UnknownModel) as caught:
        list(proxied.chat(HELLO, sampling(4)))
    assert "does not exist" in str(caught.value)
    assert isinstance(caught.value, PromptError)


def test_server_without_completions(proxied: RemoteModel, proxy: FaultProxy) -> None:
    proxy.reset(Fault(status=404, body={"detail": "Not Found"}, paths=("/v1/completions",)))
    with pytest.raises(NoCompletion) as caught:
        list(proxied.complete("Once", sampling(4)))
    assert "/v1/completions" in str(caught.value)
    assert proxied.capabilities.completion is False
    with pytest.raises(NoCompletion):  # now said at once
        proxied.complete("Once", sampling(4))
    assert len(proxy.faulted()) == 1


def test_prompt_longer_than_the_context(remote: RemoteModel) -> None:
    # llama-cpp-python's server answers 200, then ends the stream with no event at all (its
    # log has the ValueError): said as such, not as a reply.
    with pytest.raises(ConnectionDropped) as caught:
        list(remote.chat([ChatMessage("user", "word " * 700)], sampling(8)))
    assert "before any text" in str(caught.value)
    assert caught.value.partial_text == ""


def test_a_server_that_refuses_stream_options_is_asked_again_without(proxied: RemoteModel,
                                                                     proxy: FaultProxy) -> None:
    proxied._send_stream_options = True  # as for any server but llama-cpp-python's (which ignores them)
    proxy.reset(Fault(status=400, body={"error": {"message": "Unknown field: stream_options"}}, times=1))
    last = list(proxied.chat(HELLO, sampling(4)))[-1]
    assert isinstance(last, Finished) and last.reason == StopReason.LENGTH
    first, second = (s.json() for s in proxy.faulted())
    assert first["stream_options"] == {"include_usage": True}
    assert "stream_options" not in second
    list(proxied.chat(HELLO, sampling(4)))
    assert "stream_options" not in proxy.faulted()[-1].json()  # remembered


def test_rejected_request_is_a_prompt_error(proxied: RemoteModel, proxy: FaultProxy) -> None:
    message = "the request exceeds the available context size, try increasing it"
    proxy.reset(Fault(status=400, body={"error": {"code": 400, "message": message,
                                                  "type": "exceed_context_size_error"}}))
    with pytest.raises(ServerRejected) as caught:
        list(proxied.chat(HELLO, sampling(4)))
    assert message in str(caught.value)
    assert isinstance(caught.value, PromptError)


def exceed_context(n_prompt: int, n_ctx: int) -> dict[str, Any]:
    """llama-server's answer to a prompt longer than its context."""
    return {"error": {"code": 400, "type": "exceed_context_size_error", "n_prompt_tokens": n_prompt, "n_ctx": n_ctx,
                      "message": "the request exceeds the available context size, try increasing it"}}


LONG_CHAT = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "one " * 50), ChatMessage("assistant", "first answer " * 20),
    ChatMessage("user", "two " * 50), ChatMessage("assistant", "second answer " * 20),
    ChatMessage("user", "three"),
]


def test_a_chat_too_long_for_the_context_drops_the_oldest_exchanges(proxied: RemoteModel, proxy: FaultProxy) -> None:
    # The server says the prompt is 1000 tokens for a context of 800: about a fifth of the
    # text, plus room for the reply, must go: the first exchange (about half the text) does.
    proxy.reset(Fault(status=400, body=exceed_context(1000, 800), times=1))
    events = list(proxied.chat(LONG_CHAT, sampling(4)))
    assert isinstance(events[0], TurnsDropped) and events[0].messages == 2
    assert isinstance(events[-1], Finished) and events[-1].reason == StopReason.LENGTH
    rejected, sent = (s.json()["messages"] for s in proxy.faulted())
    assert len(rejected) == 6
    assert [m["content"] for m in sent] == [m.content for m in (LONG_CHAT[0], *LONG_CHAT[3:])]


def test_a_message_too_long_for_the_context_alone(proxied: RemoteModel, proxy: FaultProxy) -> None:
    proxy.reset(Fault(status=400, body=exceed_context(5000, 800)))  # however short it gets
    events: list[GenerationEvent] = []
    with pytest.raises(ServerRejected) as caught:
        events.extend(proxied.chat(LONG_CHAT, sampling(4)))  # keeps what came before the error
    assert sum(e.messages for e in events if isinstance(e, TurnsDropped)) == 4
    assert "exceeds the available context size" in str(caught.value)
    assert [len(s.json()["messages"]) for s in proxy.faulted()] == [6, 2]  # the system prompt and the last


def test_context_exceeded_is_read_from_what_servers_say() -> None:
    assert context_exceeded(exceed_context(900, 512), "") == (900, 512)
    vllm = "This model's maximum context length is 2048 tokens. However, you requested 2300 tokens."
    assert context_exceeded({"message": vllm, "type": "BadRequestError"}, vllm) is True
    assert context_exceeded({"error": {"code": "context_length_exceeded"}}, "") is True
    assert context_exceeded({"error": {"message": "temperature must be >= 0"}}, "temperature must be >= 0") is False


def test_drop_more_keeps_exchanges_whole() -> None:
    turns = LONG_CHAT[1:]
    assert drop_more(turns, 0, 9, True, 256) == 2  # one exchange when the server does not say by how much
    assert drop_more(turns, 2, 9, True, 256) == 4
    assert drop_more(turns, 4, 9, True, 256) is None  # only the last message is left
    assert drop_more(turns, 0, 9, (5000, 800), 256) == 4  # far too long: all but the last at once
    lone = [ChatMessage("user", "a"), ChatMessage("user", "b")]
    assert drop_more(lone, 0, 0, True, 256) == 1


# -- llama.cpp's own llama-server (only when LLAMA_TUI_LLAMA_SERVER names its binary) ----------

def test_llama_server_figures_context_and_tokens(llama_cpp_server: RunningServer) -> None:
    model = RemoteModel.open(llama_cpp_server.endpoint)
    try:
        assert model.server_kind == "llama.cpp"
        assert model.name == "tiny-remote.gguf"
        assert model.context_size == llama_cpp_server.n_ctx and "from the server's /props" in model.description
        assert model.capabilities.exact_figures is True
        events = list(model.chat([ChatMessage("system", "Be brief."), *HELLO], sampling(12), seed=5))
        assert isinstance(events[0], PromptProgress)  # return_progress is sent to llama-server
        last = events[-1]
        assert isinstance(last, Finished) and last.reason == StopReason.LENGTH
        stats = last.stats
        assert stats.generated_tokens == stats.llama_eval_tokens == 12  # its own counts
        assert stats.prompt_tokens > 0 and stats.prompt_seconds > 0
        assert stats.context_used == stats.prompt_tokens + 12 == model.context_used
        timings = model.last_server_timings
        assert timings is not None and timings["predicted_n"] == 12
        again = list(model.chat([ChatMessage("system", "Be brief."), *HELLO], sampling(12), seed=5))[-1]
        assert isinstance(again, Finished) and again.text == last.text
        completion = list(model.complete("Once upon a time", sampling(6)))[-1]
        assert isinstance(completion, Finished) and completion.stats.generated_tokens == 6
        assert model.count_tokens("hello world") == 10  # the same tokenizer as llama-cpp-python's
    finally:
        model.close()


def test_llama_server_fits_a_long_chat(llama_cpp_server: RunningServer) -> None:
    model = RemoteModel.open(llama_cpp_server.endpoint)
    try:
        chat = [ChatMessage("system", "Be brief.")]
        for _ in range(6):  # ~100 tokens an exchange, 6 of them in a context of 512
            chat += [ChatMessage("user", "a " * 50), ChatMessage("assistant", "b " * 50)]
        events = list(model.chat([*chat, ChatMessage("user", "last")], sampling(4)))
        dropped = sum(e.messages for e in events if isinstance(e, TurnsDropped))
        assert 0 < dropped < 12 and dropped % 2 == 0
        assert isinstance(events[-1], Finished)
        with pytest.raises(ServerRejected):
            list(model.chat([ChatMessage("user", "word " * 600)], sampling(4)))
    finally:
        model.close()


# -- API keys ------------------------------------------------------------------------------

def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)  # as if not installed
    monkeypatch.setenv("MY_SERVER_KEY", " sk-123 ")
    assert secrets.read_api_key("http://h/v1", "MY_SERVER_KEY") == "sk-123"
    assert secrets.read_api_key("http://h/v1", "UNSET_VARIABLE_FOR_TEST") is None
    assert secrets.store_api_key("http://h/v1", "sk-123") is False  # no keyring: nothing kept


def test_api_key_in_the_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    kept: dict[tuple[str, str], str] = {}
    fake = types.ModuleType("keyring")
    fake.get_password = lambda service, user: kept.get((service, user))  # type: ignore[attr-defined]
    fake.set_password = lambda service, user, key: kept.__setitem__((service, user), key)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keyring", fake)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert secrets.store_api_key("http://h/v1", "sk-9") is True
    assert secrets.read_api_key("http://h/v1", None) == "sk-9"
    assert secrets.read_api_key("http://other/v1", None) is None
    assert list(tmp_path.iterdir()) == []  # never written to a file
