"""Text from users, files, models and servers, made safe to show literally in a terminal and cut to fit."""

from __future__ import annotations

import re

# CSI/OSC/other escape sequences first, so their parameters go with them, then any other
# C0/C1 control character except tab and newline.
_ANSI_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): in a
# terminal that applies them they reorder what follows, so "gpj.exe" can show as "exe.jpg".
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")


def neutralise_controls(text: str) -> str:
    """Drop ANSI escape sequences; show other control and bidi control characters as visible symbols.

    Carriage returns are dropped rather than shown: models often emit CRLF.
    """
    text = _ANSI_ESCAPE.sub("", text).replace("\r\n", "\n").replace("\r", "")
    text = _BIDI_CONTROL.sub("\ufffd", text)
    return _CONTROL.sub(_visible_control, text)


def _visible_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    # U+2400..U+241F are the "control pictures" for C0 characters.
    if code < 0x20:
        return chr(0x2400 + code)
    return "\ufffd"


def shorten(text: str, most: int) -> str:
    """`text` if it has at most `most` characters, else its start cut to `most` with "…" last."""
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"
