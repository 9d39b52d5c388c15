"""A reply's Markdown as one widget whose finished blocks are rendered once.

Textual's `Markdown` widget makes a widget per block, list item and bullet (about 60 for a
screenful of reply). Every time a streaming reply grows, Textual restyles, lays out and
repaints that tree, which cost 25 ms of UI time per drain and 12% of the decode speed on a
2-core machine (docs/benchmarks.md). This widget holds the text instead, splits it into
top-level Markdown blocks, and renders each block with Rich into lines once it can no
longer change: only the block still being written is rendered again on each drain. Lines
are drawn through the line API, so while the text grows a repaint copies cached strips.
(Reference-style link definitions are not applied: each block is rendered on its own.)

Rendered lines are kept as segments, not Strips: a Strip keeps every strip derived from it
(cropped, styled, with offsets) in its own caches, about 1 KiB each, so Strips made from the
kept lines would keep ~4 strips per line of every reply for good. Once the text is finished
(`finish`) the lines as drawn are not cached here either; Textual keeps the lines it shows,
and a line it asks for again is cut from the rendered segments (the Markdown is not
rendered again). bench/memory_per_turn.py measures what a turn keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from rich.theme import Theme
from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

from llama_tui.ui.markdown_blocks import markdown_theme, render_block, split_blocks

OPEN_BLOCKS = 2
"""The last blocks of a growing text are still open to change. Two, not one: the start of a
line can look like a new block and then join the one before it as more text arrives ("2"
becomes "2. Second", the next item of a list; "#" becomes "#42 is fixed", a paragraph's
second line)."""


@dataclass
class _RenderedLines:
    segments: list[list[Segment]] = field(default_factory=list)
    """Each line's segments (made into a Strip only to be drawn)."""
    plain: list[str] = field(default_factory=list)
    """Each line's text, for selections."""

    def extend(self, other: _RenderedLines, *, gap: bool) -> None:
        if gap and self.segments and other.segments:  # one blank line between blocks
            self.segments.append([])
            self.plain.append("")
        self.segments.extend(other.segments)
        self.plain.extend(other.plain)


class MarkdownView(Widget):
    """Markdown text that grows at the end (`append`) and renders in lines, with an optional
    footer line of plain text under it (`set_footer`)."""

    COMPONENT_CLASSES = {"markdown-view--footer", "markdown-view--header"}
    DEFAULT_CSS = """
    MarkdownView {
        height: auto;
    }
    MarkdownView > .markdown-view--footer {
        color: $text-muted;
    }
    MarkdownView > .markdown-view--header {
        color: $text-muted;
        text-style: italic;
    }
    """

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = ""
        self._settled_upto = 0
        """Where the text still open to change starts: all blocks before it are final."""
        self._settled_sources: list[str] = []
        self._open_sources: list[str] = []
        """The last OPEN_BLOCKS blocks, which later text may still change."""
        self._width = 0
        self._settled = _RenderedLines()
        """The final blocks, rendered at `_width`."""
        self._lines = _RenderedLines()
        """Everything: the final blocks, then the block still being written."""
        self._line_cache: dict[int, Strip] = {}
        """Lines as drawn: cropped, styled and with offsets for selections; only while the
        text may grow (each drain relays out the widget, and Textual asks for every line)."""
        self._finished = False
        self._line_style: Style | None = None
        self._theme: Theme | None = None
        self._open_rendered: dict[str, _RenderedLines] = {}
        """The open blocks as last rendered: usually only the last one changes, and each
        becomes final as it stands."""
        self.footer_text = ""
        self.header_text = ""
        self._header = _RenderedLines()
        """The header rendered at `_width`: lines of plain text above the Markdown."""
        if text:
            self.append(text)

    @property
    def text(self) -> str:
        return self._text

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._render_all())

    def on_unmount(self) -> None:
        # The signal holds the view (its callback refers to it) until the theme next
        # changes: a new chat would otherwise keep every reply of the old one in memory.
        self.app.theme_changed_signal.unsubscribe(self)

    # -- the text ------------------------------------------------------------------------

    def append(self, fragment: str) -> None:
        """Add text at the end; blocks that can no longer change are rendered for good."""
        if not fragment:
            return
        self._finished = False
        self._text += fragment
        blocks = split_blocks(self._text[self._settled_upto:])
        settling = [block.source for block in blocks[:-OPEN_BLOCKS]]
        if settling:
            self._settled_upto += blocks[-OPEN_BLOCKS].start
            self._settled_sources.extend(settling)
        self._open_sources = [block.source for block in blocks[-OPEN_BLOCKS:]]
        if not self._width:  # not laid out yet: everything renders once the width is known
            self.refresh(layout=True)
            return
        changed_from = len(self._settled.segments)
        for source in settling:
            self._settled.extend(self._render_once(source), gap=True)
        self._show(changed_from)

    def set_header(self, text: str) -> None:
        """Lines of plain text above the Markdown (a reasoning model's thinking); "" for none."""
        if text == self.header_text:
            return
        self.header_text = text
        self._header = self._render_plain(text, "markdown-view--header") if text and self._width else _RenderedLines()
        self._show(0)

    def set_footer(self, text: str) -> None:
        """A line of plain text under the Markdown (wrapped when long); "" for none."""
        self.footer_text = text
        self._show(len(self._settled.segments))

    def finish(self) -> None:
        """The text is complete (until any further `append`): stop caching lines as drawn."""
        self._finished = True
        self._line_cache.clear()

    # -- rendering -----------------------------------------------------------------------

    def _render_all(self) -> None:
        """Render every block again: the width or the theme changed."""
        self._theme = None
        self._open_rendered = {}
        self._settled = _RenderedLines()
        for source in self._settled_sources:
            self._settled.extend(self._render_block(source), gap=True)
        header = self.header_text
        self._header = self._render_plain(header, "markdown-view--header") if header else _RenderedLines()
        self._line_cache.clear()
        self._line_style = None
        self._show(0)

    def _show(self, changed_from: int) -> None:
        """Put the open blocks after the final ones and repaint from line `changed_from`:
        the lines above it are unchanged, and a new layout is needed only for a new height."""
        header = len(self._header.segments)
        if header:  # lines below it move with it: repaint them all (only replies that think have one)
            changed_from = 0
        lines = _RenderedLines(list(self._header.segments), list(self._header.plain))
        lines.extend(_RenderedLines(list(self._settled.segments), list(self._settled.plain)), gap=bool(header))
        if self._width:
            for source in self._open_sources:
                lines.extend(self._render_once(source), gap=True)
            self._open_rendered = {s: r for s, r in self._open_rendered.items() if s in self._open_sources}
        if self.footer_text and self._width:
            lines.extend(self._render_footer(), gap=False)
        old_height, new_height = len(self._lines.segments), len(lines.segments)
        self._lines = lines
        for y in [y for y in self._line_cache if y >= changed_from]:
            del self._line_cache[y]
        if new_height != old_height:
            self.refresh(layout=True)
        elif self._width:
            self.refresh(Region(0, changed_from, self._width, max(new_height - changed_from, 0)))

    def _render_once(self, source: str) -> _RenderedLines:
        """Render a block, unless it was rendered as it stands while it was open."""
        rendered = self._open_rendered.get(source)
        if rendered is None:
            rendered = self._open_rendered[source] = self._render_block(source)
        return rendered

    def _render_footer(self) -> _RenderedLines:
        return self._render_plain(self.footer_text, "markdown-view--footer")

    def _render_plain(self, plain: str, component: str) -> _RenderedLines:
        text = Text(plain, style=self.get_component_rich_style(component))
        rendered = self.app.console.render_lines(text, self.app.console.options.update_width(self._width), pad=False)
        return _RenderedLines(rendered, ["".join(s.text for s in line).rstrip() for line in rendered])

    def _render_block(self, source: str) -> _RenderedLines:
        if self._theme is None:
            self._theme = markdown_theme(self.app.get_css_variables())
        rendered = render_block(self.app.console, source, self._width, self._theme, dark=self.app.current_theme.dark)
        return _RenderedLines(
            [list(Segment.simplify(line)) for line in rendered],
            # Rich pads lines with spaces to the width; a copied line ends where its text does.
            ["".join(segment.text for segment in line).rstrip() for line in rendered],
        )

    def _ensure_width(self, width: int) -> None:
        if width != self._width and width > 0:
            self._width = width
            self._render_all()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._ensure_width(width)
        return len(self._lines.segments)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._line_cache.clear()
        self._line_style = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        self._ensure_width(width)
        selection = self.text_selection
        if selection is None and (cached := self._line_cache.get(y)) is not None:
            return cached
        if self._line_style is None:
            self._line_style = self.rich_style
        style = self._line_style
        if y >= len(self._lines.segments):
            return Strip.blank(width, style)
        # A new Strip each time: the strips made on the way are freed with it.
        strip = Strip(self._lines.segments[y])
        if selection is not None and (span := selection.get_span(y)) is not None:
            strip = self._highlight(strip, self._lines.plain[y], span)
        strip = strip.crop_extend(0, width, style).apply_style(style).apply_offsets(0, y)
        if selection is None and not self._finished:
            self._line_cache[y] = strip
        return strip

    def _highlight(self, strip: Strip, plain: str, span: tuple[int, int]) -> Strip:
        start, end = span
        if end == -1:
            end = len(plain)
        first, last = cell_len(plain[:start]), cell_len(plain[:end])
        if first >= last:
            return strip
        before, selected, after = strip.divide([first, last, strip.cell_length])
        selection_style = self.screen.get_component_rich_style("screen--selection")
        return Strip.join([before, selected.apply_style(selection_style), after])

    # -- selection -----------------------------------------------------------------------

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract("\n".join(self._lines.plain)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self._line_cache.clear()
        self.refresh()
