"""How a replay shows itself to people: its figures (`ReplayStats`, summed over workers by
`combine`), a live bar on a terminal, one-line logs otherwise, and a final summary."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

logger = logging.getLogger(__name__)


@dataclass
class ReplayStats:
    """What a replay did so far; the last one is its summary."""

    topic: str
    dead_letter_topic: str
    rows_read: int = 0
    """Rows read in this run (valid and invalid)."""
    invalid: int = 0
    events_sent: int = 0
    """Events handed to the producer (valid rows times virtual devices)."""
    delivered: int = 0
    """Events in committed transactions."""
    dead_lettered: int = 0
    """Invalid rows in committed transactions."""
    failed: int = 0
    """Events and dead letters lost with a failed transaction."""
    passes: int = 0
    """Passes over the source completed (``--loop``)."""
    elapsed: float = 0.0
    drift: float = 0.0
    """How far behind its schedule the replay runs now, seconds."""
    max_drift: float = 0.0
    resumed_rows: int = 0
    """Rows that an earlier, resumed run had already replayed."""
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    """`dead_lettered` by the kind of reason (`routing.reason_kind`)."""
    send_errors: int = 0
    """Records Kafka failed to deliver."""
    transactions_committed: int = 0
    stopped_by: str = "end"
    """Why the replay ended: end, limit, signal, invalid row, unreadable file, empty source or
    failure."""
    failure: str | None = None
    """The delivery failure, when there was one."""
    workers: int = 1
    """Processes that shared the replay."""
    errors: list[str] = field(default_factory=list)
    """What ended workers early (a replay in one process raises instead)."""

    @property
    def valid(self) -> int:
        """Rows that passed validation."""
        return self.rows_read - self.invalid

    @property
    def events_per_second(self) -> float:
        """Delivered events per second of the run."""
        return self.delivered / self.elapsed if self.elapsed > 0 else 0.0


_SUMMED = (
    "rows_read",
    "invalid",
    "events_sent",
    "delivered",
    "dead_lettered",
    "failed",
    "resumed_rows",
    "send_errors",
    "transactions_committed",
)


def combine(parts: Sequence[ReplayStats], elapsed: float) -> ReplayStats:
    """The figures of workers as one replay's: counts summed (dead letters per reason too),
    the largest drift, the passes of the slowest, the first failure, and why the replay ended
    (the first reason other than its end, in the workers' order)."""
    first = parts[0]
    total = ReplayStats(
        topic=first.topic,
        dead_letter_topic=first.dead_letter_topic,
        elapsed=elapsed,
        workers=len(parts),
    )
    for name in _SUMMED:
        setattr(total, name, sum(getattr(part, name) for part in parts))
    reasons: Counter[str] = Counter()
    for part in parts:
        reasons.update(part.dead_letters_by_reason)
    total.dead_letters_by_reason = dict(reasons)
    total.passes = min(part.passes for part in parts)
    total.drift = max(part.drift for part in parts)
    total.max_drift = max(part.max_drift for part in parts)
    total.stopped_by = next((part.stopped_by for part in parts if part.stopped_by != "end"), "end")
    total.failure = next((part.failure for part in parts if part.failure), None)
    total.errors = [error for part in parts for error in part.errors]
    return total


class ProgressReporter(Protocol):
    """Where a replay shows its progress (a bar on a terminal, log lines otherwise)."""

    def update(self, stats: ReplayStats) -> None:
        """Show the current figures."""

    def close(self, stats: ReplayStats) -> None:
        """The replay ended."""


LOG_INTERVAL = 5.0
"""Seconds between progress lines when stderr is not a terminal."""


class _RateMeter:
    """Events per second over the interval since the previous reading."""

    def __init__(self) -> None:
        self._last_elapsed = 0.0
        self._last_events = 0
        self.rate = 0.0

    def read(self, stats: ReplayStats) -> float:
        span = stats.elapsed - self._last_elapsed
        if span > 0:
            self.rate = (stats.events_sent - self._last_events) / span
            self._last_elapsed, self._last_events = stats.elapsed, stats.events_sent
        return self.rate


class BarProgress:
    """A rich progress bar on stderr: rows, events/s, delivered, invalid and drift."""

    def __init__(self, total: int | None, console: Console | None = None) -> None:
        """A bar towards `total` rows, or an open-ended one when the total is unknown."""
        self._meter = _RateMeter()
        self._progress = Progress(
            TextColumn("[bold]replay"),
            BarColumn(),
            TextColumn("{task.completed:,} rows"),
            TextColumn("{task.fields[rate]:>9,.0f} events/s"),
            TextColumn("delivered {task.fields[delivered]:,}"),
            TextColumn("invalid {task.fields[invalid]:,}"),
            TextColumn("drift {task.fields[drift]:.2f} s"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: TaskID = self._progress.add_task(
            "replay", total=total, rate=0.0, delivered=0, invalid=0, drift=0.0
        )
        self._started = False

    def update(self, stats: ReplayStats) -> None:
        """Redraw with the current figures (the bar appears with the first update)."""
        if not self._started:
            self._progress.start()
            self._started = True
        self._progress.update(
            self._task,
            completed=stats.rows_read,
            rate=self._meter.read(stats),
            delivered=stats.delivered,
            invalid=stats.invalid,
            drift=stats.drift,
        )

    def close(self, stats: ReplayStats) -> None:
        """Draw the final figures and stop the bar (if it ever appeared)."""
        if self._started:
            self.update(stats)
            self._progress.stop()


class LogProgress:
    """A one-line log of the figures every few seconds, for logs and pipes."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        """Log at most every `interval` seconds."""
        self._interval = interval
        self._next = time.monotonic() + interval
        self._meter = _RateMeter()

    def update(self, stats: ReplayStats) -> None:
        """Log the figures if the interval has passed."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._interval
        logger.info(
            "replayed %d rows (%.0f events/s): delivered %d, invalid %d, failed %d, drift %.2f s",
            stats.rows_read,
            self._meter.read(stats),
            stats.delivered,
            stats.invalid,
            stats.failed,
            stats.drift,
        )

    def close(self, stats: ReplayStats) -> None:
        """Nothing to tear down: the summary follows."""


def progress_for_stderr(total: int | None) -> BarProgress | LogProgress:
    """A bar when stderr is a terminal, periodic log lines otherwise."""
    if sys.stderr.isatty():
        return BarProgress(total)
    return LogProgress()


def format_summary(stats: ReplayStats) -> str:
    """The final summary: rows read, valid, invalid, delivered, failed, elapsed, events/s."""
    lines = [
        f"read {stats.rows_read:,} rows: {stats.valid:,} valid, {stats.invalid:,} invalid"
        + (f" (after {stats.resumed_rows:,} rows of earlier runs)" if stats.resumed_rows else ""),
        f"delivered {stats.delivered:,} events to {stats.topic}, "
        f"{stats.dead_lettered:,} dead letters to {stats.dead_letter_topic}, "
        f"{stats.failed:,} failed",
        f"elapsed {stats.elapsed:.2f} s, {stats.events_per_second:,.0f} events/s, "
        f"max drift {stats.max_drift:.3f} s, stopped by {stats.stopped_by}"
        + (f", {stats.workers} workers" if stats.workers > 1 else ""),
    ]
    if stats.failure:
        lines.append(f"failure: {stats.failure}")
    return "\n".join(lines)
