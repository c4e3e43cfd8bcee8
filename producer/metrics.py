"""The producer's Prometheus metrics (`hhar produce --metrics-port`), from the replay's figures.

A replay reports its figures (`ReplayStats`) to its progress display every 0.2 s; with
``--workers`` the parent reports the sum of the workers'. `ReplayMetrics` stands between the
replay and that display: it keeps a copy of the latest figures and passes them on, and turns
the copy into metrics when Prometheus scrapes. The replay's own loop (reading, validating,
sending) does nothing more for them. Counters count this run (not the rows of a resumed one).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

from prometheus_client.core import Metric

from hhar_stream.metrics import MetricSpec, collect_specs
from hhar_stream.rates import RATE_WINDOW, RateMeter
from hhar_stream.settings import Settings

from .progress import ProgressReporter, ReplayStats
from .routing import DEAD_LETTER_KINDS

ROWS_READ = MetricSpec(
    "hhar_producer_rows_read_total",
    "counter",
    "rows read from the source, valid and invalid",
    ("topic",),
)
EVENTS_SENT = MetricSpec(
    "hhar_producer_events_sent_total",
    "counter",
    "events handed to Kafka (valid rows times virtual devices)",
    ("topic",),
)
EVENTS_DELIVERED = MetricSpec(
    "hhar_producer_events_delivered_total",
    "counter",
    "events in committed transactions (what read_committed consumers see)",
    ("topic",),
)
DEAD_LETTERS = MetricSpec(
    "hhar_producer_dead_letters_total",
    "counter",
    "invalid rows committed to the dead-letter topic, by reason: " + ", ".join(DEAD_LETTER_KINDS),
    ("topic", "reason"),
)
SEND_ERRORS = MetricSpec(
    "hhar_producer_send_errors_total",
    "counter",
    "records Kafka failed to deliver (their transaction fails)",
    ("topic",),
)
TRANSACTIONS = MetricSpec(
    "hhar_producer_transactions_committed_total",
    "counter",
    "transactions committed, each with the replay's resume position",
    ("topic",),
)
DRIFT = MetricSpec(
    "hhar_producer_replay_drift_seconds",
    "gauge",
    "how far a paced replay runs behind its schedule",
    ("topic",),
)
EVENTS_PER_SECOND = MetricSpec(
    "hhar_producer_events_per_second",
    "gauge",
    f"events sent per second over the last {RATE_WINDOW:.0f} s",
    ("topic",),
)
METRICS = (
    ROWS_READ,
    EVENTS_SENT,
    EVENTS_DELIVERED,
    DEAD_LETTERS,
    SEND_ERRORS,
    TRANSACTIONS,
    DRIFT,
    EVENTS_PER_SECOND,
)
"""Every metric of the producer's endpoint (besides the process's own)."""


class ReplayMetrics:
    """A progress reporter that keeps the replay's latest figures for Prometheus, then shows
    them on `display`; and the collector of the producer's metrics."""

    def __init__(self, settings: Settings, display: ProgressReporter | None) -> None:
        """Metrics of a replay into `settings.topic`, figures passed on to `display`."""
        self.topic = settings.topic
        self.dead_letter_topic = settings.dead_letter_topic
        self.display = display
        self._lock = threading.Lock()
        self._latest = ReplayStats(topic=self.topic, dead_letter_topic=self.dead_letter_topic)
        self._rate = RateMeter()

    def update(self, stats: ReplayStats) -> None:
        """Keep the figures, then show them."""
        self._keep(stats)
        if self.display is not None:
            self.display.update(stats)

    def close(self, stats: ReplayStats) -> None:
        """Keep the final figures, then close the display."""
        self._keep(stats)
        if self.display is not None:
            self.display.close(stats)

    def _keep(self, stats: ReplayStats) -> None:
        copy = dataclasses.replace(
            stats,
            dead_letters_by_reason=dict(stats.dead_letters_by_reason),
            errors=list(stats.errors),
        )
        with self._lock:
            self._latest = copy
            self._rate.add(copy.events_sent)

    def describe(self) -> list[Metric]:
        """The families this collector yields (for the registry)."""
        return collect_specs(METRICS)

    def collect(self) -> Iterator[Metric]:
        """The metrics of the latest figures."""
        with self._lock:
            stats = self._latest
            rate = self._rate.rate or 0.0
        topic = [self.topic]
        for spec, value in (
            (ROWS_READ, stats.rows_read),
            (EVENTS_SENT, stats.events_sent),
            (EVENTS_DELIVERED, stats.delivered),
            (SEND_ERRORS, stats.send_errors),
            (TRANSACTIONS, stats.transactions_committed),
            (DRIFT, stats.drift),
            (EVENTS_PER_SECOND, rate),
        ):
            family = spec.family()
            family.add_metric(topic, value)
            yield family
        letters = DEAD_LETTERS.family()
        for kind in DEAD_LETTER_KINDS:
            count = stats.dead_letters_by_reason.get(kind, 0)
            letters.add_metric([self.dead_letter_topic, kind], count)
        yield letters
