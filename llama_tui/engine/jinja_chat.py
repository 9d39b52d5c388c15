"""Rendering a chat template with Jinja, as llama.cpp's own server renders it.

One rule in one place: the template worker (for templates from model files) and trusted
in-process rendering (built-in templates) both use these functions, so a prompt is the same
text wherever it is made. The environment is llama-cpp-python's Jinja2ChatFormatter's,
which itself follows Transformers: sandboxed and immutable, trim_blocks and lstrip_blocks,
loop controls, a `{% generation %}` tag that is ignored, Transformers' `tojson`, and the
globals `raise_exception` and `strftime_now`. One difference that changes no output: no
constant folding (see make_environment).

Where llama.cpp's server (common/chat.cpp and its Jinja engine) renders more templates
than Jinja2ChatFormatter, we do as it does, because model makers test their templates
against it:
- The variables it passes: `enable_thinking` (true unless thinking is switched off; many
  templates close the thinking block in the prompt when it is missing), `datetime` and
  `date_string` (today), and no `tools` at all when there are none. Jinja2ChatFormatter
  passes `tools=None`, on which the tool-use templates (Hermes, Command R+) fail in
  `{% for tool in tools %}`.
- Undefined values as its engine treats them: iterating one is an empty loop, an
  attribute of one is undefined too, and adding one to a string adds nothing
  (firefunction-v2 adds the undefined `functions` to its system prompt).
- A template that refuses a system message (Gemma 2: "System role not supported"), or
  silently drops it, gets the system prompt at the start of the first user message.

No llama_cpp import here: the worker process imports this module and must start fast.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

import jinja2
import jinja2.ext
import jinja2.parser
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateRaised(ValueError):
    """The template called raise_exception(message); str() is the template's own message.

    A ValueError, as in Jinja2ChatFormatter, so code that caught that still catches this.
    """


class OutputTooLarge(Exception):
    """The template produced more text than the limit it was rendered with."""


class _IgnoreGenerationTags(jinja2.ext.Extension):
    """Hugging Face's `{% generation %}...{% endgeneration %}` marks assistant text for
    training masks; for a prompt only its content counts."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> list[nodes.Node]:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _tojson(
    x: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Transformers' tojson: no HTML escaping (Jinja's own escapes <, >, & and '). An
    # undefined value is null, as in llama.cpp (`{% if tools is not none %}{{ tools | tojson }}`
    # with no tools).
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys,
                      default=_undefined_as_null)


def _undefined_as_null(value: Any) -> None:
    if isinstance(value, jinja2.Undefined):
        return None
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _raise_exception(message: str) -> NoReturn:
    raise TemplateRaised(message)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


class _LenientUndefined(jinja2.ChainableUndefined):
    """An undefined value as llama.cpp's Jinja engine treats one: empty in loops and
    strings, undefined again for attributes and items (ChainableUndefined), and nothing
    when added to a string."""

    def __add__(self, other: Any) -> Any:
        if isinstance(other, str):
            return other
        return super().__add__(other)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, str):
            return other
        return super().__radd__(other)


@jinja2.pass_eval_context
def _finalize_at_render_time(eval_ctx: EvalContext, value: Any) -> Any:
    """Leaves values as they are, but as a finalize that takes the evaluation context it
    stops Jinja from computing `{{ 'x ' * 50000000 }}` while compiling. Folded, that runs
    before any limit on the output can see it, and then Python compiles a 100 MB literal
    (seconds, and hundreds of MB). Unfolded, the same work is done while rendering, where
    the output limit stops it at once. (optimized=False does the same for the rest of a
    template.) The text is the same either way."""
    return value


class _Environment(ImmutableSandboxedEnvironment):
    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # The sandbox's own answer is an undefined value that raises when used; with
        # lenient undefined values it would quietly print nothing. A template reaching
        # for an unsafe attribute is up to no good: fail at once, naming it.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe.")


def make_environment() -> ImmutableSandboxedEnvironment:
    """A Jinja environment with Jinja2ChatFormatter's options, extensions and filters,
    and llama.cpp's lenient undefined values."""
    environment = _Environment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_IgnoreGenerationTags, jinja2.ext.loopcontrols],
        undefined=_LenientUndefined,
        # No constant folding (see _finalize_at_render_time).
        optimized=False,
        finalize=_finalize_at_render_time,
    )
    environment.filters["tojson"] = _tojson
    return environment


_environment: ImmutableSandboxedEnvironment | None = None


def compile_template(source: str) -> jinja2.Template:
    """Compile a template (raises jinja2.TemplateSyntaxError). Compiling costs far more
    than rendering, so callers that render one template often keep the result."""
    global _environment
    if _environment is None:
        _environment = make_environment()
    return _environment.from_string(source)


def render_compiled(
    template: jinja2.Template,
    messages: Sequence[Mapping[str, Any]],
    *,
    bos_token: str,
    eos_token: str,
    add_generation_prompt: bool = True,
    enable_thinking: bool = True,
    max_chars: int | None = None,
) -> str:
    """The prompt text. With `max_chars`, stops with OutputTooLarge as soon as the text
    would be longer, rather than after building all of it.

    A template that fails, or leaves out, a leading system message is rendered once more
    with the system prompt moved into the first user message (as llama.cpp does for a
    template without a system role); if that fails too, the first error is raised.
    """
    now = datetime.now()
    # llama.cpp's variables (common_chat_template_direct_apply and
    # common_chat_extra_context); `tools` is left undefined, as there are none.
    variables: dict[str, Any] = {
        "bos_token": bos_token,
        "eos_token": eos_token,
        "add_generation_prompt": add_generation_prompt,
        "enable_thinking": enable_thinking,
        "datetime": now.strftime("%b %d %Y"),
        "date_string": now.strftime("%d %b %Y"),
        "raise_exception": _raise_exception,
        "strftime_now": _strftime_now,
    }
    merged = _system_in_first_user_message(messages)
    try:
        text = _generate(template, messages, variables, max_chars)
    except (OutputTooLarge, MemoryError, RecursionError):
        raise
    except Exception:
        if merged is None:
            raise
        try:
            return _generate(template, merged, variables, max_chars)
        except Exception:  # noqa: BLE001 - the retry's error would hide the first one
            pass
        raise  # the first error: it names what the template refused
    if merged is not None and not _system_prompt_kept(text, messages):
        again = _generate(template, merged, variables, max_chars)
        if _system_prompt_kept(again, messages):
            return again
    return text


def _generate(
    template: jinja2.Template, messages: Sequence[Mapping[str, Any]], variables: dict[str, Any], max_chars: int | None
) -> str:
    pieces: Iterable[str] = template.generate(messages=messages, **variables)
    if max_chars is None:
        return "".join(pieces)
    kept: list[str] = []
    size = 0
    for piece in pieces:
        size += len(piece)
        if size > max_chars:
            raise OutputTooLarge(f"more than {max_chars} characters")
        kept.append(piece)
    return "".join(kept)


@functools.lru_cache(maxsize=8)
def _compiled(source: str) -> jinja2.Template:
    """The built-in templates are rendered every turn: compile each once (compiling costs
    more than rendering)."""
    return compile_template(source)


def _system_in_first_user_message(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]] | None:
    """The messages with a leading system message joined to the user message after it,
    or None when there is no such pair. (llama.cpp joins them with one newline; two, as in
    Google's own Gemma 3 template, keep the system prompt a paragraph of its own.)"""
    if len(messages) < 2 or messages[0].get("role") != "system" or messages[1].get("role") != "user":
        return None
    system, first = messages[0].get("content"), messages[1].get("content")
    if not isinstance(system, str) or not isinstance(first, str):
        return None
    return [{**messages[1], "content": f"{system}\n\n{first}" if system.strip() else first}, *messages[2:]]


def _system_prompt_kept(text: str, messages: Sequence[Mapping[str, Any]]) -> bool:
    system = str(messages[0].get("content", "")).strip()
    return not system or system in text


def render_chat(
    source: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    bos_token: str,
    eos_token: str,
    add_generation_prompt: bool = True,
    enable_thinking: bool = True,
) -> str:
    """Render a trusted template in this process (a template from a model file goes through
    template_sandbox.TemplateSandbox instead)."""
    return render_compiled(
        _compiled(source),
        messages,
        bos_token=bos_token,
        eos_token=eos_token,
        add_generation_prompt=add_generation_prompt,
        enable_thinking=enable_thinking,
    )
