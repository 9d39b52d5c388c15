"""Telling a reasoning model's thinking from its answer, as the text streams in.

Which markers a model uses is read from its chat template and its vocabulary
(`thinking_markers`), never from its name: `<think>…</think>` in most, and the other
styles llama.cpp's template corpus shows (Cohere's `<|START_THINKING|>`, Mistral's
`[THINK]`, gpt-oss's analysis channel, Gemma 4's thought channel, `<seed:think>`, …).

The rule for recognising markers (ThinkingSplitter), chosen for what models really write:
- The open marker counts only at the start of the reply (after leading whitespace). A
  reasoning model thinks first and answers after; a marker later in the answer is text the
  model is writing about, as in a code block explaining `<think>` tags, and is left alone.
- While thinking, the first close marker ends the thinking. An open marker inside the
  thinking is just text. Once answering, nothing switches back.
- When the prompt already opened the block (`starts_thinking`: the prompt ends with the
  open marker, as DeepSeek-R1 distills' and Qwen3.5's templates do), the reply starts in
  the thinking and only the close marker is expected; a repeated open marker there is
  dropped.
- Whitespace next to the markers is not shown: the `\\n` after `<think>`, before
  `</think>`, and the `\\n\\n` between `</think>` and the answer. So are "answer prefixes",
  channel headers some formats write before the answer (gpt-oss's
  `<|start|>assistant<|channel|>final<|message|>`), and a format's answer suffix at the
  very end of an answer that began with such a prefix (Granite's `</response>`).
- A marker split across deltas is still recognised: text that could be the start of a
  marker is held back only while it still could be one, then released.
- A reply that ends while thinking stays thinking (`ended_while_thinking`): the model was
  cut off mid-thought (token limit, stop, full context), and half a thought is not an
  answer. The caller shows the thinking unfolded and says so.

No Textual here; all of it is plain text in, plain text out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple

Kind = Literal["thinking", "answer"]
State = Literal["start", "thinking", "after_thinking", "after_prefix", "answer"]


class Piece(NamedTuple):
    kind: Kind
    text: str


@dataclass(frozen=True)
class ThinkingMarkers:
    """How one model marks its thinking."""

    open: str
    """What starts the thinking, e.g. "<think>"."""
    close: str
    """What ends it, e.g. "</think>"."""
    answer_prefixes: tuple[str, ...] = ()
    """Headers a format writes before the answer, after the close marker or at the start
    of a reply without thinking; not part of the answer. Longest first."""
    answer_suffix: str = ""
    """What such a format writes after the answer (Granite's "</response>"); dropped from
    the end of an answer that began with an answer prefix."""
    end_text: str = ""
    """What a thinking budget inserts to end the thinking (the close marker, with the
    whitespace or answer header the model itself would write after it)."""
    style: str = ""
    """A short name for the style, for logs and tests ("<think>", "gpt-oss", ...)."""
    found_in: Literal["template", "vocabulary"] = "template"

    @property
    def budget_text(self) -> str:
        return self.end_text or self.close


# -- finding the markers ---------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    markers: ThinkingMarkers
    template_evidence: tuple[str, ...]
    """All of these in the template source means this style."""
    vocabulary_evidence: tuple[str, ...] = field(default=())
    """All of these among the special tokens means this style (empty: never by vocabulary)."""


def _style(
    name: str,
    open_: str,
    close: str,
    template: tuple[str, ...],
    vocabulary: tuple[str, ...] = (),
    answer_prefixes: tuple[str, ...] = (),
    answer_suffix: str = "",
    end_text: str = "",
) -> _Style:
    markers = ThinkingMarkers(open_, close, answer_prefixes, answer_suffix, end_text, name)
    return _Style(markers, template, vocabulary)


# Formats whose markers are more than a pair of tags, most specific first. Each was read
# from the templates llama.cpp ships (models/templates in its source).
_STYLES: tuple[_Style, ...] = (
    # gpt-oss (Harmony): thinking in the analysis channel, answer in the final channel.
    # The generation prompt ends with "<|start|>assistant", so the model writes the
    # channel header itself; <|end|> ends a message without ending the turn.
    _style(
        "gpt-oss", "<|channel|>analysis<|message|>", "<|end|>",
        template=("<|channel|>", "analysis", "<|message|>"),
        vocabulary=("<|channel|>", "<|message|>", "<|end|>", "<|start|>"),
        answer_prefixes=("<|start|>assistant<|channel|>final<|message|>", "<|channel|>final<|message|>"),
        end_text="<|end|><|start|>assistant<|channel|>final<|message|>",
    ),
    # Gemma 4: "<|channel>thought\n…<channel|>answer".
    _style("gemma-4", "<|channel>thought", "<channel|>", template=("<|channel>", "<channel|>"),
           vocabulary=("<|channel>", "<channel|>")),
    # Cohere: thinking, then the answer after a text or response token (Command A's
    # MoE template writes <|START_TEXT|>, Command R7B's <|START_RESPONSE|>).
    _style(
        "cohere", "<|START_THINKING|>", "<|END_THINKING|>",
        template=("<|START_THINKING|>", "<|END_THINKING|>", "<|START_TEXT|>"),
        answer_prefixes=("<|START_TEXT|>", "<|START_RESPONSE|>"),
        end_text="<|END_THINKING|><|START_TEXT|>",
    ),
    _style(
        "cohere", "<|START_THINKING|>", "<|END_THINKING|>",
        template=("<|START_THINKING|>", "<|END_THINKING|>"),
        vocabulary=("<|START_THINKING|>", "<|END_THINKING|>"),
        answer_prefixes=("<|START_RESPONSE|>", "<|START_TEXT|>"),
        end_text="<|END_THINKING|><|START_RESPONSE|>",
    ),
    # Mistral's reasoning models (Magistral, Ministral Reasoning).
    _style("mistral", "[THINK]", "[/THINK]", template=("[THINK]", "[/THINK]"), vocabulary=("[THINK]", "[/THINK]")),
    # Kimi K3: <|open|>think<|sep|> … <|close|>think<|sep|><|open|>response<|sep|> answer.
    _style(
        "kimi", "<|open|>think<|sep|>", "<|close|>think<|sep|>",
        template=("<|open|>", "<|close|>", "<|sep|>", "'think'"),
        answer_prefixes=("<|open|>response<|sep|>",),
        end_text="<|close|>think<|sep|><|open|>response<|sep|>",
    ),
    # Solar Open: the prompt ends with "<|begin|>assistant"; the model writes
    # "<|think|>…<|end|><|begin|>assistant<|content|>answer".
    _style(
        "solar", "<|think|>", "<|end|>",
        template=("<|think|>", "<|content|>", "<|begin|>"),
        vocabulary=("<|think|>", "<|content|>", "<|begin|>", "<|end|>"),
        answer_prefixes=("<|begin|>assistant<|content|>", "<|content|>"),
        end_text="<|end|><|begin|>assistant<|content|>",
    ),
    # Muse Glimmer (Harmony-like): "to=self" is the reasoning channel.
    _style(
        "muse", "to=self<|message|>", "<|eom|>",
        template=("<|start|>assistant to=self<|message|>", "<|eom|>"),
        answer_prefixes=("<|start|>assistant to=user<|message|>", "<|start|>assistant<|message|>",
                         "to=user<|message|>", "<|message|>"),
        end_text="<|eom|><|start|>assistant to=user<|message|>",
    ),
    # Granite 3.3 with thinking on: "<think>…</think><response>answer</response>".
    _style(
        "granite", "<think>", "</think>", template=("<think></think>", "<response></response>"),
        answer_prefixes=("<response>",), answer_suffix="</response>", end_text="</think><response>",
    ),
    # Apertus: "<|inner_prefix|>thoughts<|inner_suffix|>answer".
    _style("apertus", "<|inner_prefix|>", "<|inner_suffix|>", template=("<|inner_prefix|>", "<|inner_suffix|>"),
           vocabulary=("<|inner_prefix|>", "<|inner_suffix|>")),
    # Apriel 1.6 Thinker: plain-text markers, the first written by the prompt.
    _style(
        "apriel", "Here are my reasoning steps:", "[BEGIN FINAL RESPONSE]",
        template=("Here are my reasoning steps:", "[BEGIN FINAL RESPONSE]"),
        end_text="\n[BEGIN FINAL RESPONSE]\n",
    ),
)

# Tag pairs: <think>, <thinking>, <seed:think> (Seed-OSS), <mm:think> (MiniMax M3),
# <think:opensource> (Hunyuan 3; built with str.format in its template, so seen only in
# the vocabulary).
_THINK_TAG = re.compile(r"<(/?)((?:[A-Za-z][\w.-]*:)?think(?:ing)?(?::[\w.-]+)?)>")


def _tag_pair(texts: Iterable[str], found_in: Literal["template", "vocabulary"]) -> ThinkingMarkers | None:
    """The think-tag pair the texts use most. A close tag alone is enough (LFM2.5's
    template only cuts earlier replies at "</think>"); an open tag alone is not (it is
    more often prose, as in Apriel 1.6's comment about "<thinking> blocks")."""
    uses: dict[str, int] = {}
    closes: set[str] = set()
    for text in texts:
        for match in _THINK_TAG.finditer(text):
            name = match.group(2)
            uses[name] = uses.get(name, 0) + 1
            if match.group(1):
                closes.add(name)
    if not closes:
        return None
    # Most used first; then the plain "think" over longer names, then by name for a stable pick.
    name = min(closes, key=lambda n: (-uses[n], len(n), n))
    return ThinkingMarkers(f"<{name}>", f"</{name}>", end_text=f"\n</{name}>\n\n", style=f"<{name}>",
                           found_in=found_in)


# Token texts worth looking up in a model's vocabulary: every one thinking_markers can use.
# (Looking up these few is much faster than listing a 262k-token vocabulary's specials.)
VOCABULARY_CANDIDATES: frozenset[str] = frozenset(
    [token for style in _STYLES for token in style.vocabulary_evidence]
    + [f"<{slash}{name}>" for slash in ("", "/")
       for name in ("think", "thinking", "seed:think", "mm:think", "think:opensource")]
)


def thinking_markers(template_source: str | None, special_tokens: Collection[str] = ()) -> ThinkingMarkers | None:
    """The markers a model uses for its thinking, or None if it shows no sign of thinking.

    The template is the stronger evidence (it shows how turns are written); the
    vocabulary (the text of the model's special and user-defined tokens, or just those of
    VOCABULARY_CANDIDATES it has) is asked only when the template names no markers, e.g. a
    file with a plain ChatML template but a thinking model's tokens.
    """
    source = template_source or ""
    for style in _STYLES:
        if source and all(evidence in source for evidence in style.template_evidence):
            return style.markers
    pair = _tag_pair([source], "template") if source else None
    if pair is not None:
        return pair
    tokens = set(special_tokens)
    for style in _STYLES:
        if style.vocabulary_evidence and tokens.issuperset(style.vocabulary_evidence):
            return _with_found_in(style.markers, "vocabulary")
    return _tag_pair(tokens, "vocabulary")


def _with_found_in(markers: ThinkingMarkers, found_in: Literal["template", "vocabulary"]) -> ThinkingMarkers:
    return replace(markers, found_in=found_in)


# The variable itself, not a namespace attribute (`ns.enable_thinking`) or a keyword
# argument (`namespace(enable_thinking=true)`): Nemotron Nano 2 names its own flag so and
# reads "/no_think" from the system prompt instead.
_SWITCH = re.compile(r"(?<![\w.])enable_thinking\b(?!\s*=[^=])")


def has_thinking_switch(template_source: str | None) -> bool:
    """Whether the template reads `enable_thinking` (Qwen3's switch; llama.cpp's server
    passes it to every template), so thinking can be turned off for a reply."""
    return bool(_SWITCH.search(template_source or ""))


def starts_thinking(prompt_text: str, markers: ThinkingMarkers | None) -> bool:
    """Whether the prompt itself opened the thinking block, so the model writes only the
    thinking and the close marker: the prompt ends with the open marker (`<think>\\n` or a
    bare `<think>`). A prompt ending with an empty block (`<think>\\n\\n</think>\\n\\n`,
    thinking switched off) does not."""
    if markers is None:
        return False
    return prompt_text.rstrip().endswith(markers.open.strip())


# -- splitting a stream ----------------------------------------------------------------


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of `text` that is a proper start of `marker`."""
    for length in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:length]):
            return length
    return 0


class ThinkingSplitter:
    """Splits a reply, fed as it streams, into thinking and answer pieces.

    `feed(delta)` returns the pieces that are certain now; `finish()` returns what was
    held back once the reply has ended. With no markers every delta is answer at once.
    `thinking_ended` turns true when the close marker is seen (fold the block then);
    a thinking budget ends the thinking by evaluating `markers.budget_text` in the model
    and feeding the same text here, as if the model had written it.
    """

    def __init__(self, markers: ThinkingMarkers | None, *, opened_in_prompt: bool = False) -> None:
        self.markers = markers
        self.state: State = "answer" if markers is None else ("thinking" if opened_in_prompt else "start")
        self.saw_thinking = opened_in_prompt and markers is not None
        """The reply had a thinking block (perhaps an empty one)."""
        self.thinking_ended = False
        """The close marker was seen: what follows is the answer."""
        self.ended_while_thinking = False
        """Set by finish(): the reply ended before the close marker."""
        self._held = ""
        self._opened_in_prompt = opened_in_prompt
        self._thinking_started = False  # thinking text shown yet (its leading whitespace is dropped)
        self._suffix = ""  # the answer suffix to drop, once an answer prefix was seen

    def feed(self, text: str) -> list[Piece]:
        if self.state == "answer" and not self._held and not self._suffix:
            return [Piece("answer", text)] if text else []  # the common case, without copying
        pieces: list[Piece] = []
        self._held += text
        self._advance(pieces, final=False)
        return pieces

    def finish(self) -> list[Piece]:
        """The pieces still held back, once the reply has ended."""
        pieces: list[Piece] = []
        self._advance(pieces, final=True)
        if self.state == "thinking":
            self.ended_while_thinking = True
        return pieces

    def _advance(self, pieces: list[Piece], final: bool) -> None:
        # Each step consumes from self._held and says whether the state changed, so that
        # the rest of the buffer is looked at again in the new state.
        while True:
            if self.state == "start":
                changed = self._at_start(final)
            elif self.state == "thinking":
                changed = self._in_thinking(pieces, final)
            elif self.state == "after_thinking":
                changed = self._after_thinking(final)
            elif self.state == "after_prefix":
                changed = self._skip_whitespace(final)
            else:
                self._in_answer(pieces, final)
                changed = False
            if not changed:
                return

    def _at_start(self, final: bool) -> bool:
        assert self.markers is not None
        head = self._held.lstrip()
        if not head and not final:
            return False  # only whitespace so far: it decides nothing
        opener = self.markers.open.strip()
        if head.startswith(opener):
            self._held = head[len(opener) :]
            self.state = "thinking"
            self.saw_thinking = True
            return True
        prefixes = self.markers.answer_prefixes
        if any(head.startswith(prefix) for prefix in prefixes):
            # Straight to the answer channel (gpt-oss without analysis): drop its header.
            self._held = head
            self.state = "after_thinking"
            return True
        if head and not final and any(marker.startswith(head) for marker in (opener, *prefixes)):
            return False  # could still become a marker
        self.state = "answer"  # the whole buffer, leading whitespace and all
        return True

    def _in_thinking(self, pieces: list[Piece], final: bool) -> bool:
        assert self.markers is not None
        buffer = self._held
        if not self._thinking_started:
            buffer = buffer.lstrip()
            opener = self.markers.open.strip()
            if self._opened_in_prompt and buffer.startswith(opener):
                buffer = buffer[len(opener) :].lstrip()  # the model wrote the prompt's marker again
                self._opened_in_prompt = False
            elif self._opened_in_prompt and buffer and opener.startswith(buffer) and not final:
                self._held = buffer
                return False
        close = self.markers.close
        at = buffer.find(close)
        if at >= 0:
            self._emit_thinking(pieces, buffer[:at].rstrip())
            self._held = buffer[at + len(close) :]
            self.state = "after_thinking"
            self.thinking_ended = True
            return True
        if final:
            self._emit_thinking(pieces, buffer.rstrip())
            self._held = ""
            return False
        # Hold back what could be the start of the close marker, and the whitespace before
        # it (dropped if the marker follows).
        cut = len(buffer) - _partial_suffix(buffer, close)
        while cut > 0 and buffer[cut - 1].isspace():
            cut -= 1
        self._emit_thinking(pieces, buffer[:cut])
        self._held = buffer[cut:]
        return False

    def _emit_thinking(self, pieces: list[Piece], text: str) -> None:
        if text:
            self._thinking_started = True
            self._opened_in_prompt = False
            pieces.append(Piece("thinking", text))

    def _after_thinking(self, final: bool) -> bool:
        """Drops whitespace and one answer prefix between the thinking and the answer."""
        assert self.markers is not None
        head = self._held.lstrip()
        for prefix in self.markers.answer_prefixes:
            if head.startswith(prefix):
                self._suffix = self.markers.answer_suffix
                self._held = head[len(prefix) :]
                self.state = "after_prefix"
                return True
            if head and not final and prefix.startswith(head):
                self._held = head
                return False
        self._held = head
        return self._skip_whitespace(final)

    def _skip_whitespace(self, final: bool) -> bool:
        """Drops whitespace before the answer; the first other character starts it."""
        self._held = self._held.lstrip()
        if not self._held and not final:
            return False
        self.state = "answer"
        return True

    def _in_answer(self, pieces: list[Piece], final: bool) -> None:
        buffer, suffix = self._held, self._suffix
        if suffix and final and buffer.rstrip().endswith(suffix):
            buffer = buffer.rstrip()[: -len(suffix)].rstrip()
        elif suffix and not final:
            # Keep back what could be the suffix, with the whitespace before it.
            at = buffer.rfind(suffix)
            if at >= 0 and not buffer[at + len(suffix) :].strip():
                cut = at
            else:
                cut = len(buffer) - _partial_suffix(buffer, suffix)
            while cut > 0 and buffer[cut - 1].isspace():
                cut -= 1
            self._held = buffer[cut:]
            buffer = buffer[:cut]
        else:
            self._held = ""
        if final:
            self._held = ""
        if buffer:
            pieces.append(Piece("answer", buffer))


def split_text(text: str, markers: ThinkingMarkers | None, *, opened_in_prompt: bool = False) -> tuple[str, str]:
    """(thinking, answer) of a whole reply."""
    splitter = ThinkingSplitter(markers, opened_in_prompt=opened_in_prompt)
    pieces = splitter.feed(text) + splitter.finish()
    thinking = "".join(piece.text for piece in pieces if piece.kind == "thinking")
    answer = "".join(piece.text for piece in pieces if piece.kind == "answer")
    return thinking, answer


def strip_thinking(text: str, markers: ThinkingMarkers | None, *, opened_in_prompt: bool = False) -> str:
    """The answer of a reply stored with its thinking inside, for sending it back in a
    later prompt: many templates would otherwise leave the old thinking in the prompt
    (gpt-oss's even refuses it). `opened_in_prompt`: the reply was made by a prompt that
    opened the block, so the stored text starts inside the thinking (see starts_thinking)."""
    if markers is None:
        return text
    return split_text(text, markers, opened_in_prompt=opened_in_prompt)[1]

