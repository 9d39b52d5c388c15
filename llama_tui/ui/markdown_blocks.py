"""Markdown for the transcript: finding a text's top-level blocks, and rendering one block
into lines with Rich, in the colours of the app's Textual theme. Used by MarkdownView, which
renders each finished block once; nothing here keeps state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import CodeBlock, Heading, ListItem, Markdown
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.theme import Theme
from textual.color import Color, ColorParseError

# No reference definitions: each block is rendered on its own, so `[text][ref]` could not be
# applied anyway, and a "[ref]: url" line taken as a definition would show nothing at all.
# No HTML either: Rich draws an HTML block as nothing, so `<think>`, `<div>` or `<b>` a model
# writes would vanish; as text, they show as written.
_PARSER = (
    MarkdownIt("commonmark").enable("strikethrough").enable("table")
    .disable(["reference", "html_block", "html_inline"])
)

@dataclass(frozen=True)
class Block:
    """One top-level Markdown block: a paragraph, heading, list, code block, table..."""

    start: int
    """Offset of the block's first character in the text it came from."""
    source: str
    kind: str
    """markdown-it's name for it: "paragraph", "heading", "bullet_list", "fence"..."""


def split_blocks(source: str) -> list[Block]:
    """The top-level Markdown blocks of `source`; blank lines between blocks belong to none."""
    # Lines end at "\n" only, as markdown-it counts them (str.splitlines would also split at
    # U+2028 and U+2029 and cut text out of the wrong place).
    lines = [line + "\n" for line in source.split("\n")]
    lines[-1] = lines[-1][:-1]
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    blocks = []
    for token in _PARSER.parse(source):
        if token.level == 0 and token.nesting >= 0 and token.map is not None:
            first, last = token.map
            blocks.append(Block(starts[first], "".join(lines[first:last]), token.type.removesuffix("_open")))
    return blocks


class _LeftHeading(Heading):
    """Rich centres level-1 headings; in a chat reply every heading starts at the left."""

    LEVEL_ALIGN: ClassVar = {f"h{level}": "left" for level in range(1, 7)}


@functools.lru_cache(maxsize=64)
def _lexer(name: str) -> Lexer | str:
    """Pygments takes a millisecond or two to find a lexer; a code block being written is
    rendered again on every drain, so each lexer is looked up once."""
    try:
        return get_lexer_by_name(name)
    except ClassNotFound:
        return "text"


_syntax_theme = functools.lru_cache(maxsize=8)(Syntax.get_theme)


class _CodeBlock(CodeBlock):
    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        code = str(self.text).rstrip()
        # No padding at the sides (Rich pads with 1), so code selected and copied from the
        # screen has its own indentation and nothing more.
        yield Syntax(code, _lexer(self.lexer_name), theme=_syntax_theme(self.theme), word_wrap=True, padding=(1, 0))


class _ListItem(ListItem):
    def render_number(self, console: Console, options: ConsoleOptions, number: int, last_number: int) -> RenderResult:
        """"1." rather than Rich's "1": the way the model wrote it, and the way readers expect."""
        width = len(str(last_number)) + 3
        lines = console.render_lines(self.elements, options.update(width=options.max_width - width), style=self.style)
        number_style = console.get_style("markdown.item.number", default="none")
        numeral = Segment(f"{number}.".rjust(width - 1) + " ", number_style)
        padding = Segment(" " * width, number_style)
        for index, line in enumerate(lines):
            yield numeral if index == 0 else padding
            yield from line
            yield Segment.line()


class _ReplyMarkdown(Markdown):
    elements: ClassVar = {
        **Markdown.elements,
        "heading_open": _LeftHeading,
        "fence": _CodeBlock,
        "code_block": _CodeBlock,
        "list_item_open": _ListItem,
    }

    def __init__(self, markup: str, code_theme: str) -> None:
        # Rich's own __init__ builds a new markdown-it parser for each text (half a
        # millisecond); the attributes are set as it sets them, with one shared parser.
        self.markup = markup
        self.parsed = _PARSER.parse(markup)
        _keep_line_breaks(self.parsed)
        self.code_theme = self.inline_code_theme = code_theme
        self.justify = None
        self.style = "none"
        self.hyperlinks = False  # a link shows as "text (url)": terminals differ on clicking
        self.inline_code_lexer = None


def _keep_line_breaks(tokens: list[Token]) -> None:
    """A line break in a paragraph stays one, as chat apps show it: small models write code and
    lists without Markdown's markup, and CommonMark would join their lines into one."""
    for token in tokens:
        for child in token.children or ():
            if child.type == "softbreak":
                child.type = "hardbreak"


def markdown_theme(variables: dict[str, str]) -> Theme:
    """Rich's Markdown styles in the colours of the app's Textual theme. One Theme per set
    of colours, shared by every reply (Rich only reads it)."""

    def colour(name: str, fallback: str) -> str:
        # Theme variables may be "transparent" or "ansi_default 50%", which Rich cannot take.
        try:
            parsed = Color.parse(variables.get(name, fallback))
        except ColorParseError:
            return fallback
        return parsed.hex6 if parsed.a > 0 else fallback

    return _markdown_theme(
        colour("primary", "cyan"), colour("accent", "magenta"), colour("secondary", "blue"),
        colour("foreground-muted", "grey50"), colour("surface", "black"),
    )


@functools.lru_cache(maxsize=8)
def _markdown_theme(primary: str, accent: str, secondary: str, muted: str, code_background: str) -> Theme:
    return Theme({
        "markdown.h1": Style.parse(f"bold underline {primary}"),
        "markdown.h2": Style.parse(f"bold {primary}"),
        "markdown.h3": Style.parse(f"bold {accent}"),
        "markdown.h4": Style.parse(f"italic {accent}"),
        "markdown.h5": Style.parse("italic"),
        "markdown.h6": Style.parse("dim"),
        "markdown.code": Style.parse(f"bold {accent} on {code_background}"),
        "markdown.code_block": Style.parse(f"on {code_background}"),
        "markdown.block_quote": Style.parse(f"italic {muted}"),
        "markdown.item.bullet": Style.parse(f"bold {primary}"),
        "markdown.item.number": Style.parse(f"{primary}"),
        "markdown.link": Style.parse(f"underline {secondary}"),
        "markdown.link_url": Style.parse(f"{muted}"),
        "markdown.table.border": Style.parse(f"{muted}"),
        "markdown.table.header": Style.parse(f"bold {primary}"),
        "markdown.hr": Style.parse(f"{muted}"),
    })


def _is_blank(line: list[Segment]) -> bool:
    """No text and no background: a code block's padding line has a background and stays."""
    return all(not segment.text.strip() and not (segment.style and segment.style.bgcolor) for segment in line)


def render_block(console: Console, source: str, width: int, theme: Theme, *, dark: bool) -> list[list[Segment]]:
    """One block's lines at `width`, without the blank lines Rich puts before lists and
    quotes and after rules (the caller puts exactly one between blocks)."""
    markdown = _ReplyMarkdown(source, "monokai" if dark else "default")
    console.push_theme(theme)
    try:
        rendered = console.render_lines(markdown, console.options.update_width(width), pad=False)
    finally:
        console.pop_theme()
    while rendered and _is_blank(rendered[0]):
        rendered.pop(0)
    while rendered and _is_blank(rendered[-1]):
        rendered.pop()
    return rendered


def code_blocks(source: str) -> list[str]:
    """The code of every fenced or indented code block in `source`, in order."""
    return [token.content for token in _PARSER.parse(source) if token.type in ("fence", "code_block")]
