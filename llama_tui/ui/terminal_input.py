"""Keeping a pasted text whole and in order on its way from the terminal.

Textual's key parser (8.2.8) reads an escape character *inside* a bracketed paste as the start
of a key sequence: the characters after it leave the paste and arrive first, as key presses,
so a paste of `Xab␛[31mc` reaches the app as the keys `^[31mc` followed by a paste of `Xab`.
`PasteEscapes` replaces each escape character inside a paste with the visible symbol ␛
(U+241B, how the app shows any control character) before the parser sees it; the marker that
ends the paste is left alone. It keeps its state between reads, so a marker split over two
reads is still found.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual._xterm_parser import XTermParser
from textual.drivers import linux_driver
from textual.message import Message

ESC = "\x1b"
PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"
VISIBLE_ESC = "\u241b"


class PasteEscapes:
    """A filter over the terminal's input, one read at a time."""

    def __init__(self) -> None:
        self.in_paste = False
        self._matched = 0
        """Outside a paste: how many characters of PASTE_START were just seen."""
        self._held = ""
        """Inside a paste: an escape and what followed it, while it may be PASTE_END."""

    def __call__(self, data: str) -> str:
        out: list[str] = []
        for character in data:
            if self.in_paste:
                self._inside(character, out)
            else:
                out.append(character)
                self._outside(character)
        return "".join(out)

    def _outside(self, character: str) -> None:
        if PASTE_START[self._matched] == character:
            self._matched += 1
            if self._matched == len(PASTE_START):
                self.in_paste, self._matched = True, 0
        else:
            self._matched = 1 if character == ESC else 0

    def _inside(self, character: str, out: list[str]) -> None:
        if not self._held:
            if character == ESC:
                self._held = ESC
            else:
                out.append(character)
            return
        candidate = self._held + character
        if PASTE_END.startswith(candidate):
            self._held = candidate
            if candidate == PASTE_END:
                out.append(PASTE_END)
                self.in_paste, self._held = False, ""
            return
        # Not the end of the paste: the escape was part of the pasted text.
        out.append(VISIBLE_ESC + self._held[1:])
        self._held = ""
        self._inside(character, out)


class PasteSafeParser(XTermParser):
    """Textual's parser, fed through PasteEscapes."""

    def __init__(self, debug: bool = False) -> None:
        super().__init__(debug)
        self._paste_escapes = PasteEscapes()

    def feed(self, data: str) -> Iterable[Message]:
        return super().feed(self._paste_escapes(data) if data else data)


def use_paste_safe_parser() -> None:
    """Make Textual's Linux driver (the one used in a real terminal) parse with PasteSafeParser.

    The driver builds its parser inside its input thread from this module-level name, so
    that name is the one place to swap it.
    """
    linux_driver.XTermParser = PasteSafeParser  # type: ignore[misc]  # a subclass, same interface
