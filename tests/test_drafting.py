"""Prompt-lookup drafting (engine.drafting): pure Python, no model."""

from __future__ import annotations

import pytest

from llama_tui.engine.drafting import DraftPolicy, PromptLookup, grown

# -- the lookup ------------------------------------------------------------------------------


def test_drafts_what_followed_the_last_tokens_earlier() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 5, 6, 9, 9])
    lookup.extend([2, 3])
    assert lookup.draft(3) == ([4, 5, 6], 2)


def test_the_longest_match_wins_over_a_later_shorter_one() -> None:
    # "7 3" is followed by 4 early on; a lone 3 is followed by 8 later.
    lookup = PromptLookup([7, 3, 4, 4, 4, 3, 8])
    lookup.extend([7, 3])
    assert lookup.draft(2) == ([4, 4], 2)


def test_the_latest_occurrence_of_an_ngram_wins() -> None:
    lookup = PromptLookup([5, 1, 5, 2])
    lookup.append(5)
    assert lookup.draft(1) == ([2], 1)


def test_longer_ngrams_than_max_are_not_looked_up() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 10, 9, 2, 3, 4, 11], max_ngram=3)
    lookup.extend([1, 2, 3, 4])
    # 1 2 3 4 was followed by 10, but only "2 3 4" (last followed by 11) is looked up.
    assert lookup.draft(1) == ([11], 3)


def test_no_match_no_draft() -> None:
    lookup = PromptLookup([1, 2, 3])
    lookup.append(4)
    assert lookup.draft(5) == ([], 0)
    assert PromptLookup().draft(5) == ([], 0)


def test_the_conversation_never_matches_its_own_end() -> None:
    lookup = PromptLookup([1, 2, 3])
    assert lookup.draft(4) == ([], 0)  # "3" (and "2 3", "1 2 3") never occurred before the end


def test_min_ngram_skips_short_matches() -> None:
    lookup = PromptLookup([1, 2, 9, 3])
    lookup.append(2)
    assert lookup.draft(1) == ([9], 1)
    assert lookup.draft(1, min_ngram=2) == ([], 0)


def test_a_draft_that_reaches_the_end_repeats_the_period() -> None:
    lookup = PromptLookup([7, 8, 9, 7, 8, 9, 7])
    lookup.append(8)
    # The last 5 tokens, 7 8 9 7 8, were followed by 9 7 8 (the end): the text repeats
    # every 3 tokens, and the draft goes on repeating it.
    assert lookup.draft(7) == ([9, 7, 8, 9, 7, 8, 9], 5)


def test_a_limit_below_one_drafts_nothing() -> None:
    lookup = PromptLookup([1, 2, 1])
    assert lookup.draft(0) == ([], 0)


def test_max_ngram_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PromptLookup(max_ngram=0)


# -- the policy ------------------------------------------------------------------------------


def test_off_never_drafts_and_on_always_does() -> None:
    off, on = DraftPolicy("off"), DraftPolicy("on")
    for _ in range(20):
        off.watched(True)
        on.record(7, 0)
    assert off.limit() == 0
    assert on.limit() == on.start_draft  # failures shorten the draft but never stop "on"


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="speculative must be one of off, on, auto"):
        DraftPolicy("sometimes")  # type: ignore[arg-type]


def test_length_grows_while_drafts_are_accepted_whole_and_resets_otherwise() -> None:
    policy = DraftPolicy("on")
    assert policy.limit() == 7
    policy.record(7, 7)
    assert policy.limit() == 15
    policy.record(15, 15)
    assert policy.limit() == 15  # max_draft
    policy.record(15, 9)
    assert policy.limit() == 7
    assert [grown(n) for n in (3, 7)] == [7, 15]  # a verify batch stays a multiple of 4


def test_auto_watches_until_the_guesses_keep_coming_true() -> None:
    policy = DraftPolicy("auto")
    assert policy.limit() == 0
    for _ in range(policy.arm_after - 1):
        policy.watched(True)
    policy.watched(False)  # the streak starts again
    for _ in range(policy.arm_after - 1):
        policy.watched(True)
    assert policy.limit() == 0
    policy.watched(True)
    assert policy.limit() == policy.start_draft


def arm(policy: DraftPolicy) -> None:
    while not policy.drafting:
        policy.watched(True)


def test_auto_stops_after_a_failed_draft_and_then_waits_longer() -> None:
    policy = DraftPolicy("auto")
    arm(policy)
    policy.record(7, 0)  # prose: the first draft fails
    assert policy.limit() == 0
    assert policy.needed == 2 * policy.arm_after  # that stretch did not pay: wait longer
    for _ in range(10):
        arm(policy)
        policy.record(7, 1)
    assert policy.needed == policy.max_arm_after


def test_auto_keeps_drafting_through_one_failure_in_a_run_of_copied_text() -> None:
    policy = DraftPolicy("auto")
    arm(policy)
    for _ in range(4):
        policy.record(policy.limit(), policy.limit())
    policy.record(15, 0)  # the reply departs from the source for a moment
    assert policy.drafting and policy.limit() == 7
    policy.record(7, 0)
    policy.record(7, 0)  # ...and does not come back
    assert not policy.drafting
    assert policy.needed == policy.arm_after  # the stretch paid: retry as soon as before


def test_auto_keeps_drafting_while_most_of_each_draft_is_accepted() -> None:
    policy = DraftPolicy("auto")
    arm(policy)
    for _ in range(50):
        policy.record(7, 5)
    assert policy.drafting
