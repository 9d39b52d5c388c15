"""Talking to an OpenAI-compatible server outside a reply: its address, the HTTP clients,
its models, which server it is and what it says about itself (context size, tokenizer).

Which server it is decides what may be sent: llama.cpp-family servers take top_k, min_p and
repeat_penalty (vLLM calls the last repetition_penalty); OpenAI itself rejects fields it
does not know, so other servers get the standard ones only. It is found cheaply once, at
open: llama-server answers GET /props; the others say it in /v1/models' owned_by
("vllm"; "me" for llama-cpp-python's server), and Ollama answers GET /api/version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx2
import openai

from llama_tui.engine.model_ref import normalize_endpoint as _normalize
from llama_tui.engine.remote_errors import RemoteOpenError, open_error

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to connect, and for a short call (list models, /props) to answer: an unreachable
server is reported within a few seconds."""

NO_KEY = "no-key"
"""Sent as the bearer token when no key is given: the openai client needs one, and a server
without keys ignores it. Passing it also stops the client reading OPENAI_API_KEY, a key
meant for OpenAI, and sending it to whatever server this is."""

ServerKind = Literal["llama.cpp", "llama-cpp-python", "vllm", "ollama", "openai-compatible"]

ALL_SAMPLING = frozenset({"temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_reply_tokens"})
STANDARD_SAMPLING = frozenset({"temperature", "top_p", "max_reply_tokens"})
SAMPLING_BY_KIND: dict[ServerKind, frozenset[str]] = {
    "llama.cpp": ALL_SAMPLING,
    "llama-cpp-python": ALL_SAMPLING,
    "vllm": ALL_SAMPLING,
    "ollama": STANDARD_SAMPLING,  # its /v1 API ignores top_k/min_p (only its native API has them)
    "openai-compatible": STANDARD_SAMPLING,
}
SEEDED_KINDS: frozenset[ServerKind] = frozenset({"llama.cpp", "llama-cpp-python", "vllm", "ollama"})
"""Servers where the same seed gives the same reply (OpenAI's own seed is best effort)."""


@dataclass(frozen=True)
class ServerModel:
    id: str
    owned_by: str = ""
    context_size: int = 0
    """From the listing when the server puts it there (vLLM's max_model_len, llama-server's
    meta.n_ctx), else 0."""


@dataclass(frozen=True)
class ServerInfo:
    endpoint: str
    kind: ServerKind
    models: tuple[ServerModel, ...]
    context_size: int = 0
    """Tokens the server's context holds, as the server says; 0 when it does not say."""
    context_source: str = ""
    """Where context_size came from: "/props", "model listing", or "" (the server does not say)."""
    model_alias: str = ""
    """llama-server's name for its model (/props model_alias), when it has one."""


def normalize_endpoint(url: str) -> str:
    """model_ref.normalize_endpoint, failing with RemoteOpenError."""
    try:
        return _normalize(url)
    except ValueError as error:
        raise RemoteOpenError(str(error)) from None


def root_url(endpoint: str) -> str:
    """The server's root, where llama-server has /props and /tokenize: the endpoint less /v1."""
    return endpoint.removesuffix("/v1")


def host_label(endpoint: str) -> str:
    """host:port, for messages."""
    return urlsplit(endpoint).netloc or endpoint


def short_timeout(connect: float) -> httpx2.Timeout:
    """For calls that answer at once (models, /props, tokenize): a few seconds for everything."""
    return httpx2.Timeout(connect, connect=connect)


def stream_timeout(connect: float) -> httpx2.Timeout:
    """For a reply: a short connect, then no read timeout, since the user may wait minutes
    for a long prompt or a slow model and stops it with Esc (cancel) instead."""
    return httpx2.Timeout(None, connect=connect, pool=connect)


def make_http_client(
    timeout: httpx2.Timeout, *, keep_alive: bool = True,
    on_request: Callable[[httpx2.Request], None] | None = None,
) -> httpx2.Client:
    limits = httpx2.Limits(max_connections=8, max_keepalive_connections=8 if keep_alive else 0)
    hooks: dict[str, list[Callable[[httpx2.Request], None]]] = {"request": [on_request]} if on_request else {}
    return httpx2.Client(timeout=timeout, limits=limits, follow_redirects=True, event_hooks=hooks)


def make_api(endpoint: str, api_key: str | None, http: httpx2.Client) -> openai.OpenAI:
    """An openai client on `http`, with no retries: a chat request is never sent twice
    behind the user's back, and an unreachable server is reported at once."""
    return openai.OpenAI(base_url=endpoint, api_key=api_key or NO_KEY, max_retries=0, timeout=http.timeout,
                         http_client=http)


def list_models(endpoint: str, api_key: str | None = None, *,
                timeout_connect: float = DEFAULT_CONNECT_TIMEOUT) -> list[str]:
    """The ids of the models the server lists (for the picker). Raises RemoteOpenError."""
    endpoint = normalize_endpoint(endpoint)
    with make_http_client(short_timeout(timeout_connect)) as http:
        return [m.id for m in fetch_models(make_api(endpoint, api_key, http), endpoint)]


def fetch_models(api: openai.OpenAI, endpoint: str) -> list[ServerModel]:
    try:
        page = api.models.list()
        items = list(page.data)
    except openai.OpenAIError as error:
        raise open_error(error, host_label(endpoint)) from error
    except (ValueError, TypeError, AttributeError) as error:  # not JSON, or not a model list
        raise RemoteOpenError(f"{host_label(endpoint)} did not answer /models with a model list ({error}).") from error
    models = []
    for item in items:
        extra: dict[str, Any] = item.model_extra or {}
        # vLLM says max_model_len; llama-server says meta.n_ctx (its /props says it too)
        meta = extra.get("meta")
        context = extra.get("max_model_len") or (meta.get("n_ctx") if isinstance(meta, dict) else None)
        models.append(ServerModel(str(item.id), str(getattr(item, "owned_by", "") or ""),
                                  context if isinstance(context, int) and context > 0 else 0))
    return models


def choose_model(models: Sequence[ServerModel], model_id: str | None, host: str) -> ServerModel:
    """The model asked for, or the only one; a RemoteOpenError listing the ids otherwise."""
    ids = [m.id for m in models]
    listed = ", ".join(ids) if ids else "none"
    if model_id:
        for model in models:
            if model.id == model_id:
                return model
        raise RemoteOpenError(f"The server at {host} has no model {model_id!r}. It has: {listed}.")
    if len(models) == 1:
        return models[0]
    if not models:
        raise RemoteOpenError(f"The server at {host} lists no models.")
    raise RemoteOpenError(f"The server at {host} has {len(models)} models; choose one (--model): {listed}.")


def _get_json(http: httpx2.Client, url: str, headers: dict[str, str]) -> dict[str, Any] | None:
    """A GET that may well not exist on this server: its JSON object, or None."""
    try:
        response = http.get(url, headers=headers)
        if response.status_code != 200:
            return None
        data = response.json()
    except (httpx2.HTTPError, ValueError) as error:
        log.debug("GET %s: %s", url, error)
        return None
    return data if isinstance(data, dict) else None


def probe_server(http: httpx2.Client, endpoint: str, api_key: str | None, models: Sequence[ServerModel],
                 model: ServerModel) -> ServerInfo:
    """Which server this is and the context size it says, from GET /props (llama-server),
    the listing's owned_by, max_model_len and meta.n_ctx, and GET /api/version (Ollama)."""
    headers = {"Authorization": f"Bearer {api_key or NO_KEY}"}
    root = root_url(endpoint)
    props = _get_json(http, root + "/props", headers)
    if props is not None and isinstance(props.get("default_generation_settings"), dict):
        settings = props["default_generation_settings"]
        n_ctx = settings.get("n_ctx", props.get("n_ctx"))
        alias = props.get("model_alias")
        alias = alias if isinstance(alias, str) else ""
        if isinstance(n_ctx, int) and n_ctx > 0:  # per slot: with --parallel N, the Nth of -c
            return ServerInfo(endpoint, "llama.cpp", tuple(models), n_ctx, "/props", alias)
        source = "model listing" if model.context_size else ""
        return ServerInfo(endpoint, "llama.cpp", tuple(models), model.context_size, source, alias)
    kind: ServerKind = "openai-compatible"
    if model.owned_by == "vllm":
        kind = "vllm"
    elif model.owned_by == "me":  # llama-cpp-python's server says exactly this
        kind = "llama-cpp-python"
    elif "version" in (_get_json(http, root + "/api/version", headers) or {}):
        kind = "ollama"
    if model.context_size:
        return ServerInfo(endpoint, kind, tuple(models), model.context_size, "model listing")
    return ServerInfo(endpoint, kind, tuple(models))
