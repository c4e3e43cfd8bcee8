"""The fused engine's state on its own: totals, Spark's two-watermark rule, no-data closings,
what each version changed, and its log in the checkpoint (deltas, snapshots, what a restart
reads back, what it refuses)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hhar_stream.errors import QueryFailedError
from hhar_stream.processor.checkpoints import CheckpointFiles
from hhar_stream.processor.fused_state import (
    EngineState,
    Group,
    SnapshotWriter,
    StateLog,
    apply_entry,
    delta_entry,
    replayed_changes,
)

MINUTE = 60_000
WINDOW, DELAY = MINUTE, 30_000
PARAMETERS = {"window_ms": WINDOW, "stairs_users": ["a", "b"], "stairs_device": "nexus4_1"}


def group(
    start: int,
    count: int = 1,
    latest: int | None = None,
    device: str = "nexus4_1",
    gt: str = "sit",
    x: float = 0.5,
    stairs_user: str | None = None,
) -> Group:
    """One row of a micro-batch's aggregate: `count` events of window `start` (ms)."""
    return (
        start,
        device,
        gt,
        "nexus4",
        stairs_user,
        count,
        x * count,
        0.0,
        0.0,
        start + 1_000 if latest is None else latest,
    )


def merged(*batches: list[Group]) -> EngineState:
    state = EngineState()
    for batch_id, groups in enumerate(batches):
        state.merge(batch_id, groups, 0, WINDOW, DELAY)
    return state


def test_totals_add_up_across_batches_and_each_batch_names_what_it_changed() -> None:
    state = EngineState()
    first = state.merge(0, [group(0, 2), group(0, 1, gt="walk")], 1, WINDOW, DELAY)
    assert first.totals is None  # the first version: every row is new
    second = state.merge(
        1, [group(0, 3), group(0, 2, gt="stairsup", stairs_user="a")], 0, WINDOW, DELAY
    )
    totals = state.totals
    assert totals.cells == {
        ("nexus4_1", "sit"): 5,
        ("nexus4_1", "walk"): 1,
        ("nexus4_1", "stairsup"): 2,
    }
    assert totals.devices == {"nexus4_1": 8} and totals.total == 8
    assert totals.activities == {"sit": 5, "walk": 1, "stairsup": 2}
    assert totals.stats[("sit", "nexus4")] == [5, 2.5, 0.0, 0.0]
    assert totals.stairs == {"a": 2}
    assert second.totals is not None
    assert second.totals.cells == {("nexus4_1", "sit"), ("nexus4_1", "stairsup")}
    assert second.totals.stats == {("sit", "nexus4"), ("stairsup", "nexus4")}
    assert second.totals.stairs == {"a"}
    assert second.totals.devices == {"nexus4_1"}
    assert state.bad_records == 1 and second.bad_records == 0


def test_windows_close_with_the_watermark_of_the_previous_batch() -> None:
    """Spark's rule: batch N closes the windows ended by the watermark computed at the end of
    batch N-1, after merging its own rows into them."""
    state = EngineState()
    assert state.merge(0, [group(0, latest=4 * MINUTE)], 0, WINDOW, DELAY).closed == []
    assert state.watermark_ms == 4 * MINUTE - DELAY
    second = state.merge(1, [group(0, 2, latest=MINUTE), group(4 * MINUTE)], 0, WINDOW, DELAY)
    # window [0, 1 min) ended before the watermark of 3.5 min: closed with batch 1's rows in it
    assert second.closed == [(0, "nexus4_1", "sit", 3)]
    assert second.late_rows == 0
    assert state.late_watermark_ms == 4 * MINUTE - DELAY


def test_rows_are_late_against_the_eviction_watermark_of_the_previous_batch() -> None:
    state = merged([group(0, latest=4 * MINUTE)], [group(4 * MINUTE)])  # batch 1 closes window 0
    third = state.merge(2, [group(0, 5), group(MINUTE, 2)], 0, WINDOW, DELAY)
    # window 0 ended at or before 3.5 min (batch 1's eviction watermark): its rows are late;
    # window [1, 2 min) too. Late rows still count in the totals.
    assert third.late_rows == 7 and state.late_rows == 7
    assert 0 not in state.windows and MINUTE not in state.windows
    assert state.totals.cells[("nexus4_1", "sit")] == 1 + 1 + 7


def test_one_watermark_would_differ_from_spark() -> None:
    """A row of a window that the *current* batch's watermark passed, but not the previous
    one's, is not late: it is counted in the window, which then closes."""
    state = merged([group(5 * MINUTE, latest=5 * MINUTE)])
    second = state.merge(1, [group(3 * MINUTE, 4, latest=3 * MINUTE)], 0, WINDOW, DELAY)
    assert second.late_rows == 0
    assert second.closed == [(3 * MINUTE, "nexus4_1", "sit", 4)]


def test_the_watermark_never_moves_back() -> None:
    state = merged([group(0, latest=10 * MINUTE)], [group(0, latest=MINUTE)])
    assert state.watermark_ms == 10 * MINUTE - DELAY


def test_a_no_data_batch_closes_what_the_watermark_passed() -> None:
    state = merged([group(0), group(2 * MINUTE, latest=4 * MINUTE)])
    assert state.closing_pending
    idle = state.close_idle(WINDOW)
    assert idle.closed == [(0, "nexus4_1", "sit", 1), (2 * MINUTE, "nexus4_1", "sit", 1)]
    assert (state.batch_id, state.seq) == (0, 1) and not state.closing_pending
    assert state.windows == {} and state.open_windows == 0
    assert state.close_idle(WINDOW).closed == []


def test_an_empty_batch_changes_no_total_but_closes_what_the_watermark_passed() -> None:
    state = merged([group(0, latest=3 * MINUTE)])
    before = state.copy()
    changes = state.merge(1, [], 0, WINDOW, DELAY)
    assert not changes.totals and changes.closed == [(0, "nexus4_1", "sit", 1)]
    assert state.totals == before.totals and state.watermark_ms == before.watermark_ms
    assert state.batch_id == 1


def test_the_snapshot_keeps_every_bit_and_a_copy_shares_nothing() -> None:
    state = merged(
        [group(0, x=0.1), group(MINUTE, x=1 / 3, gt="walk")], [group(5 * MINUTE, x=2e-300)]
    )
    assert EngineState.from_snapshot(json.loads(json.dumps(state.to_snapshot()))) == state
    copy = state.copy()
    state.merge(2, [group(5 * MINUTE, 4)], 0, WINDOW, DELAY)
    assert copy != state and copy.totals.stats[("sit", "nexus4")][0] == 2


def test_replaying_the_log_entries_gives_the_same_state_and_changes() -> None:
    live, replayed = EngineState(), EngineState()
    batches = [[group(0, latest=4 * MINUTE)], [group(0, 2), group(4 * MINUTE, gt="walk")], []]
    entries = []
    for batch_id, groups in enumerate(batches):
        changes = live.merge(batch_id, groups, batch_id, WINDOW, DELAY)
        entries.append(json.loads(json.dumps(delta_entry(live, changes, groups))))
    changes = live.close_idle(WINDOW)
    entries.append(json.loads(json.dumps(delta_entry(live, changes))))
    for entry in entries:
        apply_entry(replayed, entry, WINDOW, DELAY)
    assert replayed == live
    again = replayed_changes(entries[1:2])
    assert again.totals is not None and again.totals.cells == {
        ("nexus4_1", "sit"),
        ("nexus4_1", "walk"),
    }
    assert again.closed == [[0, "nexus4_1", "sit", 3]] and again.bad_records == 1
    assert replayed_changes(entries[:1]).totals is None  # batch 0: every key


@pytest.mark.spark
def test_the_log_reads_back_the_newest_state_from_snapshot_and_deltas(
    spark, tmp_path: Path
) -> None:
    files = CheckpointFiles(spark, tmp_path)
    log = StateLog(files, "fused", PARAMETERS)
    state = EngineState()
    for batch_id in range(5):
        groups = [group(batch_id * MINUTE, device=f"d{batch_id}", latest=(batch_id + 2) * MINUTE)]
        log.append(delta_entry(state, state.merge(batch_id, groups, 0, WINDOW, DELAY), groups))
        if batch_id in (1, 3):
            log.write_snapshot(state.copy())
    folder = tmp_path / "fused" / "engine"
    # After the second snapshot: the previous snapshot and the deltas after it stay.
    assert sorted(p.name for p in folder.iterdir()) == [
        "1.0.snapshot.json.gz",
        "2.0.delta.json.gz",
        "3.0.delta.json.gz",
        "3.0.snapshot.json.gz",
        "4.0.delta.json.gz",
    ]
    reopened = StateLog(CheckpointFiles(spark, tmp_path), "fused", PARAMETERS)
    assert reopened.load(WINDOW, DELAY) == state
    assert [e["batch_id"] for e in reopened.entries_of(3)] == [3]
    document = json.loads(gzip.decompress((folder / "4.0.delta.json.gz").read_bytes()))
    assert document["parameters"] == PARAMETERS and len(document["groups"]) == 1


@pytest.mark.spark
def test_snapshots_are_written_in_the_background_once_the_deltas_outweigh_them(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hhar_stream.processor.fused_state.SNAPSHOT_MIN_BYTES", 1)
    log = StateLog(CheckpointFiles(spark, tmp_path), "fused", PARAMETERS)
    writer = SnapshotWriter(log)
    state = EngineState()
    assert not writer.offer(state)  # nothing logged yet
    groups = [group(0)]
    log.append(delta_entry(state, state.merge(0, groups, 0, WINDOW, DELAY), groups))
    assert writer.offer(state)
    writer.wait()
    assert writer.failure is None and [v for v, _ in writer.written] == [(0, 0)]
    assert not log.snapshot_due()  # no delta since


@pytest.mark.spark
def test_a_checkpoint_of_the_earlier_layout_or_other_settings_is_refused(
    spark, tmp_path: Path
) -> None:
    files = CheckpointFiles(spark, tmp_path)
    log = StateLog(files, "fused", PARAMETERS)
    state = EngineState()
    log.append(delta_entry(state, state.merge(0, [group(0)], 0, WINDOW, DELAY), [group(0)]))
    other = PARAMETERS | {"stairs_users": ["c"]}
    with pytest.raises(
        QueryFailedError, match=r"stairs_users \['a', 'b'\] \(now \['c'\]\).*--reset"
    ):
        StateLog(files, "fused", other).load(WINDOW, DELAY)
    files.write_text("old/engine/3.0.json", "{}")
    with pytest.raises(QueryFailedError, match="earlier hhar-stream.*--reset"):
        StateLog(files, "old", PARAMETERS).check_layout()


@pytest.mark.spark
def test_a_write_cut_short_is_removed_and_never_read(spark, tmp_path: Path) -> None:
    files = CheckpointFiles(spark, tmp_path)
    files.write_text("fused/engine/.1.0.delta.json.gz.0a1b.tmp", "cut")
    log = StateLog(files, "fused", PARAMETERS)
    assert files.names("fused/engine") == [] and log.load(WINDOW, DELAY) == EngineState()
