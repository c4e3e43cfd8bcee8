"""The queries in plain Python, over the totals the fused engine keeps on the driver.

The fused engine does not keep one entry per event or per fine key: every query but
``windowed_activity`` is a sum or a count at a coarser grain, and the engine keeps exactly those
(`Totals`): the count per (Device, gt) with its per-Device and per-gt subtotals and the grand
total, count and sums of x, y, z per (gt, Model), and the stairs count per User. A micro-batch
adds to a few of them, and `Changes` names which; each function here gives the rows of its query
for the keys that changed (or for every key, with ``changes=None``), so that a batch costs what
it touched, not what the engine has seen.

Each function gives the same rows as its namesake in `queries` (the reference, run by Spark)
over the same events: a property test holds them equal, and another holds that the rows written
batch by batch, latest per key, equal the rows of the final totals. Rows are dicts keyed by the
result records' wire names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Cell = tuple[str, str]
"""(Device, gt)."""

StatsKey = tuple[str, str]
"""(gt, Model)."""

Sums = list[float]
"""[count, x_sum, y_sum, z_sum] of the valid events of one (gt, Model)."""

Row = dict[str, Any]

HistoricalStats = Mapping[tuple[str, str], Row]
"""(gt, Model) -> ``historical_x_avg``, ..., ``historical_count`` (`queries.historical_stats`)."""


@dataclass
class Totals:
    """Counts and sums of the valid events, at the grains the queries need."""

    cells: dict[Cell, int] = field(default_factory=dict)
    """Events per (Device, gt)."""
    devices: dict[str, int] = field(default_factory=dict)
    """Events per Device (the sum of its cells)."""
    activities: dict[str, int] = field(default_factory=dict)
    """Events per gt (the sum of its cells)."""
    total: int = 0
    stats: dict[StatsKey, Sums] = field(default_factory=dict)
    """[count, x_sum, y_sum, z_sum] per (gt, Model)."""
    stairs: dict[str, int] = field(default_factory=dict)
    """Stairs events per User, of the users and device `stairs_by_user` counts."""

    def add(
        self,
        device: str,
        gt: str,
        model: str,
        stairs_user: str | None,
        count: int,
        sums: tuple[float, float, float],
        changes: Changes,
    ) -> None:
        """Add `count` events of one (Device, gt, Model) with their x, y, z `sums`;
        `stairs_user` is their User when `stairs_by_user` counts them. The keys touched are
        added to `changes`."""
        cell = (device, gt)
        self.cells[cell] = self.cells.get(cell, 0) + count
        self.devices[device] = self.devices.get(device, 0) + count
        self.activities[gt] = self.activities.get(gt, 0) + count
        self.total += count
        key = (gt, model)
        stats = self.stats.get(key)
        if stats is None:
            self.stats[key] = [count, *sums]
        else:
            stats[0] += count
            stats[1] += sums[0]
            stats[2] += sums[1]
            stats[3] += sums[2]
        changes.cells.add(cell)
        changes.stats.add(key)
        if stairs_user is not None:
            self.stairs[stairs_user] = self.stairs.get(stairs_user, 0) + count
            changes.stairs.add(stairs_user)

    def copy(self) -> Totals:
        """A copy that shares nothing mutable with this one."""
        return Totals(
            cells=dict(self.cells),
            devices=dict(self.devices),
            activities=dict(self.activities),
            total=self.total,
            stats={key: list(sums) for key, sums in self.stats.items()},
            stairs=dict(self.stairs),
        )

    @classmethod
    def of_cells(
        cls,
        cells: Iterable[tuple[Cell, int]],
        stats: Mapping[StatsKey, Sums],
        stairs: Mapping[str, int],
    ) -> Totals:
        """Totals from their stored parts (the subtotals are sums of the cells)."""
        totals = cls(stats={key: list(sums) for key, sums in stats.items()}, stairs=dict(stairs))
        for (device, gt), count in cells:
            totals.cells[(device, gt)] = count
            totals.devices[device] = totals.devices.get(device, 0) + count
            totals.activities[gt] = totals.activities.get(gt, 0) + count
            totals.total += count
        return totals


@dataclass
class Changes:
    """The keys of `Totals` a micro-batch changed."""

    cells: set[Cell] = field(default_factory=set)
    stats: set[StatsKey] = field(default_factory=set)
    stairs: set[str] = field(default_factory=set)

    @property
    def devices(self) -> set[str]:
        """The Devices whose subtotal changed."""
        return {device for device, _ in self.cells}

    @property
    def activities(self) -> set[str]:
        """The gts whose subtotal changed."""
        return {gt for _, gt in self.cells}

    def __bool__(self) -> bool:
        return bool(self.cells or self.stats or self.stairs)


def _keys(table: Mapping[Any, Any], changed: set[Any] | None) -> Iterable[Any]:
    return table if changed is None else changed


def total_count(totals: Totals, changes: Changes | None = None) -> list[Row]:
    """One row: the number of events (0 before the first, as ``groupBy().count()`` says)."""
    if changes is not None and not changes.cells:
        return []
    return [{"count": totals.total}]


def device_activity(totals: Totals, changes: Changes | None = None) -> list[Row]:
    """Events per (Device, gt)."""
    cells = _keys(totals.cells, None if changes is None else changes.cells)
    return [{"Device": d, "gt": g, "count": totals.cells[(d, g)]} for d, g in cells]


def _subtotals(totals: Totals, changes: Changes | None, with_gt_subtotals: bool) -> list[Row]:
    everything = changes is None
    cells = _keys(totals.cells, None if changes is None else changes.cells)
    devices = _keys(totals.devices, None if changes is None else changes.devices)
    rows = [
        {"Device": d, "gt": g, "grouping_id": 0, "count": totals.cells[(d, g)]} for d, g in cells
    ]
    rows += [
        {"Device": d, "gt": None, "grouping_id": 1, "count": totals.devices[d]} for d in devices
    ]
    if with_gt_subtotals:
        gts = _keys(totals.activities, None if changes is None else changes.activities)
        rows += [
            {"Device": None, "gt": g, "grouping_id": 2, "count": totals.activities[g]} for g in gts
        ]
    # A grouping set over no rows has no row, the grand total included.
    if totals.cells and (everything or (changes is not None and changes.cells)):
        rows.append({"Device": None, "gt": None, "grouping_id": 3, "count": totals.total})
    return rows


def device_activity_cube(totals: Totals, changes: Changes | None = None) -> list[Row]:
    """``cube(Device, gt)`` counts; ``grouping_id``: 1 Device subtotal, 2 gt subtotal, 3 all."""
    return _subtotals(totals, changes, with_gt_subtotals=True)


def device_activity_rollup(totals: Totals, changes: Changes | None = None) -> list[Row]:
    """``rollup(Device, gt)`` counts; ``grouping_id``: 1 Device subtotal, 3 all."""
    return _subtotals(totals, changes, with_gt_subtotals=False)


def stairs_by_user(totals: Totals, changes: Changes | None = None) -> list[Row]:
    """Stairs events (gt contains "stairs") of the chosen users on the chosen device, per
    User (the engine's aggregate applies the filter: `queries.stairs_user`)."""
    users = _keys(totals.stairs, None if changes is None else changes.stairs)
    return [{"User": user, "count": totals.stairs[user]} for user in users]


def activity_stats(totals: Totals, changes: Changes | None = None) -> list[Row]:
    """Mean x, y, z and the count per (gt, Model)."""
    rows = []
    for gt, model in _keys(totals.stats, None if changes is None else changes.stats):
        n, sx, sy, sz = totals.stats[(gt, model)]
        rows.append(
            {
                "gt": gt,
                "Model": model,
                "x_avg": sx / n,
                "y_avg": sy / n,
                "z_avg": sz / n,
                "count": int(n),
            }
        )
    return rows


HISTORICAL_FIELDS = ("historical_x_avg", "historical_y_avg", "historical_z_avg", "historical_count")


def live_vs_historical(
    totals: Totals, historical: HistoricalStats, changes: Changes | None = None
) -> list[Row]:
    """`activity_stats` beside the history's figures of the same (gt, Model) (null if none)."""
    rows = []
    for row in activity_stats(totals, changes):
        past = historical.get((row["gt"], row["Model"]), {})
        rows.append(row | {name: past.get(name) for name in HISTORICAL_FIELDS})
    return rows
