"""When each event is due: the replay's schedule in event time, and how far behind it we are.

Three pacings: ``speedup`` replays the recording's gaps between ``Arrival_Time``s divided by a
factor (1 = real time), optionally capping long gaps; ``rate`` spaces events evenly; with
neither the producer does not wait at all (``--max``). The clock and the sleep are injected so
the schedule can be tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_LONGEST_SLEEP = 0.1
"""Longest single sleep, so a stop request or a due commit is served within 0.1 s."""


class Pacer:
    """Holds a replay to its schedule and measures the drift (how late it runs).

    The schedule starts at the first event, or at a given clock time and event time (the
    workers of one replay share one schedule): with ``speedup`` an event is due at
    ``start + (event time since the origin, gaps capped at max_gap) / speedup``; with ``rate``
    the n-th event is due at ``start + n / rate``.
    """

    def __init__(
        self,
        *,
        speedup: float | None = None,
        rate: float | None = None,
        max_gap: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        start: float | None = None,
        origin_ms: int | None = None,
    ) -> None:
        """A pacer for one of `speedup` or `rate`; `max_gap` (seconds) caps recording gaps.

        `start` (a `clock` time) and `origin_ms` (the event time due then) fix the schedule's
        start; by default it starts with the first event, when it is waited for.
        """
        if (speedup is None) == (rate is None):
            msg = "a pacer needs exactly one of speedup and rate"
            raise ValueError(msg)
        self.speedup = speedup
        self.rate = rate
        self.max_gap_ms = None if max_gap is None else max_gap * 1000.0
        self._clock = clock
        self._sleep = sleep
        self._start = start
        self._last_time_ms: int | None = origin_ms
        self._event_ms = 0.0
        self._events = 0
        self.drift = 0.0
        """Seconds the latest event was sent after it was due (0 when on time)."""
        self.max_drift = 0.0
        """The largest drift so far."""
        self.last_due = 0.0
        """The clock time the latest waited event was due."""

    def due(self, time_ms: int, events: int = 1) -> float:
        """The clock time at which an event (or `events` simultaneous ones) is due."""
        if self._start is None:
            self._start = self._clock()
        if self._last_time_ms is None:
            self._last_time_ms = time_ms
        if self.rate is not None:
            due = self._start + self._events / self.rate
            self._events += events
            return due
        assert self.speedup is not None  # a pacer has exactly one of rate and speedup
        gap: float = time_ms - self._last_time_ms
        if gap > 0:
            self._last_time_ms = time_ms
            if self.max_gap_ms is not None and gap > self.max_gap_ms:
                gap = self.max_gap_ms
            self._event_ms += gap
        return self._start + self._event_ms / 1000.0 / self.speedup

    def wait(
        self, time_ms: int, events: int = 1, on_idle: Callable[[], bool] | None = None
    ) -> bool:
        """Wait until the event at `time_ms` is due; record the drift if it is already late.

        Args:
            time_ms: the event's time (its ``Arrival_Time``), milliseconds.
            events: how many events are sent at this time (they count for ``rate``).
            on_idle: called before each sleep of at most 0.1 s; returning False ends the wait.

        Returns:
            False when `on_idle` asked to stop, else True.
        """
        due = self.last_due = self.due(time_ms, events)
        while True:
            ahead = due - self._clock()
            if ahead <= 0:
                self.drift = -ahead
                if self.drift > self.max_drift:
                    self.max_drift = self.drift
                return True
            self.drift = 0.0
            if on_idle is not None and not on_idle():
                return False
            self._sleep(min(ahead, _LONGEST_SLEEP))
