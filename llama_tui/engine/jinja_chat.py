"""Rendering a chat template with Jinja the way llama-cpp-python's Jinja2ChatFormatter does.

One rule in one place: the template worker (for templates from model files) and trusted
in-process rendering (built-in templates) both use these functions, so a prompt is the same
text wherever it is made. The environment matches Jinja2ChatFormatter, which itself follows
Transformers: sandboxed and immutable, trim_blocks and lstrip_blocks, loop controls, a
`{% generation %}` tag that is ignored, Transformers' `tojson`, and the globals
`raise_exception` and `strftime_now`. One difference that changes no output: no constant
folding (see make_environment).

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
    # Transformers' tojson: no HTML escaping (Jinja's own escapes <, >, & and ').
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str) -> NoReturn:
    raise TemplateRaised(message)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


@jinja2.pass_eval_context
def _finalize_at_render_time(eval_ctx: EvalContext, value: Any) -> Any:
    """Leaves values as they are, but as a finalize that takes the evaluation context it
    stops Jinja from computing `{{ 'x ' * 50000000 }}` while compiling. Folded, that runs
    before any limit on the output can see it, and then Python compiles a 100 MB literal
    (seconds, and hundreds of MB). Unfolded, the same work is done while rendering, where
    the output limit stops it at once. (optimized=False does the same for the rest of a
    template.) The text is the same either way."""
    return value


def make_environment() -> ImmutableSandboxedEnvironment:
    """A Jinja environment with Jinja2ChatFormatter's options, extensions and filters."""
    environment = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_IgnoreGenerationTags, jinja2.ext.loopcontrols],
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
    max_chars: int | None = None,
) -> str:
    """The prompt text. With `max_chars`, stops with OutputTooLarge as soon as the text
    would be longer, rather than after building all of it."""
    # The same variables Jinja2ChatFormatter passes; templates test `tools is none` etc.
    pieces: Iterable[str] = template.generate(
        messages=messages,
        eos_token=eos_token,
        bos_token=bos_token,
        raise_exception=_raise_exception,
        add_generation_prompt=add_generation_prompt,
        functions=None,
        function_call=None,
        tools=None,
        tool_choice=None,
        strftime_now=_strftime_now,
    )
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
    """The built-in templates are rendered every turn: compile each once."""
    return compile_template(source)


def render_chat(
    source: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    bos_token: str,
    eos_token: str,
    add_generation_prompt: bool = True,
) -> str:
    """Render a trusted template in this process (a template from a model file goes through
    template_sandbox.TemplateSandbox instead)."""
    return render_compiled(
        _compiled(source),
        messages,
        bos_token=bos_token,
        eos_token=eos_token,
        add_generation_prompt=add_generation_prompt,
    )
