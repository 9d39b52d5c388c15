"""Thinking apart from the answer: finding the markers, and splitting a reply as it streams."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from llama_tui.engine.thinking import (
    Piece,
    ThinkingMarkers,
    ThinkingSplitter,
    has_thinking_switch,
    split_text,
    starts_thinking,
    strip_thinking,
    thinking_markers,
)


def markers_of(template: str) -> ThinkingMarkers:
    markers = thinking_markers(template)
    assert markers is not None, template
    return markers


THINK = markers_of("{{ '<think>' }}…{{ '</think>' }}")

# One template snippet per style, as the real templates write them.
GPT_OSS = markers_of("<|start|>assistant<|channel|>analysis<|message|>{{ m.thinking }}<|end|>")
GEMMA_4 = markers_of("<|channel>thought\n{{ t }}<channel|>")
COHERE = markers_of("<|START_THINKING|>{{ t }}<|END_THINKING|><|START_RESPONSE|>")
MISTRAL = markers_of("[THINK]{{ t }}[/THINK]")
SEED = markers_of("<seed:think>{{ t }}</seed:think>")
MINIMAX = markers_of("{%- set think_begin_token = '<mm:think>' -%}{%- set think_end_token = '</mm:think>' -%}")
GRANITE = markers_of("Write your thoughts between <think></think> and your response between <response></response>.")
SOLAR = markers_of("<|begin|>assistant<|think|>{{ r }}<|end|><|begin|>assistant<|content|>")
APRIEL = markers_of("'Here are my reasoning steps:\\n' … '[BEGIN FINAL RESPONSE]'")


def merged(pieces: Iterable[Piece]) -> list[Piece]:
    """Adjacent pieces of one kind joined: how pieces split is the deltas' business."""
    out: list[Piece] = []
    for piece in pieces:
        if out and out[-1].kind == piece.kind:
            out[-1] = Piece(piece.kind, out[-1].text + piece.text)
        elif piece.text:
            out.append(piece)
    return out


def run(deltas: Sequence[str], markers: ThinkingMarkers | None, opened: bool = False) -> list[Piece]:
    splitter = ThinkingSplitter(markers, opened_in_prompt=opened)
    pieces: list[Piece] = []
    for delta in deltas:
        pieces += splitter.feed(delta)
    return merged(pieces + splitter.finish())


# (markers, opened in the prompt, the reply as the model writes it, the thinking, the answer)
REPLIES = [
    pytest.param(THINK, False, "<think>\nThe user asks about France.\n</think>\n\nParis.",
                 "The user asks about France.", "Paris.", id="think"),
    pytest.param(THINK, True, "The user asks about France.\n</think>\n\nParis.",
                 "The user asks about France.", "Paris.", id="think-opened-in-prompt"),
    pytest.param(THINK, True, "<think>\nAgain.\n</think>\n\nParis.", "Again.", "Paris.", id="think-opened-twice"),
    pytest.param(THINK, False, "<think>\n\n</think>\n\nParis.", "", "Paris.", id="think-empty"),
    pytest.param(THINK, False, "<think>I write <think> and <b>bold</b> here.</think>Paris.",
                 "I write <think> and <b>bold</b> here.", "Paris.", id="think-mentioned-inside"),
    pytest.param(GPT_OSS, False,
                 "<|channel|>analysis<|message|>Simple question.<|end|>"
                 "<|start|>assistant<|channel|>final<|message|>Paris.",
                 "Simple question.", "Paris.", id="gpt-oss"),
    pytest.param(GPT_OSS, False, "<|channel|>final<|message|>Paris.", "", "Paris.", id="gpt-oss-no-analysis"),
    pytest.param(GEMMA_4, False, "<|channel>thought\nSimple.<channel|>Paris.", "Simple.", "Paris.", id="gemma-4"),
    pytest.param(COHERE, False, "<|START_THINKING|>Simple.<|END_THINKING|><|START_RESPONSE|>Paris.",
                 "Simple.", "Paris.", id="cohere"),
    pytest.param(COHERE, True, "Simple.<|END_THINKING|><|START_RESPONSE|>Paris.", "Simple.", "Paris.",
                 id="cohere-opened-in-prompt"),
    pytest.param(MISTRAL, False, "[THINK]Simple.[/THINK]Paris.", "Simple.", "Paris.", id="mistral"),
    pytest.param(SEED, False, "<seed:think>Simple.</seed:think>\nParis.", "Simple.", "Paris.", id="seed"),
    pytest.param(MINIMAX, False, "<mm:think>Simple.</mm:think>Paris.", "Simple.", "Paris.", id="minimax"),
    pytest.param(GRANITE, False, "<think>Simple.</think><response>Paris.</response>", "Simple.", "Paris.",
                 id="granite"),
    pytest.param(GRANITE, False, "<think>a</think>\n<response>\nUse </response> tags.\n</response>\n", "a",
                 "Use </response> tags.", id="granite-suffix-inside"),
    pytest.param(SOLAR, False, "<|think|>Simple.<|end|><|begin|>assistant<|content|>Paris.", "Simple.", "Paris.",
                 id="solar"),
    pytest.param(SOLAR, False, "<|content|>Paris.", "", "Paris.", id="solar-no-thinking"),
    pytest.param(APRIEL, True, "1. France.\n[BEGIN FINAL RESPONSE]\nParis.", "1. France.", "Paris.", id="apriel"),
    pytest.param(THINK, False, "Paris. In code:\n```html\n<think>x</think>\n```\nand `</think>` inline.", "",
                 "Paris. In code:\n```html\n<think>x</think>\n```\nand `</think>` inline.",
                 id="answer-mentions-markers"),
    pytest.param(THINK, False, "<thinking aloud> is not a marker", "", "<thinking aloud> is not a marker",
                 id="looks-like-a-marker"),
    pytest.param(THINK, False, "  \n Paris.", "", "  \n Paris.", id="no-thinking-keeps-leading-space"),
    pytest.param(None, False, "<think>x</think> Paris.", "", "<think>x</think> Paris.", id="no-markers"),
    pytest.param(THINK, False, " \n", "", " \n", id="only-whitespace"),
    pytest.param(THINK, False, "<thi", "", "<thi", id="ends-in-a-partial-marker"),
]


def expected_pieces(thinking: str, answer: str) -> list[Piece]:
    return merged([Piece("thinking", thinking), Piece("answer", answer)])


@pytest.mark.parametrize("markers, opened, reply, thinking, answer", REPLIES)
def test_every_split_of_a_reply_gives_the_same_pieces(
    markers: ThinkingMarkers | None, opened: bool, reply: str, thinking: str, answer: str
) -> None:
    expected = expected_pieces(thinking, answer)
    assert run([reply], markers, opened) == expected
    assert run(list(reply), markers, opened) == expected, "one character at a time"
    for at in range(len(reply) + 1):
        assert run([reply[:at], reply[at:]], markers, opened) == expected, f"split at {at}: {reply[:at]!r}"
    assert split_text(reply, markers, opened_in_prompt=opened) == (thinking, answer)


@pytest.mark.parametrize("markers, opened, reply, thinking, answer", REPLIES)
def test_thinking_ends_as_soon_as_the_close_marker_is_complete(
    markers: ThinkingMarkers | None, opened: bool, reply: str, thinking: str, answer: str
) -> None:
    splitter = ThinkingSplitter(markers, opened_in_prompt=opened)
    closes_at = reply.find(markers.close) + len(markers.close) if markers and markers.close in reply else -1
    if markers is not None and not (opened or reply.lstrip().startswith(markers.open.strip())):
        closes_at = -1  # no thinking block: a close marker later is answer text
    for index, char in enumerate(reply, start=1):
        splitter.feed(char)
        assert splitter.thinking_ended == (0 < closes_at <= index), f"after {reply[:index]!r}"
    splitter.finish()
    assert not splitter.ended_while_thinking


def test_text_that_only_looks_like_a_marker_is_held_only_while_it_could_be_one() -> None:
    splitter = ThinkingSplitter(THINK)
    assert splitter.feed("<th") == []
    assert splitter.feed("e") == [Piece("answer", "<the")]
    assert splitter.feed(" end") == [Piece("answer", " end")]
    # While thinking, only what could start "</think>" is held, and whitespace before it.
    splitter = ThinkingSplitter(THINK, opened_in_prompt=True)
    assert splitter.feed("a <") == [Piece("thinking", "a")]
    assert splitter.feed("b") == [Piece("thinking", " <b")]
    assert splitter.feed("\n\n</th") == []
    assert splitter.feed("ink>\n\n") == []
    assert splitter.thinking_ended
    assert splitter.feed("Paris") == [Piece("answer", "Paris")]


def test_without_markers_every_delta_is_answer_at_once() -> None:
    splitter = ThinkingSplitter(None)
    for delta in ["<", "think", ">", " \n", "</think>"]:
        assert splitter.feed(delta) == [Piece("answer", delta)]
    assert splitter.finish() == []
    # With markers, an answer that cannot start one is not delayed either.
    splitter = ThinkingSplitter(THINK)
    for delta in ["Paris", " <think>", " is", "\n"]:
        assert splitter.feed(delta) == [Piece("answer", delta)]


def test_a_reply_that_ends_while_thinking_stays_thinking() -> None:
    # Cut off by the token limit or a stop: half a thought is not an answer.
    splitter = ThinkingSplitter(THINK)
    pieces = splitter.feed("<think>\nLet me count: 1, 2, 3\n</thi")
    pieces += splitter.finish()
    assert merged(pieces) == [Piece("thinking", "Let me count: 1, 2, 3\n</thi")]
    assert splitter.ended_while_thinking and splitter.saw_thinking and not splitter.thinking_ended
    assert split_text("No close marker at all", THINK, opened_in_prompt=True) == ("No close marker at all", "")


def test_a_thinking_budget_ends_the_thinking_with_the_models_own_close() -> None:
    for markers in (THINK, GPT_OSS, COHERE, GEMMA_4, SOLAR, APRIEL, GRANITE):
        splitter = ThinkingSplitter(markers)
        pieces = splitter.feed(markers.open + "\nStill thinking about")
        pieces += splitter.feed(markers.budget_text)  # what the engine evaluates in the model
        assert splitter.thinking_ended, markers.style
        pieces += splitter.feed("Paris.") + splitter.finish()
        assert merged(pieces) == [Piece("thinking", "Still thinking about"), Piece("answer", "Paris.")], markers.style


def test_the_prompt_opened_the_block_when_it_ends_with_the_open_marker() -> None:
    assert starts_thinking("<|im_start|>assistant\n<think>\n", THINK)
    assert starts_thinking("<｜Assistant｜><think>", THINK)
    assert not starts_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n", THINK)  # thinking switched off
    assert not starts_thinking("<|im_start|>assistant\n", THINK)
    assert not starts_thinking("<think>\n", None)
    assert starts_thinking("<|begin_assistant|>\nHere are my reasoning steps:\n", APRIEL)


def test_strip_thinking_leaves_the_answer() -> None:
    assert strip_thinking("<think>\nsecret\n</think>\n\nParis.", THINK) == "Paris."
    assert strip_thinking("secret\n</think>\n\nParis.", THINK, opened_in_prompt=True) == "Paris."
    assert strip_thinking("Paris, not `<think>`.", THINK) == "Paris, not `<think>`."
    assert strip_thinking("<think>x</think>Paris.", None) == "<think>x</think>Paris."
    stored = "<|channel|>analysis<|message|>secret<|end|><|start|>assistant<|channel|>final<|message|>Paris."
    assert strip_thinking(stored, GPT_OSS) == "Paris."


@pytest.mark.parametrize("template, tokens, style, found_in", [
    ("{{ '<think>\\n' }}{{ content.split('</think>')[-1] }}", (), "<think>", "template"),
    ("{% if '</think>' in content %}…", (), "<think>", "template"),  # a close tag alone will do
    ("<seed:think>{{ r }}</seed:think>", (), "<seed:think>", "template"),
    ("{{ '<|channel|>analysis<|message|>' }}", (), "gpt-oss", "template"),
    ("<|START_THINKING|>…<|END_THINKING|><|START_TEXT|>", (), "cohere", "template"),
    ("[THINK]…[/THINK]", (), "mistral", "template"),
    ("{{ open_tag('think') }} <|open|> <|close|> <|sep|>", (), "kimi", "template"),
    ("{% set inner_token = '<|inner_prefix|>' %}{% set outer = '<|inner_suffix|>' %}", (), "apertus", "template"),
    # Hunyuan 3 builds its tags with str.format: only its vocabulary names them.
    ("{%- set think_begin_token = '<think{}>'.format(HYTK) %}", ("<think:opensource>", "</think:opensource>"),
     "<think:opensource>", "vocabulary"),
    ("<|im_start|>{{ m.content }}<|im_end|>", ("<|im_start|>", "<think>", "</think>"), "<think>", "vocabulary"),
    ("<|im_start|>{{ m.content }}<|im_end|>", ("<|channel|>", "<|message|>", "<|end|>", "<|start|>"), "gpt-oss",
     "vocabulary"),
])
def test_markers_are_found_in_the_template_or_the_vocabulary(
    template: str, tokens: tuple[str, ...], style: str, found_in: str
) -> None:
    markers = thinking_markers(template, set(tokens))
    assert markers is not None
    assert (markers.style, markers.found_in) == (style, found_in)


def test_no_markers_for_a_model_that_does_not_think() -> None:
    assert thinking_markers("<|im_start|>{{ m.content }}<|im_end|>", {"<|im_start|>", "<|im_end|>"}) is None
    assert thinking_markers(None) is None
    # An open tag alone is prose, not a marker (Apriel 1.6: "whether to include <thinking> blocks").
    assert thinking_markers("{# whether to include <thinking> reasoning blocks #}") is None


def test_the_thinking_switch_is_the_enable_thinking_variable() -> None:
    assert has_thinking_switch("{% if enable_thinking is defined and enable_thinking is false %}")
    assert has_thinking_switch("{{ '<think>' if enable_thinking else '' }}")
    assert not has_thinking_switch("{%- set ns = namespace(enable_thinking=true) -%}{% if ns.enable_thinking %}")
    assert not has_thinking_switch(None)
