"""The fused engine's state on its own: totals, Spark's two-watermark rule, no-data closings,
and its JSON form (every bit of a float kept)."""

from __future__ import annotations

import pytest

from hhar_stream.processor.fused_state import FusedState, Group

MINUTE = 60_000
WINDOW, DELAY = MINUTE, 30_000


def group(
    start: int,
    count: int = 1,
    latest: int | None = None,
    device: str = "nexus4_1",
    gt: str = "sit",
    x: float = 0.5,
) -> Group:
    """One row of a micro-batch's aggregate: `count` events of window `start` (ms)."""
    return (
        device,
        gt,
        "nexus4",
        "a",
        start,
        count,
        x * count,
        0.0,
        0.0,
        start + 1_000 if latest is None else latest,
    )


def test_totals_add_up_across_batches() -> None:
    first = FusedState().merge(0, [group(0, 2), group(0, 1, gt="walk")], 1, WINDOW, DELAY)
    second = first.merge(1, [group(0, 3)], 0, WINDOW, DELAY)
    assert second.totals[("nexus4_1", "sit", "nexus4", "a")] == [5, 2.5, 0.0, 0.0]
    assert second.totals[("nexus4_1", "walk", "nexus4", "a")] == [1, 0.5, 0.0, 0.0]
    assert second.bad_records == 1 and second.batch_bad_records == 0
    assert first.totals[("nexus4_1", "sit", "nexus4", "a")] == [2, 1.0, 0.0, 0.0]  # unchanged


def test_windows_close_with_the_watermark_of_the_previous_batch() -> None:
    """Spark's rule: batch N closes the windows ended by the watermark computed at the end of
    batch N-1, after merging its own rows into them."""
    first = FusedState().merge(0, [group(0, latest=4 * MINUTE)], 0, WINDOW, DELAY)
    assert first.closed == [] and first.watermark_ms == 4 * MINUTE - DELAY
    second = first.merge(1, [group(0, 2, latest=MINUTE), group(4 * MINUTE)], 0, WINDOW, DELAY)
    # window [0, 1 min) ended before the watermark of 3.5 min: closed with batch 1's rows in it
    assert second.closed == [((0, "nexus4_1", "sit"), 3)]
    assert second.batch_late_rows == 0
    assert second.late_watermark_ms == 4 * MINUTE - DELAY


def test_rows_are_late_against_the_eviction_watermark_of_the_previous_batch() -> None:
    first = FusedState().merge(0, [group(0, latest=4 * MINUTE)], 0, WINDOW, DELAY)
    second = first.merge(1, [group(4 * MINUTE)], 0, WINDOW, DELAY)  # closes window 0
    third = second.merge(2, [group(0, 5), group(MINUTE, 2)], 0, WINDOW, DELAY)
    # window 0 ended at or before 3.5 min (batch 1's eviction watermark): its rows are late;
    # window [1, 2 min) too. Late rows still count in the totals.
    assert third.batch_late_rows == 7 and third.late_rows == 7
    assert (0, "nexus4_1", "sit") not in third.windows
    assert third.totals[("nexus4_1", "sit", "nexus4", "a")][0] == 1 + 1 + 7


def test_one_watermark_would_differ_from_spark() -> None:
    """A row of a window that the *current* batch's watermark passed, but not the previous
    one's, is not late: it is counted in the window, which then closes."""
    first = FusedState().merge(0, [group(5 * MINUTE, latest=5 * MINUTE)], 0, WINDOW, DELAY)
    second = first.merge(1, [group(3 * MINUTE, 4, latest=3 * MINUTE)], 0, WINDOW, DELAY)
    assert second.batch_late_rows == 0
    assert second.closed == [((3 * MINUTE, "nexus4_1", "sit"), 4)]


def test_the_watermark_never_moves_back() -> None:
    first = FusedState().merge(0, [group(0, latest=10 * MINUTE)], 0, WINDOW, DELAY)
    second = first.merge(1, [group(0, latest=MINUTE)], 0, WINDOW, DELAY)
    assert second.watermark_ms == first.watermark_ms == 10 * MINUTE - DELAY


def test_a_no_data_batch_closes_what_the_watermark_passed() -> None:
    first = FusedState().merge(
        0, [group(0), group(2 * MINUTE, latest=4 * MINUTE)], 0, WINDOW, DELAY
    )
    assert first.closing_pending and first.closed == []
    idle = first.close_idle(WINDOW)
    assert idle.closed == [((0, "nexus4_1", "sit"), 1), ((2 * MINUTE, "nexus4_1", "sit"), 1)]
    assert (idle.batch_id, idle.seq) == (0, 1) and not idle.closing_pending
    assert idle.windows == {}
    again = idle.close_idle(WINDOW)
    assert again.closed == []


def test_an_empty_batch_changes_nothing_but_its_id() -> None:
    first = FusedState().merge(0, [group(0, latest=3 * MINUTE)], 0, WINDOW, DELAY)
    empty = first.merge(1, [], 0, WINDOW, DELAY)
    assert empty.totals == first.totals and empty.watermark_ms == first.watermark_ms
    assert empty.batch_id == 1


def test_the_json_form_keeps_every_bit() -> None:
    state = FusedState().merge(0, [group(0, x=0.1), group(MINUTE, x=1 / 3)], 2, WINDOW, DELAY)
    state = state.merge(1, [group(5 * MINUTE, x=2e-300)], 0, WINDOW, DELAY)
    assert FusedState.from_json(state.to_json()) == state


def test_a_state_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        FusedState.from_json('{"format": 99}')
