"""The fleet benchmark's parts (`run_all.py --sections fleet`): reading a processor's batches
from its log, counting what it writes to its checkpoint, sampling its memory over a run.

The processor logs one line per micro-batch (`processor.status.describe_progress`): its rows,
Spark's durations and, for the fused engine, the parts of the batch it timed itself and the
bytes its state log wrote. A `CheckpointWatcher` lists the checkpoint folder every half second
and adds up the sizes of the files it has not seen before: every file there (Spark's logs, its
state store's deltas and snapshots, the fused engine's deltas and snapshots) is written once,
by a rename, so its size when first seen is the bytes written.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measure import load_average, rss_by_kind

BATCH_LINE = re.compile(
    r"(?P<query>\w+) batch (?P<batch>\d+): (?P<rows>\d+) rows .*?"
    r"trigger (?P<trigger>\d+) ms \(addBatch (?P<add>\d+) ms(?:: (?P<parts>[^)]*))?\)"
    r"(?:, state (?P<state_rows>[\d,]+) rows, (?P<touched>[\d,]+) touched, "
    r"(?P<state_mb>[\d.]+) MB written)?"
)


@dataclass
class Batch:
    """One micro-batch of one streaming query, as the processor logged it."""

    query: str
    batch: int
    rows: int
    trigger_ms: int
    add_batch_ms: int
    parts_ms: dict[str, float] = field(default_factory=dict)
    state_rows: int | None = None
    touched_rows: int | None = None
    state_bytes: int | None = None


def logged_batches(log_text: str) -> list[Batch]:
    """Every micro-batch line of a processor's log, in order."""
    batches = []
    for match in BATCH_LINE.finditer(log_text):
        parts = {}
        for part in (match["parts"] or "").split(", "):
            if part:
                name, _, ms = part.rpartition(" ")
                parts[name] = float(ms)
        batches.append(
            Batch(
                query=match["query"],
                batch=int(match["batch"]),
                rows=int(match["rows"]),
                trigger_ms=int(match["trigger"]),
                add_batch_ms=int(match["add"]),
                parts_ms=parts,
                state_rows=int(match["state_rows"].replace(",", ""))
                if match["state_rows"]
                else None,
                touched_rows=int(match["touched"].replace(",", "")) if match["touched"] else None,
                state_bytes=round(float(match["state_mb"]) * 1e6) if match["state_mb"] else None,
            )
        )
    return batches


class CheckpointWatcher:
    """Adds up the bytes written under a checkpoint folder, from a thread of its own."""

    def __init__(self, root: Path, interval: float = 0.5) -> None:
        """Watch `root` (it may not exist yet) every `interval` seconds."""
        self.root = root
        self.interval = interval
        self.seen: dict[str, int] = {}
        self.bytes_written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CheckpointWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.scan()

    def scan(self) -> int:
        """List the folder once; the bytes written so far."""
        for folder, _, names in os.walk(self.root):
            for name in names:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue  # being written: counted once renamed
                path = os.path.join(folder, name)
                if path in self.seen:
                    continue
                try:
                    size = os.path.getsize(path)
                except OSError:
                    continue
                self.seen[path] = size
                self.bytes_written += size
        return self.bytes_written

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.scan()


class MemorySeries:
    """The resident memory of a process tree (JVM and Python apart) every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        """Sample the tree of `pid`."""
        self.pid = pid
        self.interval = interval
        self.started = time.monotonic()
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = rss_by_kind(self.pid)
            if rss["java"] or rss["python"]:
                self.samples.append(
                    {
                        "t_s": round(time.monotonic() - self.started, 1),
                        "jvm_mb": round(rss["java"], 1),
                        "python_mb": round(rss["python"], 1),
                        "load": round(load_average(), 2),
                    }
                )

    def stop(self) -> list[dict[str, float]]:
        """Stop sampling; the samples."""
        self._stop.set()
        self._thread.join()
        return self.samples


def thirds(samples: list[dict[str, float]], kind: str) -> dict[str, float] | None:
    """The mean of the first and last thirds of a memory series (its first tenth left out:
    the JVM's start), and its peak."""
    kept = samples[len(samples) // 10 :]
    if len(kept) < 3:
        return None
    third = len(kept) // 3
    values = [sample[kind] for sample in kept]
    return {
        "first_third_mb": round(sum(values[:third]) / third, 1),
        "last_third_mb": round(sum(values[-third:]) / third, 1),
        "max_mb": round(max(values), 1),
    }


def batch_figures(batches: list[Batch]) -> dict[str, Any]:
    """Seconds per batch and their parts (medians over the batches of more than one row), and
    the state log's bytes per batch, of the fused query's batches."""
    fused = [batch for batch in batches if batch.query == "fused" and batch.rows > 1]
    if not fused:
        return {}

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    parts = sorted({name for batch in fused for name in batch.parts_ms})
    return {
        "batches": len(fused),
        "median_trigger_s": round(median([b.trigger_ms for b in fused]) / 1000, 3),
        "median_parts_s": {
            name: round(median([b.parts_ms.get(name, 0.0) for b in fused]) / 1000, 3)
            for name in parts
        },
        "median_spark_s": round(
            median([b.trigger_ms - sum(b.parts_ms.values()) for b in fused]) / 1000, 3
        ),
        "touched_rows": sum(b.touched_rows or 0 for b in fused),
        "state_rows": max(b.state_rows or 0 for b in fused),
        "state_bytes_per_batch": [b.state_bytes for b in fused],
    }
