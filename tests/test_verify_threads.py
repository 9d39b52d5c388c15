"""engine.verify_threads: the thread count of a verify batch follows the measured times.

The times are inputs here (the decode loop measures them; tests/test_speculative.py runs it
on a real model): these tests pin the choice made from given times.
"""

from __future__ import annotations

import pytest

from llama_tui.engine.verify_threads import FIRST_RECHECK, MAX_RECHECK, VerifyThreads

BATCH, DECODE = 2, 1  # the app's defaults on 2 cores: every core for batches, one for tokens


def picks(chooser: VerifyThreads, size: int, seconds: dict[int, float], n: int) -> list[int]:
    """The next n picks for batches of `size`, each timed as `seconds` says for its threads."""
    chosen = []
    for _ in range(n):
        threads = chooser.pick(size)
        chooser.timed(threads, size, seconds[threads])
        chosen.append(threads)
    return chosen


def test_each_count_is_tried_once_the_preferred_first_then_the_faster_is_used() -> None:
    chooser = VerifyThreads((BATCH, DECODE))
    assert picks(chooser, 16, {BATCH: 0.2, DECODE: 0.1}, 4) == [BATCH, DECODE, DECODE, DECODE]
    quiet = VerifyThreads((BATCH, DECODE))
    assert picks(quiet, 16, {BATCH: 0.05, DECODE: 0.1}, 4) == [BATCH, DECODE, BATCH, BATCH]


def test_batch_sizes_are_timed_apart() -> None:
    chooser = VerifyThreads((BATCH, DECODE))
    picks(chooser, 16, {BATCH: 0.05, DECODE: 0.1}, 3)
    assert picks(chooser, 4, {BATCH: 0.05, DECODE: 0.01}, 3) == [BATCH, DECODE, DECODE]
    assert chooser.pick(16) == BATCH


def test_the_slower_count_is_tried_again_less_often_each_time_it_loses() -> None:
    chooser = VerifyThreads((BATCH, DECODE))
    busy = {BATCH: 0.9, DECODE: 0.15}  # a busy machine: the batch threads stall
    chosen = picks(chooser, 16, busy, 2 + FIRST_RECHECK + 2 * FIRST_RECHECK + 4 * FIRST_RECHECK)
    tries = [i for i, threads in enumerate(chosen) if threads == BATCH]
    assert tries == [0, 1 + FIRST_RECHECK, 1 + 3 * FIRST_RECHECK, 1 + 7 * FIRST_RECHECK]
    for _ in range(20):  # the wait stops growing at MAX_RECHECK
        picks(chooser, 16, busy, MAX_RECHECK)
    assert picks(chooser, 16, busy, MAX_RECHECK).count(BATCH) == 1


def test_a_recheck_that_wins_switches_back_at_once() -> None:
    chooser = VerifyThreads((BATCH, DECODE))
    picks(chooser, 16, {BATCH: 0.9, DECODE: 0.15}, 2)  # busy: the decode threads win
    quiet = {BATCH: 0.05, DECODE: 0.15}  # the other programs ended
    chosen = picks(chooser, 16, quiet, FIRST_RECHECK + 3)
    assert chosen[:FIRST_RECHECK - 1] == [DECODE] * (FIRST_RECHECK - 1)
    assert chosen[FIRST_RECHECK - 1:] == [BATCH] * 4


def test_one_slow_batch_does_not_flip_the_choice() -> None:
    chooser = VerifyThreads((BATCH, DECODE))
    picks(chooser, 16, {BATCH: 0.05, DECODE: 0.1}, 2)
    chooser.timed(BATCH, 16, 0.14)  # a hiccup: (0.05 + 0.14) / 2 is still below 0.1
    assert chooser.pick(16) == BATCH
    chooser.timed(BATCH, 16, 0.3)  # the machine got busy: the second slow batch flips it
    assert chooser.pick(16) == DECODE


def test_one_choice_is_always_taken() -> None:
    chooser = VerifyThreads((2, 2))  # batch threads set equal to decode threads
    assert chooser.choices == (2,)
    assert picks(chooser, 8, {2: 0.1}, 3 * FIRST_RECHECK) == [2] * (3 * FIRST_RECHECK)


@pytest.mark.parametrize("choices", [(), (0, 1)])
def test_no_usable_thread_count_is_refused(choices: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        VerifyThreads(choices)
