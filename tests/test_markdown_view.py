"""MarkdownView: a reply's Markdown in one widget, finished blocks rendered once."""

from __future__ import annotations

from collections import Counter

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.selection import Selection

from llama_tui.ui import markdown_blocks
from llama_tui.ui.markdown_blocks import split_blocks
from llama_tui.ui.markdown_view import MarkdownView

DOCUMENT = """# Python string methods

Some **bold**, *italic*, `inline code` and a [link](https://example.com).

## 1. `upper()`

- Returns the string in capitals
- The original is unchanged
  - nested item

```python
name = "ada"

print(name.upper())  # ADA
```

1. first
2. second

> a quote

| method | returns |
|--------|---------|
| upper  | str     |

---
A last paragraph, long enough to wrap around the width of the widget at least once or twice.
"""


class ViewApp(App[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield MarkdownView(id="streamed")


def test_split_blocks_finds_each_top_level_block_and_where_it_starts() -> None:
    blocks = split_blocks(DOCUMENT)
    assert [block.kind for block in blocks] == [
        "heading", "paragraph", "heading", "bullet_list", "fence", "ordered_list", "blockquote", "table", "hr",
        "paragraph",
    ]
    for block in blocks:
        assert DOCUMENT[block.start:].startswith(block.source)
    fence = blocks[4]
    assert "\n\nprint" in fence.source  # a blank line inside a code block does not split it


def test_an_unclosed_code_block_runs_to_the_end() -> None:
    blocks = split_blocks("Intro\n\n```python\nx = 1\n\ny = 2\n")
    assert [block.kind for block in blocks] == ["paragraph", "fence"]


@pytest.mark.parametrize("piece", [1, 7, 50])
async def test_streamed_in_pieces_it_shows_what_the_whole_text_shows(piece: int) -> None:
    app = ViewApp()
    async with app.run_test(size=(70, 60)) as pilot:
        streamed = app.query_one("#streamed", MarkdownView)
        for start in range(0, len(DOCUMENT), piece):
            streamed.append(DOCUMENT[start:start + piece])
            if start % (piece * 10) == 0:
                await pilot.pause()
        whole = MarkdownView(DOCUMENT)
        await app.query_one(VerticalScroll).mount(whole)
        await pilot.pause()
        assert streamed.text == DOCUMENT
        assert streamed.size.height == whole.size.height > 20
        shown = [line.rstrip() for line in streamed._lines.plain]
        assert shown == [line.rstrip() for line in whole._lines.plain]
        # Markdown is rendered, not shown as source; text with brackets stays as written.
        assert "Python string methods" in shown[0] and "#" not in shown[0]
        assert any("link (https://example.com)" in line for line in shown)
        assert any(line.strip().startswith("•") for line in shown)
        assert any(line.strip() == "1. first" for line in shown)  # numbered as written
        assert not any("```" in line for line in shown)


TRICKY_STREAMS = [
    # A line's start can look like a new block and then join the one before it.
    "Steps:\n\n1. **Install** the package.\n\n2. **Run** it.\n\n3. Done.\n",
    "Issue\n#42 is fixed\n\nNext.\n",
    "Note\n***important*** stuff\n\nNext.\n",
    "1. Do:\n\n   ```sh\n   ls\n   ```\n\n2. Then\n",
    "Title\n---\n\n- a\n\n- b\n",
    "Line one\u2028line two\n\nSecond paragraph\n",
]


@pytest.mark.parametrize("document", TRICKY_STREAMS)
async def test_streamed_one_character_at_a_time_it_matches_the_whole_text(document: str) -> None:
    app = ViewApp()
    async with app.run_test(size=(70, 40)) as pilot:
        streamed = app.query_one("#streamed", MarkdownView)
        await pilot.pause()
        for character in document:
            streamed.append(character)
        whole = MarkdownView(document)
        await app.query_one(VerticalScroll).mount(whole)
        await pilot.pause()
        assert streamed._lines.plain == whole._lines.plain


def test_split_blocks_cuts_lines_only_at_newlines() -> None:
    blocks = split_blocks("Line one\u2028line two\n\nSecond paragraph\n")
    assert [block.source for block in blocks] == ["Line one\u2028line two\n", "Second paragraph\n"]


async def test_each_finished_block_is_rendered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the block being written is rendered again as text arrives; that is the speed-up.
    A block's final text is rendered once, whether it was last seen being written or not."""
    renders: Counter[str] = Counter()
    original = MarkdownView._render_block

    def counting(self: MarkdownView, source: str):
        renders[source] += 1
        return original(self, source)

    monkeypatch.setattr(MarkdownView, "_render_block", counting)
    app = ViewApp()
    async with app.run_test(size=(70, 60)) as pilot:
        view = app.query_one("#streamed", MarkdownView)
        await pilot.pause()
        for start in range(0, len(DOCUMENT), 5):
            view.append(DOCUMENT[start:start + 5])
        blocks = split_blocks(DOCUMENT)
        for block in blocks[:-1]:
            assert renders[block.source] == 1, block.source
        assert sum(renders.values()) < len(blocks) + len(DOCUMENT) // 5 + 1


async def test_a_new_width_renders_every_block_again() -> None:
    app = ViewApp()
    async with app.run_test(size=(100, 60)) as pilot:
        view = app.query_one("#streamed", MarkdownView)
        view.append(DOCUMENT)
        await pilot.pause()
        wide_height = view.size.height
        await pilot.resize_terminal(40, 60)
        await pilot.pause()
        assert view.size.width <= 40
        assert view.size.height > wide_height  # the paragraphs wrap into more lines
        assert all(len(line) <= view.size.width for line in view._lines.plain)


async def test_a_selection_copies_the_text_as_shown() -> None:
    app = ViewApp()
    async with app.run_test(size=(100, 60)) as pilot:
        view = app.query_one("#streamed", MarkdownView)
        view.append("First paragraph.\n\n- one\n- two\n")
        await pilot.pause()
        extracted = view.get_selection(Selection(None, None))
        assert extracted is not None
        text, _ending = extracted
        assert "First paragraph." in text and "• one" in text and "• two" in text


async def test_a_finished_text_is_drawn_the_same_without_caching_its_lines() -> None:
    """While the text grows, lines as drawn are cached (every drain relays the widget out);
    once it is finished they are not: Textual keeps what it shows, and a finished reply
    should not keep a second copy of each line for as long as the chat lasts."""
    app = ViewApp()
    async with app.run_test(size=(70, 60)) as pilot:
        view = app.query_one("#streamed", MarkdownView)
        view.append(DOCUMENT)
        await pilot.pause()
        assert view._line_cache
        before = app.export_screenshot()
        view.finish()
        view.refresh()
        await pilot.pause()
        assert view._line_cache == {}
        assert app.export_screenshot() == before
        view.append("\nMore text.\n")  # a finished text can still grow
        await pilot.pause()
        assert view._line_cache and view.text.endswith("More text.\n")


def test_theme_colours_that_rich_cannot_read_fall_back() -> None:
    theme = markdown_blocks.markdown_theme(
        {"primary": "#0178D4", "surface": "transparent", "accent": "ansi_default 50%"}
    )
    assert theme.styles["markdown.h1"].color is not None
    assert str(theme.styles["markdown.h1"].color.name).lower() == "#0178d4"


def test_replies_in_the_same_colours_share_one_theme() -> None:
    """Each reply asks for the theme; one Theme per set of colours, not one per reply."""
    colours = {"primary": "#0178D4", "accent": "#FFA62B", "surface": "#1E1E1E"}
    first = markdown_blocks.markdown_theme(dict(colours))
    assert markdown_blocks.markdown_theme(dict(colours)) is first
    assert markdown_blocks.markdown_theme({**colours, "primary": "#FF0000"}) is not first


class ReplyApp(App[None]):
    def compose(self) -> ComposeResult:
        yield MarkdownView("Here is the code:\n\n```python\ndef f():\n    return 1\n```\n\nDone.\n")


async def test_code_dragged_over_with_the_mouse_copies_with_its_own_indentation() -> None:
    app = ReplyApp()
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(MarkdownView)
        await pilot.pause()
        first_code_line = view._lines.plain.index("def f():")
        await pilot.mouse_down(view, offset=(0, first_code_line))
        await pilot.hover(view, offset=(5, first_code_line + 1))
        await pilot.hover(view, offset=(12, first_code_line + 1))
        await pilot.mouse_up(view, offset=(12, first_code_line + 1))
        await pilot.pause()
        assert app.screen.get_selected_text() == "def f():\n    return 1"


async def test_reference_style_links_are_not_applied() -> None:
    """README: "(Reference-style link definitions, `[text][ref]` with `[ref]: url` elsewhere,
    are not applied.)": the reference stays as written, not a link."""
    app = ViewApp()
    async with app.run_test(size=(80, 30)) as pilot:
        view = app.query_one("#streamed", MarkdownView)
        view.append("See [the docs][ref] and [inline](https://e.com).\n\n[ref]: https://example.com/docs\n")
        await pilot.pause()
        shown = "\n".join(view._lines.plain)
        assert "See [the docs][ref] and inline (https://e.com)." in shown  # the inline link is applied


async def test_a_reference_style_link_definition_keeps_its_url_on_screen() -> None:
    app = ViewApp()
    async with app.run_test(size=(80, 30)) as pilot:
        view = app.query_one("#streamed", MarkdownView)
        view.append("See [the docs][ref].\n\n[ref]: https://example.com/docs\n")
        await pilot.pause()
        assert "https://example.com/docs" in "\n".join(view._lines.plain)


async def test_a_line_break_in_a_reply_is_kept() -> None:
    """Small models write code and lists without Markdown's markup: their lines stay lines."""
    app = ViewApp()
    async with app.run_test(size=(80, 30)) as pilot:
        view = app.query_one("#streamed", MarkdownView)
        view.append("def add(a, b):\n    return a + b\nThat adds them.\n")
        await pilot.pause()
        shown = [line.rstrip() for line in view._lines.plain]
        assert shown[:3] == ["def add(a, b):", "return a + b", "That adds them."]
