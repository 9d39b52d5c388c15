"""How many threads verify a draft: whichever of the batch threads and the decode threads has
been faster lately.

A verify batch of several tokens runs on llama.cpp's batch threads (every core by default).
On an idle 2-core machine that is much faster than one thread: a batch of 16 costs 3.8x one
token on 2 threads against 6.8x on 1. But llama.cpp's threads wait for each other after every
step, so when another program (or the UI drawing a burst of accepted tokens) takes a core, all
of them stall: with three busy processes on 2 cores the editing tasks ran at 1.04-1.18x plain
decoding with every batch on 2 threads, and at 1.40-2.30x with this choice (docs/benchmarks.md,
11a). Which is faster depends on the moment, so the decode loop times each verify batch and this
picks the thread count that was faster for a batch of that size, trying the other one again
now and then (less often each time it loses) in case the machine got busier or quieter.

Pure Python with no llama.cpp: the decode loop (engine.decode_loop) drives it.
"""

from __future__ import annotations

from collections.abc import Sequence

FIRST_RECHECK = 16
"""Verify batches between two tries of the slower thread count, after a try it won."""
MAX_RECHECK = 256
"""The most batches between two tries: each losing try doubles the wait up to this. A losing try
costs one slow batch (up to ~1 s on a busy 2-core machine) in this many."""


class VerifyThreads:
    """Chooses among thread counts for verify batches from their measured times.

    `choices` lists the candidates, the preferred one first (tried first). Times are kept per
    (threads, batch size): a batch of 16 and one of 4 scale differently with threads.
    """

    def __init__(self, choices: Sequence[int]) -> None:
        self.choices = tuple(dict.fromkeys(choices))  # in order, without repeats
        if not self.choices or min(self.choices) < 1:
            raise ValueError("choices must hold at least one thread count of 1 or more")
        self._seconds: dict[tuple[int, int], float] = {}
        self._since_recheck = 0
        self._recheck_every = FIRST_RECHECK
        self._rechecking: tuple[int, int] | None = None

    def pick(self, size: int) -> int:
        """The thread count for the next verify batch of `size` tokens."""
        self._rechecking = None
        untried = [threads for threads in self.choices if (threads, size) not in self._seconds]
        if untried:
            return untried[0]
        ranked = sorted(self.choices, key=lambda threads: self._seconds[threads, size])
        self._since_recheck += 1
        if len(ranked) > 1 and self._since_recheck >= self._recheck_every:
            self._since_recheck = 0
            self._rechecking = (ranked[1], size)
            return ranked[1]
        return ranked[0]

    def timed(self, threads: int, size: int, seconds: float) -> None:
        """A verify batch of `size` tokens on `threads` threads took `seconds`."""
        key = (threads, size)
        if key == self._rechecking:
            # The old time is stale: the machine may have changed since it was taken.
            self._seconds[key] = seconds
            others = [self._seconds[other, size] for other in self.choices if other != threads]
            won = seconds <= min(others)
            self._recheck_every = FIRST_RECHECK if won else min(MAX_RECHECK, self._recheck_every * 2)
            self._rechecking = None
            return
        previous = self._seconds.get(key)
        # Half the old time and half the new: follows a change in a few batches, and one
        # batch slowed by a hiccup does not flip the choice on its own.
        self._seconds[key] = seconds if previous is None else (previous + seconds) / 2

    def seconds(self, threads: int, size: int) -> float | None:
        """The time kept for a batch of `size` on `threads` threads, if any."""
        return self._seconds.get((threads, size))
