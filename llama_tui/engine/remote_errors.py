"""What can go wrong with a model server, as exceptions whose message is for the user.

The `openai` client raises its own types (a connection error, a status error per HTTP code,
an APIError for an error sent inside a stream) and the JSON decoder raises on malformed
stream data; `open_error` and `reply_error` turn each into one of ours, naming the server,
quoting the server's own message, and saying what to do. A reply that fails part way keeps
its text: the exception carries it (`partial_text`) and the events already yielded stand.
"""

from __future__ import annotations

import json

import httpx2
import openai

from llama_tui.engine.backend import GenerationError, PromptError
from llama_tui.engine.events import GenerationStats
from llama_tui.engine.model import ModelLoadError

KEY_HINT = (
    "Set the key in the environment variable named by the api_key_env setting "
    "(or type it once to keep it in the keyring)."
)


class RemoteOpenError(ModelLoadError):
    """The server model could not be opened: unreachable, refused, no such model... A
    ModelLoadError, so the app reports it wherever it reports a file that would not load."""


class RemoteReplyError(GenerationError):
    """A reply from a server failed; the text streamed before the failure is kept."""

    def __init__(self, message: str, partial_text: str = "", stats: GenerationStats | None = None) -> None:
        super().__init__(message)
        self.partial_text = partial_text
        self.stats = stats


class ServerUnreachable(RemoteReplyError):
    """No connection could be made, or the server closed it before answering."""


class ServerRefused(RemoteReplyError):
    """401 or 403: the API key is missing, wrong, or not allowed this."""


class ServerRateLimited(RemoteReplyError):
    """429: too many requests; wait and send again."""


class ServerFailed(RemoteReplyError):
    """A 5xx answer (or another status we have no better word for), or an error event
    sent inside the stream."""


class ConnectionDropped(RemoteReplyError):
    """The connection ended in the middle of the reply."""


class BadStreamData(RemoteReplyError):
    """The server sent stream data that is not what the API says (not JSON, no choices)."""


class UnknownModel(PromptError):
    """The server does not have the model asked for."""


class NoCompletion(PromptError):
    """The server has no /v1/completions (raw text continuation)."""


class ServerRejected(PromptError):
    """400/413/422: the server would not take this request (e.g. longer than its context)."""

    def __init__(self, message: str, body: object = None) -> None:
        super().__init__(message)
        self.body = body
        """The server's JSON error body, which may say why (llama-server: n_prompt_tokens, n_ctx)."""


def server_message(error: openai.APIStatusError | openai.APIError) -> str:
    """The server's own words: error.message or detail of an OpenAI-style or FastAPI-style
    JSON body, else the start of the body's text."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(inner.get(key), str) and inner[key]:
                    return str(inner[key])
        if isinstance(inner, str) and inner:
            return inner
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if detail is not None:
            return json.dumps(detail)[:300]
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    if isinstance(error, openai.APIStatusError):
        try:
            text = error.response.text.strip()
        except httpx2.ResponseNotRead:  # a streamed answer whose body was not read
            text = ""
        if text:
            return text[:300]
    return error.message


def connection_reason(error: BaseException) -> str:
    """Why a connection failed, in a few words, from the transport error under openai's."""
    cause = error.__cause__ or error.__context__ or error
    if isinstance(cause, httpx2.ConnectTimeout):
        return "no answer to the connection request (a firewall, or the wrong address?)"
    if isinstance(cause, httpx2.ReadTimeout):
        return "it accepted the connection but sent no answer in time"
    if isinstance(cause, httpx2.ConnectError):
        text = str(cause)
        if "refused" in text.lower():
            return "connection refused (is the server running, on this port?)"
        if "name" in text.lower() and ("resolution" in text.lower() or "known" in text.lower()):
            return f"the host name could not be resolved ({text})"
        return text or type(cause).__name__
    if isinstance(cause, httpx2.RemoteProtocolError):
        return str(cause) or "the server closed the connection"
    return str(cause) or type(cause).__name__


def _retry_after(error: openai.APIStatusError) -> str:
    value = error.response.headers.get("retry-after")
    return f" The server asks to wait {value} s." if value else ""


def open_error(error: Exception, host: str, what: str = "list its models") -> RemoteOpenError:
    """An error from opening (listing models, probing) as a RemoteOpenError."""
    if isinstance(error, openai.APITimeoutError) and not isinstance(error.__cause__, httpx2.ConnectTimeout):
        return RemoteOpenError(f"The server at {host} did not answer in time: {connection_reason(error)}.")
    if isinstance(error, openai.APIConnectionError):
        return RemoteOpenError(f"Cannot reach the server at {host}: {connection_reason(error)}.")
    if isinstance(error, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return RemoteOpenError(
            f"The server at {host} refused the API key ({error.status_code}: {server_message(error)}). {KEY_HINT}"
        )
    if isinstance(error, openai.RateLimitError):
        return RemoteOpenError(
            f"The server at {host} is rate limiting (429: {server_message(error)}). Wait a moment and try again."
            + _retry_after(error)
        )
    if isinstance(error, openai.NotFoundError):
        return RemoteOpenError(
            f"{host} answered 404 when asked to {what}: this URL is not an OpenAI-compatible API "
            "(its address usually ends in /v1)."
        )
    if isinstance(error, openai.APIStatusError):
        return RemoteOpenError(f"The server at {host} failed to {what} ({error.status_code}: {server_message(error)}).")
    return RemoteOpenError(f"The server at {host} sent an answer that is not the API's: {error}")


def reply_error(
    error: Exception, host: str, model_id: str, partial_text: str, stats: GenerationStats | None
) -> Exception:
    """An error while streaming a reply as one of ours; `partial_text` is what was shown."""
    started = bool(partial_text)
    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        reason = connection_reason(error)
        if started:
            return ConnectionDropped(
                f"The connection to {host} dropped mid-reply ({reason}); the text so far is kept.", partial_text, stats
            )
        if isinstance(error.__cause__, (httpx2.ConnectError, httpx2.ConnectTimeout)):
            return ServerUnreachable(f"Cannot reach the server at {host}: {reason}.", partial_text, stats)
        return ServerUnreachable(f"The server at {host} closed the connection without answering ({reason}).",
                                 partial_text, stats)
    if isinstance(error, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return ServerRefused(
            f"The server at {host} refused the API key ({error.status_code}: {server_message(error)}). {KEY_HINT}",
            partial_text, stats,
        )
    if isinstance(error, openai.RateLimitError):
        return ServerRateLimited(
            f"The server at {host} is rate limiting (429: {server_message(error)}). Wait a moment, then send again."
            + _retry_after(error), partial_text, stats,
        )
    if isinstance(error, openai.NotFoundError):
        message = server_message(error)
        return UnknownModel(
            f"The server at {host} has no model {model_id!r}, or no such API at this address (404: {message})."
        )
    if isinstance(error, (openai.BadRequestError, openai.UnprocessableEntityError)) or (
        isinstance(error, openai.APIStatusError) and error.status_code == 413
    ):
        assert isinstance(error, openai.APIStatusError)
        return ServerRejected(f"The server at {host} would not take this request ({error.status_code}: "
                              f"{server_message(error)}).", error.body)
    if isinstance(error, openai.APIStatusError):
        return ServerFailed(f"The server at {host} failed ({error.status_code}: {server_message(error)}).",
                            partial_text, stats)
    if isinstance(error, openai.APIError):  # an error event inside the stream
        where = "mid-reply; the text so far is kept" if started else "before replying"
        return ServerFailed(f"The server at {host} reported an error {where}: {server_message(error)}",
                            partial_text, stats)
    if isinstance(error, (ValueError, TypeError, AttributeError, IndexError, KeyError)):
        # json.JSONDecodeError is a ValueError; the others come from JSON of the wrong shape
        kept = "; the text so far is kept" if started else ""
        return BadStreamData(f"The server at {host} sent stream data that is not the API's ({error}){kept}.",
                             partial_text, stats)
    return error
