"""Rates of growing totals (events per second), measured over a recent window."""

from __future__ import annotations

import time
from collections import deque

RATE_WINDOW = 10.0
"""Seconds over which the event rates are measured."""


class RateMeter:
    """The rate per second of a growing total, over its samples of the last `window` seconds."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        """Keep samples for `window` seconds."""
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, total: int, now: float | None = None) -> None:
        """Record the total at `now` (default: the monotonic clock)."""
        now = time.monotonic() if now is None else now
        if self._samples and total < self._samples[-1][1]:
            self._samples.clear()  # the total started over (topics deleted and created again)
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    @property
    def rate(self) -> float | None:
        """Per second over the samples kept; None before two samples."""
        if len(self._samples) < 2:
            return None
        (start, first), (end, last) = self._samples[0], self._samples[-1]
        return (last - first) / (end - start) if end > start else None
