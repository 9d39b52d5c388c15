"""Search text as FTS5's unicode61 tokenizer (remove_diacritics 2) sees it: tokens are runs
of letters and digits, compared without case or accents.

MemoryStore matches messages with it; both stores make the matching line of a search result
(`snippet`) with it. SqliteStore does not use FTS5's snippet(): that reloads the search
term's whole posting list for every row (16 ms a row for a common word in 100,000 messages),
where this reads one message only up to its first match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from itertools import islice

_TOKEN = re.compile(r"[^\W_]+")
_SPACE = re.compile(r"\s+")

SNIPPET_TOKENS = 16
"""Words in a snippet (about one line of the history list)..."""
CONTEXT_TOKENS = 4
"""...of which this many come before the first match."""

Phrase = list[str]
Span = tuple[int, int]
Token = tuple[int, int, str]  # start, end, folded word


def fold(word: str) -> str:
    if word.isascii():  # the common case, 20 times faster
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def search_phrases(search: str) -> list[Phrase]:
    """The phrases store_schema.fts_query makes of a search, as lists of folded tokens
    (the last phrase's last token matches as a prefix); [] when nothing is searchable."""
    return [tokens for chunk in search.split() if (tokens := [fold(w) for w in _TOKEN.findall(chunk)])]


def tokens(text: str) -> Iterator[Token]:
    for match in _TOKEN.finditer(text):
        yield match.start(), match.end(), fold(match.group())


def ends_here(words: Sequence[Token], end: int, phrase: Phrase, prefix: bool) -> bool:
    """Whether `phrase` occurs in `words` ending at index `end`."""
    start = end - len(phrase) + 1
    if start < 0:
        return False
    for offset, wanted in enumerate(phrase):
        word = words[start + offset][2]
        if not (word.startswith(wanted) if prefix and offset == len(phrase) - 1 else word == wanted):
            return False
    return True


def contains_all(text: str, phrases: list[Phrase]) -> bool:
    """Whether every phrase occurs in text (as FTS5 would match the query)."""
    words = list(tokens(text))
    last = len(phrases) - 1
    return all(any(ends_here(words, end, p, i == last) for end in range(len(words))) for i, p in enumerate(phrases))


def snippet(text: str, phrases: list[Phrase]) -> tuple[str, tuple[Span, ...]]:
    """One line of text around the first match of any phrase, and where the matches are in
    it; without a match (FTS5 may split an odd character differently), the start of the text."""
    start = first_match(text, phrases)
    before = list(_TOKEN.finditer(text, max(0, (start or 0) - 40 * CONTEXT_TOKENS), start or 0))
    if start is not None and start > 40 * CONTEXT_TOKENS:
        before = before[1:]  # the first may be the end of a cut word
    window = before[-CONTEXT_TOKENS:] + list(islice(_TOKEN.finditer(text, start or 0), SNIPPET_TOKENS + 1))
    if not window:
        return _SPACE.sub(" ", text).strip()[:80], ()
    more = len(window) > SNIPPET_TOKENS
    window = window[:SNIPPET_TOKENS]
    cut_before = _TOKEN.search(text, 0, window[0].start()) is not None
    begin = window[0].start() if cut_before else 0
    end = window[-1].end() if more else len(text)
    return _line(text, begin, end, _matches(text, begin, end, window, phrases), cut_before, more)


def first_match(text: str, phrases: list[Phrase]) -> int | None:
    """Where the first match of any phrase starts in text. A regular expression finds ASCII
    phrases (C speed: a message is read only up to the match); other text is read token by token."""
    last = len(phrases) - 1
    patterns = [_pattern(phrase, number == last) for number, phrase in enumerate(phrases)]
    if all(pattern is not None for pattern in patterns):
        starts = [found.start() for pattern in patterns if pattern and (found := pattern.search(text))]
        if starts or text.isascii():
            return min(starts, default=None)
    words: list[Token] = []
    for token in tokens(text):
        words.append(token)
        for number, phrase in enumerate(phrases):
            if ends_here(words, len(words) - 1, phrase, number == last):
                return words[len(words) - len(phrase)][0]
    return None


def _pattern(phrase: Phrase, prefix: bool) -> re.Pattern[str] | None:
    """The phrase as a regular expression over raw text, if its words are ASCII (a match
    covers whole words: the rest of a prefix's word too)."""
    if not all(word.isascii() for word in phrase):
        return None
    body = r"[\W_]+".join(map(re.escape, phrase))
    return re.compile(r"(?<![^\W_])" + body + (r"[^\W_]*" if prefix else r"(?![^\W_])"), re.IGNORECASE)


def _matches(text: str, begin: int, end: int, window: list[re.Match[str]], phrases: list[Phrase]) -> list[Span]:
    """Where phrases match in text[begin:end], merged, in text's positions."""
    last = len(phrases) - 1
    found: list[Span] = []
    words: list[Token] = []
    ascii_text = text.isascii()
    for number, phrase in enumerate(phrases):
        pattern = _pattern(phrase, number == last)
        if pattern is not None and ascii_text:
            found += [m.span() for m in pattern.finditer(text, begin, end)]
            continue
        words = words or [(m.start(), m.end(), fold(m.group())) for m in window]
        for stop in range(len(words)):
            if ends_here(words, stop, phrase, number == last):
                found.append((words[stop - len(phrase) + 1][0], words[stop][1]))
    merged: list[Span] = []
    for start, stop in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
        else:
            merged.append((start, stop))
    return merged


def _line(
    text: str, begin: int, end: int, spans: list[Span], cut_before: bool, more: bool
) -> tuple[str, tuple[Span, ...]]:
    """text[begin:end] as one line (white space made single spaces), its spans moved along."""
    line = "…" if cut_before else ""
    moved: list[Span] = []
    position = begin
    for start, stop in spans:
        line += _SPACE.sub(" ", text[position:start])
        match = _SPACE.sub(" ", text[start:stop])
        moved.append((len(line), len(line) + len(match)))
        line += match
        position = stop
    line += _SPACE.sub(" ", text[position:end])
    stripped = line.lstrip()
    shift = len(line) - len(stripped)
    return stripped.rstrip() + ("…" if more else ""), tuple((a - shift, b - shift) for a, b in moved)
