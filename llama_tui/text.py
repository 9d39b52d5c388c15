"""Making text from users and models safe to show literally in a terminal."""

from __future__ import annotations

import re

# CSI/OSC/other escape sequences first, so their parameters go with them, then any other
# C0/C1 control character except tab and newline.
_ANSI_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def neutralise_controls(text: str) -> str:
    """Drop ANSI escape sequences; show other control bytes as visible symbols.

    Carriage returns are dropped rather than shown: models often emit CRLF.
    """
    text = _ANSI_ESCAPE.sub("", text).replace("\r\n", "\n").replace("\r", "")
    return _CONTROL.sub(_visible_control, text)


def _visible_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    # U+2400..U+241F are the "control pictures" for C0 characters.
    if code < 0x20:
        return chr(0x2400 + code)
    return "\ufffd"
