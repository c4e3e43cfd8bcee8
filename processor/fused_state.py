"""The fused engine's state: fine totals, open event-time windows and the watermark, kept on
the driver and written to the checkpoint after every micro-batch.

`FusedState` is pure Python: it merges a micro-batch's aggregates the way Spark's stateful
operators would (Spark 3.4+, SPARK-40925, for ``windowed_activity``'s append mode):

- a row is *late* when its window ended at or before the **previous** batch's watermark (the
  eviction watermark of batch N-1): it still counts in the totals, as Spark's queries without a
  watermark count it, but not in its window;
- after the batch's rows are merged, the windows that ended at or before the batch's own
  watermark (computed at the end of the previous batch) are closed: emitted once, then dropped;
- then the watermark moves to max(event time seen) - delay; it never moves back.

When no data arrives, Spark runs a "no-data batch" to close the windows the moved watermark
has passed; `FusedState.close_idle` is that step.

`FusedStateFiles` keeps one file per state version in the query's checkpoint folder
(``engine/<batch>.<seq>.json``: seq 0 after merging batch ``<batch>``, 1, 2... after idle
closings that followed it), written atomically before any result of that version is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import QueryFailedError
from .checkpoints import ENGINE_STATE_DIR, CheckpointFiles
from .derive import FineKey, Sums

WindowKey = tuple[int, str, str]
"""(window start in epoch ms, Device, gt)."""

Group = tuple[str, str, str, str, int, int, float, float, float, int]
"""One row of a micro-batch's aggregate: Device, gt, Model, User, window start (ms), count,
x_sum, y_sum, z_sum, max Arrival_Time (ms)."""

FORMAT = 1
"""Version of the state files' layout."""


@dataclass
class FusedState:
    """The fused engine's state after one micro-batch (or an idle closing that followed it)."""

    batch_id: int = -1
    seq: int = 0
    totals: dict[FineKey, Sums] = field(default_factory=dict)
    windows: dict[WindowKey, int] = field(default_factory=dict)
    watermark_ms: int = 0
    """Eviction watermark of the next batch."""
    late_watermark_ms: int = 0
    """Eviction watermark of the previous batch: rows of windows ending by then are late."""
    max_event_ms: int | None = None
    late_rows: int = 0
    bad_records: int = 0
    closed: list[tuple[WindowKey, int]] = field(default_factory=list)
    """The windows this version closed (and emits), with their counts."""
    batch_bad_records: int = 0
    """Bad records of batch `batch_id` (a replayed batch writes them again)."""
    batch_late_rows: int = 0
    """Late rows of batch `batch_id`."""

    def merge(
        self,
        batch_id: int,
        groups: Iterable[Group],
        bad_records: int,
        window_ms: int,
        delay_ms: int,
    ) -> FusedState:
        """The state after micro-batch `batch_id`: its aggregate `groups` merged, its windows
        closed, the watermark moved. `self` is left as it was."""
        totals = {key: list(sums) for key, sums in self.totals.items()}
        windows = dict(self.windows)
        late = 0
        max_event = self.max_event_ms
        for device, gt, model, user, start, count, x_sum, y_sum, z_sum, latest in groups:
            sums = totals.get((device, gt, model, user))
            if sums is None:
                totals[(device, gt, model, user)] = [count, x_sum, y_sum, z_sum]
            else:
                sums[0] += count
                sums[1] += x_sum
                sums[2] += y_sum
                sums[3] += z_sum
            if start + window_ms <= self.late_watermark_ms:
                late += count
            else:
                windows[(start, device, gt)] = windows.get((start, device, gt), 0) + count
            max_event = latest if max_event is None else max(max_event, latest)
        closed = _close(windows, self.watermark_ms, window_ms)
        watermark = self.watermark_ms
        if max_event is not None:
            watermark = max(watermark, max_event - delay_ms)
        return FusedState(
            batch_id=batch_id,
            seq=0,
            totals=totals,
            windows=windows,
            watermark_ms=watermark,
            late_watermark_ms=self.watermark_ms,
            max_event_ms=max_event,
            late_rows=self.late_rows + late,
            bad_records=self.bad_records + bad_records,
            closed=closed,
            batch_bad_records=bad_records,
            batch_late_rows=late,
        )

    @property
    def closing_pending(self) -> bool:
        """True when the watermark moved since the last closing (Spark would run a no-data
        batch to close the windows it passed)."""
        return self.watermark_ms > self.late_watermark_ms

    def close_idle(self, window_ms: int) -> FusedState:
        """The state after a no-data batch: the windows the watermark passed closed."""
        windows = dict(self.windows)
        closed = _close(windows, self.watermark_ms, window_ms)
        return replace(
            self,
            seq=self.seq + 1,
            windows=windows,
            closed=closed,
            late_watermark_ms=self.watermark_ms,
            batch_bad_records=0,
            batch_late_rows=0,
        )

    def to_json(self) -> str:
        """The state as one JSON document (floats keep every bit)."""
        return json.dumps(
            {
                "format": FORMAT,
                "batch_id": self.batch_id,
                "seq": self.seq,
                "totals": [[*key, *sums] for key, sums in self.totals.items()],
                "windows": [[*key, count] for key, count in self.windows.items()],
                "watermark_ms": self.watermark_ms,
                "late_watermark_ms": self.late_watermark_ms,
                "max_event_ms": self.max_event_ms,
                "late_rows": self.late_rows,
                "bad_records": self.bad_records,
                "closed": [[*key, count] for key, count in self.closed],
                "batch_bad_records": self.batch_bad_records,
                "batch_late_rows": self.batch_late_rows,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> FusedState:
        """The state `to_json` wrote."""
        data: dict[str, Any] = json.loads(text)
        if data.get("format") != FORMAT:
            msg = f"fused engine state of format {data.get('format')!r}, expected {FORMAT}"
            raise ValueError(msg)
        return cls(
            batch_id=data["batch_id"],
            seq=data["seq"],
            totals={tuple(row[:4]): list(row[4:]) for row in data["totals"]},
            windows={(row[0], row[1], row[2]): row[3] for row in data["windows"]},
            watermark_ms=data["watermark_ms"],
            late_watermark_ms=data["late_watermark_ms"],
            max_event_ms=data["max_event_ms"],
            late_rows=data["late_rows"],
            bad_records=data["bad_records"],
            closed=[((row[0], row[1], row[2]), row[3]) for row in data["closed"]],
            batch_bad_records=data["batch_bad_records"],
            batch_late_rows=data["batch_late_rows"],
        )


def _close(
    windows: dict[WindowKey, int], watermark_ms: int, window_ms: int
) -> list[tuple[WindowKey, int]]:
    """Remove and return (in key order) the windows that ended at or before `watermark_ms`."""
    ended = sorted(key for key in windows if key[0] + window_ms <= watermark_ms)
    return [(key, windows.pop(key)) for key in ended]


_VERSION_FILE = re.compile(r"^(\d+)\.(\d+)\.json$")


class FusedStateFiles:
    """The versions of the fused engine's state in its query's checkpoint folder."""

    def __init__(self, files: CheckpointFiles, query: str, keep_batches: int = 100) -> None:
        """State files of `query` under `files`; those of the last `keep_batches` batches stay
        (Spark keeps as many of its own logs). The engine is their only writer: the folder is
        listed once, here."""
        self.files = files
        self.folder = f"{query}/{ENGINE_STATE_DIR}"
        self.keep_batches = keep_batches
        found = (_VERSION_FILE.match(name) for name in files.names(self.folder))
        self._versions = sorted((int(m.group(1)), int(m.group(2))) for m in found if m)

    def versions(self) -> list[tuple[int, int]]:
        """(batch, seq) of every state file, oldest first."""
        return list(self._versions)

    def load(self, batch: int, seq: int) -> FusedState:
        """One version.

        Raises:
            QueryFailedError: when it cannot be read.
        """
        path = f"{self.folder}/{batch}.{seq}.json"
        text = self.files.read_text(path)
        try:
            if text is None:
                msg = "missing"
                raise ValueError(msg)
            return FusedState.from_json(text)
        except ValueError as error:
            msg = (
                f"the fused engine's state {self.files.path(path)} cannot be read ({error}): "
                f"start over with --reset"
            )
            raise QueryFailedError(msg) from None

    def latest(self, up_to_batch: int | None = None) -> FusedState | None:
        """The newest version of a batch up to `up_to_batch` (any batch when None)."""
        versions = [v for v in self._versions if up_to_batch is None or v[0] <= up_to_batch]
        return self.load(*versions[-1]) if versions else None

    def of_batch(self, batch: int) -> list[FusedState]:
        """Every version written after batch `batch` (merge first, then idle closings)."""
        return [self.load(b, seq) for b, seq in self._versions if b == batch]

    def save(self, state: FusedState) -> None:
        """Write one version (atomically), then drop the versions of batches too old to keep."""
        self.files.write_text(f"{self.folder}/{state.batch_id}.{state.seq}.json", state.to_json())
        self._versions.append((state.batch_id, state.seq))
        self._versions.sort()
        while self._versions and self._versions[0][0] <= state.batch_id - self.keep_batches:
            batch, seq = self._versions.pop(0)
            self.files.delete(f"{self.folder}/{batch}.{seq}.json")
