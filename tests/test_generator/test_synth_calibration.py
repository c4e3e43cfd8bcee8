"""Calibration against the real set's figures (STATS.md §11): at full size and at small sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hhar_stream.dataset.real import REAL_DESCRIBE, REAL_DEVICE_ACTIVITY_COUNTS, REAL_ROWS
from hhar_stream.generator.check import (
    DatasetSummary,
    calibration_rows,
    summarise_folder,
    summarise_plan,
)
from hhar_stream.generator.plan import plan_dataset, scaled_device_activity_counts
from hhar_stream.generator.synth import write_dataset

REAL_TOTAL = sum(REAL_DEVICE_ACTIVITY_COUNTS.values())


def assert_shares_match(summary: DatasetSummary, rows: int) -> None:
    assert summary.rows == rows
    for cell, real in REAL_DEVICE_ACTIVITY_COUNTS.items():
        generated = summary.device_activity[cell] / rows
        assert abs(generated - real / REAL_TOTAL) < 0.005, cell
    for device, count in summary.device_totals().items():
        real = sum(n for (d, _), n in REAL_DEVICE_ACTIVITY_COUNTS.items() if d == device)
        assert abs(count / rows - real / REAL_TOTAL) < 0.005, device


def assert_readings_match(summary: DatasetSummary) -> None:
    for axis in "xyz":
        mean, stddev = REAL_DESCRIBE[axis]
        assert abs(summary.mean(axis) - mean) < 0.01, axis
        assert abs(summary.stddev(axis) / stddev - 1) < 0.10, axis


def test_real_table_is_the_exercises() -> None:
    assert REAL_TOTAL == REAL_ROWS
    assert len(REAL_DEVICE_ACTIVITY_COUNTS) == 14


@pytest.mark.parametrize("rows", [1_000, 12_345, 777_777, REAL_ROWS])
def test_planned_counts_keep_the_real_shares_and_sum_exactly(rows: int) -> None:
    counts = scaled_device_activity_counts(rows)
    assert sum(counts.values()) == rows
    for cell, real in REAL_DEVICE_ACTIVITY_COUNTS.items():
        assert abs(counts[cell] / rows - real / REAL_TOTAL) < 0.005
    plan = plan_dataset(rows, seed=1)
    assert sum(stream.rows for stream in plan.streams) == rows


def test_small_written_set_keeps_the_shares_and_the_readings(tmp_path: Path) -> None:
    rows = 150_000
    write_dataset(tmp_path / "small", rows=rows, seed=3)
    summary = summarise_folder(tmp_path / "small")
    assert_shares_match(summary, rows)
    assert_readings_match(summary)
    index_mean, index_stddev = REAL_DESCRIBE["Index"]
    assert abs(summary.mean("Index") / (index_mean * rows / REAL_ROWS) - 1) < 0.03
    assert abs(summary.stddev("Index") / (index_stddev * rows / REAL_ROWS) - 1) < 0.03
    # The schedule of the sessions stays; only their length shrinks with the size.
    arrival_mean, arrival_stddev = REAL_DESCRIBE["Arrival_Time"]
    assert abs(summary.mean("Arrival_Time") - arrival_mean) < 3_600_000
    assert abs(summary.stddev("Arrival_Time") / arrival_stddev - 1) < 0.05


def test_full_size_matches_the_real_figures() -> None:
    summary = summarise_plan(plan_dataset(REAL_ROWS, seed=42))
    assert summary.rows == REAL_ROWS
    for name, generated, real in calibration_rows(summary):
        if name.startswith("count"):
            assert abs(generated - real) <= 0.005 * real, name
    assert_readings_match(summary)
    for name in ("Index", "Arrival_Time", "Creation_Time"):
        mean, stddev = REAL_DESCRIBE[name]
        assert abs(summary.stddev(name) / stddev - 1) < 0.02, name
        # Index within 1 %; the times within 15 minutes of the real means.
        tolerance = 0.01 * mean if name == "Index" else 15 * 60 * (1e3 if name[0] == "A" else 1e9)
        assert abs(summary.mean(name) - mean) < tolerance, name
