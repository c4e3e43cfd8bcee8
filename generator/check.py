"""Figures of a generated data set set against the real ones (STATS.md §11).

`summarise_folder` reads a data folder's part files (the text as written), `summarise_plan`
takes the rows straight from the generator (no text, fast); both give a `DatasetSummary`
whose `calibration_rows` compare it with the real Device x gt counts and describe() figures.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset.real import REAL_DESCRIBE, REAL_DEVICE_ACTIVITY_COUNTS, REAL_ROWS
from .plan import ACTIVITIES, GRID, DatasetPlan
from .stream import merged_chunks

NUMERIC = ("Arrival_Time", "Creation_Time", "Index", "x", "y", "z")
_SHIFT = {"Arrival_Time": 1.4247e12, "Creation_Time": 1.4247e18}


@dataclass
class DatasetSummary:
    """Counts and describe() moments of a data set, accumulated column by column."""

    rows: int = 0
    device_activity: Counter[tuple[str, str]] = field(default_factory=Counter)
    _sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(NUMERIC, 0.0))
    _squares: dict[str, float] = field(default_factory=lambda: dict.fromkeys(NUMERIC, 0.0))

    def add(
        self, device_activity: Counter[tuple[str, str]], columns: dict[str, np.ndarray]
    ) -> None:
        """Add rows: their count per (Device, gt) and their numeric columns (by wire name)."""
        self.device_activity.update(device_activity)
        for name in NUMERIC:
            values = np.asarray(columns[name], dtype=np.float64) - _SHIFT.get(name, 0.0)
            self._sums[name] += float(values.sum())
            self._squares[name] += float((values * values).sum())
        self.rows += len(columns[NUMERIC[0]])

    def mean(self, name: str) -> float:
        """Mean of a numeric column."""
        return self._sums[name] / self.rows + _SHIFT.get(name, 0.0)

    def stddev(self, name: str) -> float:
        """Sample standard deviation of a numeric column (as Spark's describe())."""
        mean = self._sums[name] / self.rows
        variance = (self._squares[name] - self.rows * mean * mean) / (self.rows - 1)
        return float(np.sqrt(max(variance, 0.0)))

    def device_totals(self) -> Counter[str]:
        """Rows per Device."""
        totals: Counter[str] = Counter()
        for (device, _), count in self.device_activity.items():
            totals[device] += count
        return totals


def summarise_plan(plan: DatasetPlan) -> DatasetSummary:
    """Summary of the rows the generator makes for `plan`, without writing text."""
    summary = DatasetSummary()
    labels = [(stream.device, gt) for stream in plan.streams for gt in ACTIVITIES]
    for chunk in merged_chunks(plan):
        counts: Counter[tuple[str, str]] = Counter()
        for label, count in enumerate(np.bincount(chunk.label, minlength=len(labels)).tolist()):
            counts[labels[label]] += count
        summary.add(
            +counts,
            {
                "Arrival_Time": chunk.arrival_ms,
                "Creation_Time": chunk.creation_ns,
                "Index": chunk.sample_index,
                "x": chunk.kx / GRID,
                "y": chunk.ky / GRID,
                "z": chunk.kz / GRID,
            },
        )
    return summary


def summarise_folder(folder: Path, batch: int = 100_000) -> DatasetSummary:
    """Summary of the part files of a data folder (files whose names start with _ or . are
    skipped, as Spark does)."""
    summary = DatasetSummary()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")) or not path.is_file():
            continue
        with path.open(encoding="utf-8") as lines:
            rows: list[dict[str, Any]] = []
            for line in lines:
                rows.append(json.loads(line))
                if len(rows) == batch:
                    _add_rows(summary, rows)
                    rows = []
            if rows:
                _add_rows(summary, rows)
    return summary


def _add_rows(summary: DatasetSummary, rows: list[dict[str, Any]]) -> None:
    summary.add(
        Counter((row["Device"], row["gt"]) for row in rows),
        {name: np.array([row[name] for row in rows], dtype=np.float64) for name in NUMERIC},
    )


def calibration_rows(summary: DatasetSummary) -> list[tuple[str, float, float]]:
    """(figure, generated, real) for every calibrated figure: the Device x gt counts, the
    Device totals and describe()'s mean and stddev; counts and Index are scaled to the
    summary's size."""
    scale = summary.rows / REAL_ROWS
    table: list[tuple[str, float, float]] = []
    for (device, gt), real in sorted(REAL_DEVICE_ACTIVITY_COUNTS.items(), key=lambda i: -i[1]):
        table.append((f"count {device} {gt}", summary.device_activity[(device, gt)], real * scale))
    real_totals: Counter[str] = Counter()
    for (device, _), real in REAL_DEVICE_ACTIVITY_COUNTS.items():
        real_totals[device] += real
    totals = summary.device_totals()
    for device in sorted(real_totals):
        table.append((f"count {device}", totals[device], real_totals[device] * scale))
    for name in NUMERIC:
        mean, stddev = REAL_DESCRIBE[name]
        if name == "Index":  # counts rows per (User, Device): it scales with the size
            mean, stddev = mean * scale, stddev * scale
        table.append((f"mean {name}", summary.mean(name), mean))
        table.append((f"stddev {name}", summary.stddev(name), stddev))
    return table
