"""The fused engine's state: totals, open event-time windows and the watermark, kept on the
driver, and its log in the checkpoint (a delta per micro-batch, snapshots now and then).

`EngineState` is pure Python. `EngineState.merge` adds a micro-batch's aggregate in place and
says what it changed (`BatchChanges`): the work of a batch follows the keys it touched, never
the whole state. It applies Spark's rules for ``windowed_activity``'s append mode (Spark 3.4+,
SPARK-40925):

- a row is *late* when its window ended at or before the **previous** batch's watermark (the
  eviction watermark of batch N-1): it still counts in the totals, as Spark's queries without a
  watermark count it, but not in its window;
- after the batch's rows are merged, the windows that ended at or before the batch's own
  watermark (computed at the end of the previous batch) are closed: emitted once, then dropped;
- then the watermark moves to max(event time seen) - delay; it never moves back.

When no data arrives, Spark runs a "no-data batch" to close the windows the moved watermark
has passed; `EngineState.close_idle` is that step.

`StateLog` keeps the state in the query's checkpoint folder (``engine/``), written before any
result of the version it holds:

- ``<batch>.<seq>.delta.json.gz``: one entry per state version, seq 0 the merge of micro-batch
  ``<batch>`` (its aggregate rows, as merged), 1, 2... the idle closings that followed it. An
  entry is as large as what its batch touched.
- ``<batch>.<seq>.snapshot.json.gz``: the whole state at a version, written in the background
  once the deltas since the last snapshot outweigh it (so snapshots cost at most as many bytes
  as the deltas, and a restart replays at most a snapshot's worth of deltas), or after
  ``HHAR_SNAPSHOT_INTERVAL`` deltas.

Every file records the settings the state depends on (the window, the stairs users and
device): a run with others is refused in one line, as a checkpoint of an earlier layout is.

The state at a version is the newest snapshot at or before it with the deltas after it merged
again, in order: merging is deterministic, float sums included.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import QueryFailedError
from .checkpoints import ENGINE_STATE_DIR, CheckpointFiles
from .derive import Cell, Changes, Totals

logger = logging.getLogger(__name__)

Group = tuple[int, str, str, str, str | None, int, float, float, float, int]
"""One row of a micro-batch's aggregate: window start (epoch ms), Device, gt, Model, the User
when ``stairs_by_user`` counts the rows (else None), count, x_sum, y_sum, z_sum, and the latest
Arrival_Time (ms)."""

ClosedWindow = tuple[int, str, str, int]
"""A window closed, with its count: start (epoch ms), Device, gt, count."""

FORMAT = 2
"""Version of the state files' layout (1: the whole state after every batch)."""

SNAPSHOT_MIN_BYTES = 1 << 20
"""Bytes of deltas since the last snapshot that make a new one due, at the least."""


@dataclass
class BatchChanges:
    """What one state version changed: the keys of the totals (None: every key, the first
    version), the windows it closed, and its late rows and bad records."""

    totals: Changes | None
    closed: list[ClosedWindow]
    late_rows: int = 0
    bad_records: int = 0


@dataclass
class EngineState:
    """The fused engine's state after one micro-batch (or an idle closing that followed it)."""

    batch_id: int = -1
    seq: int = 0
    totals: Totals = field(default_factory=Totals)
    windows: dict[int, dict[Cell, int]] = field(default_factory=dict)
    """Open windows: start (epoch ms) -> (Device, gt) -> count."""
    watermark_ms: int = 0
    """Eviction watermark of the next batch."""
    late_watermark_ms: int = 0
    """Eviction watermark of the previous batch: rows of windows ending by then are late."""
    max_event_ms: int | None = None
    late_rows: int = 0
    bad_records: int = 0

    def merge(
        self,
        batch_id: int,
        groups: Iterable[Group],
        bad_records: int,
        window_ms: int,
        delay_ms: int,
    ) -> BatchChanges:
        """Merge micro-batch `batch_id`'s aggregate `groups` (in place): totals added, windows
        closed, the watermark moved."""
        changes = Changes()
        late = 0
        max_event = self.max_event_ms
        intern = sys.intern
        for start, device, gt, model, stairs_user, count, x_sum, y_sum, z_sum, latest in groups:
            device, gt = intern(device), intern(gt)
            self.totals.add(device, gt, model, stairs_user, count, (x_sum, y_sum, z_sum), changes)
            if start + window_ms <= self.late_watermark_ms:
                late += count
            else:
                window = self.windows.get(start)
                if window is None:
                    window = self.windows[start] = {}
                window[(device, gt)] = window.get((device, gt), 0) + count
            if max_event is None or latest > max_event:
                max_event = latest
        closed = self._close(self.watermark_ms, window_ms)
        self.late_watermark_ms = self.watermark_ms
        if max_event is not None:
            self.watermark_ms = max(self.watermark_ms, max_event - delay_ms)
        first = self.batch_id < 0
        self.batch_id, self.seq, self.max_event_ms = batch_id, 0, max_event
        self.late_rows += late
        self.bad_records += bad_records
        return BatchChanges(None if first else changes, closed, late, bad_records)

    @property
    def closing_pending(self) -> bool:
        """True when the watermark moved since the last closing (Spark would run a no-data
        batch to close the windows it passed)."""
        return self.watermark_ms > self.late_watermark_ms

    def close_idle(self, window_ms: int) -> BatchChanges:
        """Spark's no-data batch (in place): the windows the watermark passed closed."""
        closed = self._close(self.watermark_ms, window_ms)
        self.seq += 1
        self.late_watermark_ms = self.watermark_ms
        return BatchChanges(Changes(), closed)

    def _close(self, watermark_ms: int, window_ms: int) -> list[ClosedWindow]:
        """Remove and return (in key order) the windows that ended at or before
        `watermark_ms`."""
        ended = sorted(start for start in self.windows if start + window_ms <= watermark_ms)
        closed = []
        for start in ended:
            cells = self.windows.pop(start)
            closed += [(start, device, gt, cells[(device, gt)]) for device, gt in sorted(cells)]
        return closed

    @property
    def open_windows(self) -> int:
        """The number of open (window, Device, gt) counts."""
        return sum(len(cells) for cells in self.windows.values())

    @property
    def rows(self) -> int:
        """Entries the state holds: (Device, gt) counts and open windows."""
        return len(self.totals.cells) + self.open_windows

    def copy(self) -> EngineState:
        """A copy that shares nothing mutable with this one (for a snapshot in the
        background)."""
        return EngineState(
            batch_id=self.batch_id,
            seq=self.seq,
            totals=self.totals.copy(),
            windows={start: dict(cells) for start, cells in self.windows.items()},
            watermark_ms=self.watermark_ms,
            late_watermark_ms=self.late_watermark_ms,
            max_event_ms=self.max_event_ms,
            late_rows=self.late_rows,
            bad_records=self.bad_records,
        )

    def to_snapshot(self) -> dict[str, Any]:
        """The whole state as JSON values (floats keep every bit)."""
        return {
            "format": FORMAT,
            "batch_id": self.batch_id,
            "seq": self.seq,
            "cells": [[device, gt, count] for (device, gt), count in self.totals.cells.items()],
            "stats": [[gt, model, *sums] for (gt, model), sums in self.totals.stats.items()],
            "stairs": [[user, count] for user, count in self.totals.stairs.items()],
            "windows": [
                [start, device, gt, count]
                for start, cells in self.windows.items()
                for (device, gt), count in cells.items()
            ],
            "watermark_ms": self.watermark_ms,
            "late_watermark_ms": self.late_watermark_ms,
            "max_event_ms": self.max_event_ms,
            "late_rows": self.late_rows,
            "bad_records": self.bad_records,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> EngineState:
        """The state `to_snapshot` gave."""
        intern = sys.intern
        totals = Totals.of_cells(
            (((intern(device), intern(gt)), count) for device, gt, count in data["cells"]),
            {(gt, model): sums for gt, model, *sums in data["stats"]},
            dict(data["stairs"]),
        )
        windows: dict[int, dict[Cell, int]] = {}
        for start, device, gt, count in data["windows"]:
            windows.setdefault(start, {})[(intern(device), intern(gt))] = count
        return cls(
            batch_id=data["batch_id"],
            seq=data["seq"],
            totals=totals,
            windows=windows,
            watermark_ms=data["watermark_ms"],
            late_watermark_ms=data["late_watermark_ms"],
            max_event_ms=data["max_event_ms"],
            late_rows=data["late_rows"],
            bad_records=data["bad_records"],
        )


def delta_entry(
    state: EngineState, changes: BatchChanges, groups: Sequence[Group] | None = None
) -> dict[str, Any]:
    """The log entry of the version `state` is at: the `groups` it merged (None for an idle
    closing), what it closed and counted (to write its results again after a crash), and the
    watermarks it ended with (a replay that ends elsewhere is refused)."""
    entry: dict[str, Any] = {
        "format": FORMAT,
        "batch_id": state.batch_id,
        "seq": state.seq,
        "closed": changes.closed,
        "late_rows": changes.late_rows,
        "bad_records": changes.bad_records,
        "watermark_ms": state.watermark_ms,
        "late_watermark_ms": state.late_watermark_ms,
    }
    if groups is not None:
        entry["groups"] = groups
    return entry


def apply_entry(
    state: EngineState, entry: dict[str, Any], window_ms: int, delay_ms: int
) -> BatchChanges:
    """Merge one log entry into `state` again, as when it was written.

    Raises:
        ValueError: when the watermarks end elsewhere than when it was written.
    """
    if "groups" in entry:
        changes = state.merge(
            entry["batch_id"], entry["groups"], entry["bad_records"], window_ms, delay_ms
        )
    else:
        changes = state.close_idle(window_ms)
    if (state.watermark_ms, state.late_watermark_ms) != (
        entry["watermark_ms"],
        entry["late_watermark_ms"],
    ):
        msg = f"replaying version {entry['batch_id']}.{entry['seq']} ends at other watermarks"
        raise ValueError(msg)
    return changes


def replayed_changes(entries: Sequence[dict[str, Any]]) -> BatchChanges:
    """What the versions of one batch changed, from their log entries: the keys their groups
    touched, the windows they closed (the first version of all: every key)."""
    changes = Changes()
    totals: Changes | None = changes
    closed: list[ClosedWindow] = []
    for entry in entries:
        if entry["batch_id"] == 0 and entry["seq"] == 0:
            totals = None
        for _, device, gt, model, stairs_user, *_ in entry.get("groups", ()):
            changes.cells.add((device, gt))
            changes.stats.add((gt, model))
            if stairs_user is not None:
                changes.stairs.add(stairs_user)
        closed += entry["closed"]
    first = entries[0] if entries else {}
    return BatchChanges(totals, closed, first.get("late_rows", 0), first.get("bad_records", 0))


_FILE = re.compile(r"^(\d+)\.(\d+)\.(delta|snapshot)\.json\.gz$")
_FORMAT_1_FILE = re.compile(r"^\d+\.\d+\.json$")

Version = tuple[int, int]
"""(batch id, seq) of a state version."""


class StateLog:
    """The fused engine's state files in its query's checkpoint folder.

    The engine is their only writer: the folder is listed once, here. Snapshots are written
    by a background thread (`SnapshotWriter`); the index is shared under a lock.
    """

    def __init__(
        self,
        files: CheckpointFiles,
        query: str,
        parameters: dict[str, Any] | None = None,
        snapshot_interval: int = 100,
    ) -> None:
        """The state files of `query` under `files`, kept with `parameters` (JSON values; None
        to read them whatever they were kept with, never to write); a snapshot is due after
        `snapshot_interval` deltas at the most."""
        self.files = files
        self.parameters = parameters
        self.snapshot_interval = snapshot_interval
        self.folder = f"{query}/{ENGINE_STATE_DIR}"
        self._lock = threading.Lock()
        names = files.names(self.folder)
        self.format_1 = any(_FORMAT_1_FILE.match(name) for name in names)
        self._deltas: dict[Version, int] = {}
        """Every delta's version and size in bytes, oldest first."""
        self._snapshots: dict[Version, int] = {}
        """Every snapshot's version and size in bytes, oldest first."""
        found: list[tuple[Version, str]] = []
        for name in names:
            match = _FILE.match(name)
            if match:
                found.append(((int(match.group(1)), int(match.group(2))), match.group(3)))
            elif name.startswith(".") and name.endswith(".tmp"):
                files.delete(f"{self.folder}/{name}")  # a write a crash cut short: never read
        for version, kind in sorted(found):
            kinds = self._deltas if kind == "delta" else self._snapshots
            kinds[version] = files.size(self._path(version, kind))

    def location(self) -> str:
        """The folder's full path."""
        return self.files.path(self.folder)

    def _path(self, version: Version, kind: str) -> str:
        return f"{self.folder}/{version[0]}.{version[1]}.{kind}.json.gz"

    def _read(self, version: Version, kind: str) -> dict[str, Any]:
        path = self._path(version, kind)
        try:
            data = self.files.read_bytes(path)
            if data is None:
                msg = "missing"
                raise ValueError(msg)
            document: dict[str, Any] = json.loads(gzip.decompress(data))
            if document.get("format") != FORMAT:
                msg = f"format {document.get('format')!r}, expected {FORMAT}"
                raise ValueError(msg)
        except (ValueError, OSError, EOFError) as error:
            msg = (
                f"the fused engine's state {self.files.path(path)} cannot be read ({error}): "
                f"start over with --reset"
            )
            raise QueryFailedError(msg) from None
        self._check_parameters(document)
        return document

    def _write(self, version: Version, kind: str, document: dict[str, Any]) -> int:
        assert self.parameters is not None, "a log opened without parameters is read-only"
        document = document | {"parameters": self.parameters}
        data = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), 1)
        self.files.write_bytes(self._path(version, kind), data)
        return len(data)

    def check_layout(self) -> None:
        """Refuse a checkpoint of the earlier layout (format 1).

        Raises:
            QueryFailedError: naming ``--reset``.
        """
        if self.format_1:
            msg = (
                f"the fused engine's state in {self.location()} was written by an earlier "
                f"hhar-stream (the whole state after every batch; the engine now logs what "
                f"each batch changed): start over with --reset"
            )
            raise QueryFailedError(msg)

    def _check_parameters(self, document: dict[str, Any]) -> None:
        if self.parameters is None:
            return
        kept = document.get("parameters", {})
        differ = [
            f"{name} {kept.get(name)!r} (now {value!r})"
            for name, value in self.parameters.items()
            if kept.get(name) != value
        ]
        if differ:
            msg = (
                f"the fused engine's state in {self.location()} was kept with "
                f"{', '.join(differ)}: run with the same settings, or start over with --reset"
            )
            raise QueryFailedError(msg)

    def versions(self) -> list[Version]:
        """Every version with a delta, oldest first."""
        with self._lock:
            return list(self._deltas)

    def _newest_snapshot(self) -> Version | None:
        return next(reversed(self._snapshots), None)

    def _since_snapshot(self) -> list[int]:
        """The sizes of the deltas after the newest snapshot."""
        newest = self._newest_snapshot()
        return [size for v, size in self._deltas.items() if newest is None or v > newest]

    def load(self, window_ms: int, delay_ms: int) -> EngineState:
        """The newest state: the newest snapshot, then the deltas after it merged again."""
        with self._lock:
            snapshot = self._newest_snapshot()
            after = [v for v in self._deltas if snapshot is None or v > snapshot]
        state = (
            EngineState()
            if snapshot is None
            else EngineState.from_snapshot(self._read(snapshot, "snapshot"))
        )
        for version in after:
            try:
                apply_entry(state, self._read(version, "delta"), window_ms, delay_ms)
            except ValueError as error:
                msg = (
                    f"the fused engine's state in {self.location()} is inconsistent ({error}): "
                    f"start over with --reset"
                )
                raise QueryFailedError(msg) from None
        return state

    def newest_entry(self) -> dict[str, Any] | None:
        """The delta entry of the newest version (None before the first batch)."""
        versions = self.versions()
        return self._read(versions[-1], "delta") if versions else None

    def entries_of(self, batch_id: int) -> list[dict[str, Any]]:
        """The delta entries of every version of batch `batch_id`, in order."""
        return [self._read(v, "delta") for v in self.versions() if v[0] == batch_id]

    def append(self, entry: dict[str, Any]) -> int:
        """Write one delta entry (atomically); the bytes written."""
        version = (entry["batch_id"], entry["seq"])
        written = self._write(version, "delta", entry)
        with self._lock:
            self._deltas[version] = written
        return written

    def stored_bytes(self) -> int:
        """The bytes a restart reads: the newest snapshot and the deltas after it."""
        with self._lock:
            newest = self._newest_snapshot()
            return (0 if newest is None else self._snapshots[newest]) + sum(self._since_snapshot())

    def snapshot_due(self) -> bool:
        """True once the deltas since the last snapshot outweigh it (or are many)."""
        with self._lock:
            newest = self._newest_snapshot()
            since = self._since_snapshot()
            snapshot = 0 if newest is None else self._snapshots[newest]
            heavy = sum(since) >= max(snapshot, SNAPSHOT_MIN_BYTES)
            return heavy or len(since) >= self.snapshot_interval

    def write_snapshot(self, state: EngineState) -> int:
        """Write the whole `state` (atomically), then drop what no restart needs any more:
        snapshots older than the previous one, and the deltas up to it. The bytes written."""
        version = (state.batch_id, state.seq)
        written = self._write(version, "snapshot", state.to_snapshot())
        with self._lock:
            self._snapshots[version] = written
            if len(self._snapshots) < 2:
                return written
            keep_from = list(self._snapshots)[-2]
            dropped = [(v, "snapshot") for v in self._snapshots if v < keep_from]
            dropped += [(v, "delta") for v in self._deltas if v <= keep_from]
            self._snapshots = {v: n for v, n in self._snapshots.items() if v >= keep_from}
            self._deltas = {v: n for v, n in self._deltas.items() if v > keep_from}
        for version, kind in dropped:
            self.files.delete(self._path(version, kind))
        return written


class SnapshotWriter:
    """Writes snapshots of the state on a thread of its own, one at a time, so that a batch
    never waits for one."""

    def __init__(self, log: StateLog) -> None:
        """Snapshots into `log`."""
        self.log = log
        self._thread: threading.Thread | None = None
        self.failure: str | None = None
        self.written: list[tuple[Version, int]] = []
        """(version, bytes) of every snapshot written."""

    def busy(self) -> bool:
        """True while a snapshot is being written."""
        return self._thread is not None and self._thread.is_alive()

    def offer(self, state: EngineState) -> bool:
        """Start writing a copy of `state` when a snapshot is due and none is being written;
        True when it started."""
        if self.busy() or self.failure is not None or not self.log.snapshot_due():
            return False
        copy = state.copy()
        self._thread = threading.Thread(
            target=self._write, args=(copy,), name="hhar-state-snapshot", daemon=True
        )
        self._thread.start()
        return True

    def _write(self, state: EngineState) -> None:
        started = time.monotonic()
        try:
            written = self.log.write_snapshot(state)
        except Exception as error:  # noqa: BLE001 - reported by the engine's failure()
            self.failure = f"writing a snapshot of the fused engine's state failed: {error}"
            return
        self.written.append(((state.batch_id, state.seq), written))
        logger.info(
            "fused engine state snapshot after batch %d: %d rows, %.2f MB in %.1f s",
            state.batch_id,
            state.rows,
            written / 1e6,
            time.monotonic() - started,
        )

    def wait(self, timeout: float = 60.0) -> None:
        """Wait for the snapshot being written, if any."""
        if self._thread is not None:
            self._thread.join(timeout)
