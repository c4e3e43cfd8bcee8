"""The queries in plain Python, over the fine totals the fused engine keeps on the driver.

The fused engine keeps, per (Device, gt, Model, User), the count of valid events and the sums
of x, y and z (`FineTotals`): a few hundred entries for HHAR. Every query but
``windowed_activity`` is a function of those totals, and each function here gives the same
rows as its namesake in `queries` (the reference, run by Spark) over the same events: a
property test holds them equal. Rows are dicts keyed by the result records' wire names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

FineKey = tuple[str, str, str, str]
"""(Device, gt, Model, User): `queries.FINE_GRAIN`."""

Sums = list[float]
"""[count, x_sum, y_sum, z_sum] of the valid events of one fine key."""

FineTotals = Mapping[FineKey, Sums]

Row = dict[str, Any]

HistoricalStats = Mapping[tuple[str, str], Row]
"""(gt, Model) -> ``historical_x_avg``, ..., ``historical_count`` (`queries.historical_stats`)."""


def total_count(totals: FineTotals) -> list[Row]:
    """One row: the number of events (0 before the first, as ``groupBy().count()`` says)."""
    return [{"count": int(sum(sums[0] for sums in totals.values()))}]


def _per_device_and_gt(totals: FineTotals) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for (device, gt, _, _), sums in totals.items():
        counts[(device, gt)] += int(sums[0])
    return counts


def device_activity(totals: FineTotals) -> list[Row]:
    """Events per (Device, gt)."""
    return [
        {"Device": device, "gt": gt, "count": count}
        for (device, gt), count in _per_device_and_gt(totals).items()
    ]


def _subtotals(totals: FineTotals, with_gt_subtotals: bool) -> list[Row]:
    cells = _per_device_and_gt(totals)
    per_device: dict[str, int] = defaultdict(int)
    per_gt: dict[str, int] = defaultdict(int)
    for (device, gt), count in cells.items():
        per_device[device] += count
        per_gt[gt] += count
    rows = [{"Device": d, "gt": g, "grouping_id": 0, "count": n} for (d, g), n in cells.items()]
    rows += [{"Device": d, "gt": None, "grouping_id": 1, "count": n} for d, n in per_device.items()]
    if with_gt_subtotals:
        rows += [{"Device": None, "gt": g, "grouping_id": 2, "count": n} for g, n in per_gt.items()]
    if cells:  # a grouping set over no rows has no row, the grand total included
        rows.append({"Device": None, "gt": None, "grouping_id": 3, "count": sum(cells.values())})
    return rows


def device_activity_cube(totals: FineTotals) -> list[Row]:
    """``cube(Device, gt)`` counts; ``grouping_id``: 1 Device subtotal, 2 gt subtotal, 3 all."""
    return _subtotals(totals, with_gt_subtotals=True)


def device_activity_rollup(totals: FineTotals) -> list[Row]:
    """``rollup(Device, gt)`` counts; ``grouping_id``: 1 Device subtotal, 3 all."""
    return _subtotals(totals, with_gt_subtotals=False)


def stairs_by_user(
    totals: FineTotals, users: Collection[str] = ("a", "b"), device: str = "nexus4_1"
) -> list[Row]:
    """Stairs events (gt contains "stairs") of `users` on `device`, per User."""
    counts: dict[str, int] = defaultdict(int)
    for (event_device, gt, _, user), sums in totals.items():
        if "stairs" in gt and user in users and event_device == device:
            counts[user] += int(sums[0])
    return [{"User": user, "count": count} for user, count in counts.items()]


def _stats(totals: FineTotals) -> dict[tuple[str, str], Sums]:
    grouped: dict[tuple[str, str], Sums] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for (_, gt, model, _), sums in totals.items():
        group = grouped[(gt, model)]
        for position, value in enumerate(sums):
            group[position] += value
    return grouped


def activity_stats(totals: FineTotals) -> list[Row]:
    """Mean x, y, z and the count per (gt, Model)."""
    return [
        {
            "gt": gt,
            "Model": model,
            "x_avg": sx / n,
            "y_avg": sy / n,
            "z_avg": sz / n,
            "count": int(n),
        }
        for (gt, model), (n, sx, sy, sz) in _stats(totals).items()
    ]


HISTORICAL_FIELDS = ("historical_x_avg", "historical_y_avg", "historical_z_avg", "historical_count")


def live_vs_historical(totals: FineTotals, historical: HistoricalStats) -> list[Row]:
    """`activity_stats` beside the history's figures of the same (gt, Model) (null if none)."""
    rows = []
    for row in activity_stats(totals):
        past = historical.get((row["gt"], row["Model"]), {})
        rows.append(row | {name: past.get(name) for name in HISTORICAL_FIELDS})
    return rows
