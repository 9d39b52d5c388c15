"""Turning a stream of tokens into a stream of text: UTF-8 pieces and stop strings."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable


class TokenTextDecoder:
    """Decodes token byte pieces to text, holding back a UTF-8 character split across tokens."""

    def __init__(self, token_bytes: Callable[[int], bytes]) -> None:
        self._token_bytes = token_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> str:
        return self._utf8.decode(self._token_bytes(token))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


class StopScanner:
    """Cuts the text at the first stop string, never letting part of one reach the screen.

    Text that could be the start of a stop string is held back until the next piece shows
    whether it is.
    """

    def __init__(self, stops: Iterable[str]) -> None:
        self._stops = [stop for stop in stops if stop]
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text that is safe to show now."""
        if not self._stops:
            return text
        buffer = self._pending + text
        hits = [index for index in (buffer.find(stop) for stop in self._stops) if index >= 0]
        if hits:
            self.stopped = True
            self._pending = ""
            return buffer[: min(hits)]
        hold = max((self._partial_stop_length(buffer, stop) for stop in self._stops), default=0)
        self._pending = buffer[len(buffer) - hold :] if hold else ""
        return buffer[: len(buffer) - hold]

    def flush(self) -> str:
        """What was held back, once the stream has ended without a stop string."""
        pending, self._pending = self._pending, ""
        return pending

    @staticmethod
    def _partial_stop_length(buffer: str, stop: str) -> int:
        for length in range(min(len(stop) - 1, len(buffer)), 0, -1):
            if buffer.endswith(stop[:length]):
                return length
        return 0
