"""The processor's Prometheus metrics (`hhar process --metrics-port`).

They come from what the processor records anyway, so its batches do no work for them:

- the status (`ProcessorStatus`): every streaming query's totals of this run, its last
  micro-batch (watermark, state, where it ended in each partition) and whether it runs are
  read when Prometheus scrapes;
- each recorded batch (`ProcessorStatus.observers`): its duration and the durations of its
  parts go into histograms: Spark's phases, and within ``addBatch`` the engine's own parts
  when it reports them (``parts_ms``);
- the sinks (`ResultSinks.watchers`): the result records written per query, whatever the
  engine. An engine that reports ``rows_out`` for a batch adds what it wrote beyond what
  the sinks saw of that batch (nothing, when it writes through them).

The lag is measured when Prometheus scrapes: the events topic's end offsets (as a
read_committed reader sees them, Spark's view) minus where each query's last batch ended, in
events; and in seconds, how long ago the oldest event not processed yet arrived in the topic.
Its arrival is estimated from the end offsets seen at each scrape (when the end first passed
its offset, interpolated between two scrapes); for a backlog already there at the first
scrape it is the time since that scrape (at least that old). Both are 0 when the query has
processed everything in the topic, and absent before its first batch or while Kafka does not
answer.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from confluent_kafka import IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..kafka_client import admin_client
from ..metrics import MetricSpec, collect_specs
from ..settings import Settings
from .sinks import ResultSinks
from .status import ProcessorStatus

logger = logging.getLogger(__name__)

_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_PART_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WHOLE_BATCH = "triggerExecution"
"""Spark's name of the whole micro-batch among its durations."""

INPUT_ROWS = MetricSpec(
    "hhar_processor_input_rows_total",
    "counter",
    "messages each streaming query read from the events topic (Spark's numInputRows)",
    ("query", "topic"),
)
BATCHES = MetricSpec(
    "hhar_processor_batches_total", "counter", "micro-batches completed", ("query",)
)
BATCH_DURATION = MetricSpec(
    "hhar_processor_batch_duration_seconds",
    "histogram",
    f"time of each micro-batch (Spark's {WHOLE_BATCH})",
    ("query",),
    _DURATION_BUCKETS,
)
PART_DURATION = MetricSpec(
    "hhar_processor_batch_part_duration_seconds",
    "histogram",
    "time of each part of a micro-batch: Spark's phases (addBatch, latestOffset, "
    "queryPlanning, walCommit, commitOffsets...) and, within addBatch, the engine's own parts "
    "when it reports them",
    ("query", "part"),
    _PART_BUCKETS,
)
ROWS_OUT = MetricSpec(
    "hhar_processor_rows_out_total",
    "counter",
    "result records written, per result query (the same records to every sink)",
    ("query",),
)
BAD_RECORDS = MetricSpec(
    "hhar_processor_bad_records_total",
    "counter",
    "messages that are not events, set aside as bad_records",
    ("query",),
)
LATE_ROWS = MetricSpec(
    "hhar_processor_late_rows_total",
    "counter",
    "events behind the watermark, left out of their window",
    ("query",),
)
WATERMARK = MetricSpec(
    "hhar_processor_watermark_timestamp_seconds",
    "gauge",
    "the query's event-time watermark (seconds since the epoch)",
    ("query",),
)
STATE_ROWS = MetricSpec(
    "hhar_processor_state_rows", "gauge", "rows of state the query keeps", ("query",)
)
STATE_BYTES = MetricSpec(
    "hhar_processor_state_bytes",
    "gauge",
    "bytes of the query's state: Spark's state store memory, or the fused engine's state in "
    "its checkpoint (the snapshot and the deltas a restart reads)",
    ("query",),
)
LAG_EVENTS = MetricSpec(
    "hhar_processor_lag_events",
    "gauge",
    "events in the topic (read_committed end offsets) the query has not processed",
    ("query", "topic"),
)
LAG_SECONDS = MetricSpec(
    "hhar_processor_lag_seconds",
    "gauge",
    "how long ago the oldest event the query has not processed arrived in the topic "
    "(estimated from the end offsets seen at each scrape); 0 when caught up",
    ("query", "topic"),
)
LAST_BATCH = MetricSpec(
    "hhar_processor_last_batch_timestamp_seconds",
    "gauge",
    "when the query's last micro-batch started (seconds since the epoch)",
    ("query",),
)
ACTIVE = MetricSpec(
    "hhar_processor_query_active", "gauge", "1 while the streaming query runs, else 0", ("query",)
)
METRICS = (
    INPUT_ROWS,
    BATCHES,
    BATCH_DURATION,
    PART_DURATION,
    ROWS_OUT,
    BAD_RECORDS,
    LATE_ROWS,
    WATERMARK,
    STATE_ROWS,
    STATE_BYTES,
    LAG_EVENTS,
    LAG_SECONDS,
    LAST_BATCH,
    ACTIVE,
)
"""Every metric of the processor's endpoint (besides the process's own)."""
_INSTRUMENTS = (BATCH_DURATION, PART_DURATION, ROWS_OUT)
"""The metrics counted as things happen; the others are read when Prometheus scrapes."""

_OFFSETS_TIMEOUT = 2.0
"""Seconds a scrape waits for the topic's end offsets."""
_KEPT_BATCHES = 1000
"""(query, batch) figures of the sinks kept until their batch is recorded."""
_ARRIVALS_KEPT = 10_000
"""End offsets remembered per partition (hours of scrapes)."""


def epoch_seconds(text: str | None) -> float | None:
    """An ISO-8601 time of Spark's progress (``2015-02-23T10:21:00.000Z``) as epoch seconds."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class Arrivals:
    """When offsets of the events topic arrived: the end offsets seen per partition, each with
    the first and the last time it was the end (monotonic clock)."""

    def __init__(self) -> None:
        """No offsets seen yet."""
        self._seen: dict[int, deque[list[Any]]] = {}
        """Partition -> [end, first seen, last seen], in order."""

    def record(self, ends: Mapping[int, int], now: float) -> None:
        """The end offsets at `now`."""
        for partition, end in ends.items():
            seen = self._seen.setdefault(partition, deque(maxlen=_ARRIVALS_KEPT))
            if seen and end < seen[-1][0]:
                seen.clear()  # the topic was deleted and made again
            if seen and end == seen[-1][0]:
                seen[-1][2] = now
            else:
                seen.append([end, now, now])

    def arrived(self, partition: int, offset: int) -> float | None:
        """When the record at `offset` was first in the partition: between the last time the
        end was at or before it and the first time it was past it, in proportion to the
        records that came between; the first time seen if it was there from the start."""
        before: list[Any] | None = None
        for end, first, last in self._seen.get(partition, ()):
            if end > offset:
                if before is None:
                    return float(first)
                start, since = before[0], before[2]
                share = (offset - start + 1) / (end - start)
                return float(since + share * (first - since))
            before = [end, first, last]
        return None


class EndOffsets:
    """The events topic's end offsets as a read_committed reader sees them (the last stable
    offsets, which Spark's Kafka source reads up to), asked when Prometheus scrapes."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        """Ask the cluster of `settings` (an admin client made at the first scrape)."""
        self.settings = settings
        self.clock = clock
        self.arrivals = Arrivals()
        self._admin: AdminClient | None = None

    def read(self) -> dict[int, int] | None:
        """Partition -> end offset now (recorded in `arrivals`); None when Kafka does not
        answer in time."""
        topic = self.settings.topic
        if self._admin is None:
            self._admin = admin_client(self.settings)
        try:
            metadata = self._admin.list_topics(topic, timeout=_OFFSETS_TIMEOUT).topics[topic]
            if metadata.error is not None:
                return None
            wanted = {
                TopicPartition(topic, number): OffsetSpec.latest()  # type: ignore[no-untyped-call]
                for number in metadata.partitions
            }
            futures = self._admin.list_offsets(
                wanted,
                isolation_level=IsolationLevel.READ_COMMITTED,
                request_timeout=_OFFSETS_TIMEOUT,
            )
            ends = {
                part.partition: future.result(timeout=_OFFSETS_TIMEOUT).offset
                for part, future in futures.items()
            }
        except (KafkaException, TimeoutError) as error:
            logger.debug("no end offsets of %s for the metrics: %s", topic, error)
            return None
        self.arrivals.record(ends, self.clock())
        return ends


class ProcessorMetrics:
    """The collector of the processor's metrics (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        status: ProcessorStatus,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Metrics of the processor whose queries `status` records, on `settings.topic`."""
        self.topic = settings.topic
        self.status = status
        self.clock = clock
        self.offsets = EndOffsets(settings, clock)
        self._lock = threading.Lock()
        """Guards the sinks' figures (the batches' threads write them)."""
        self._probing = threading.Lock()
        """One lag measurement at a time (scrapes may come together)."""
        self._durations: Histogram = BATCH_DURATION.instrument()  # type: ignore[assignment]
        self._parts: Histogram = PART_DURATION.instrument()  # type: ignore[assignment]
        self._rows_out: Counter = ROWS_OUT.instrument()  # type: ignore[assignment]
        self._sink_rows: dict[tuple[str, int], int] = {}
        """Records the sinks wrote per (query, batch), until that batch is recorded."""

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Within the block, count the batches the status records and what the sinks write."""
        self.status.observers.append(self.batch_recorded)
        ResultSinks.watchers.append(self.records_written)
        try:
            yield
        finally:
            ResultSinks.watchers.remove(self.records_written)
            self.status.observers.remove(self.batch_recorded)

    def batch_recorded(self, name: str, summary: Mapping[str, Any]) -> None:
        """One micro-batch of streaming query `name`, as the status recorded it."""
        durations: dict[str, float] = dict(summary.get("duration_ms") or {})
        parts = {part: ms for part, ms in durations.items() if part != WHOLE_BATCH}
        parts |= summary.get("parts_ms") or {}
        if WHOLE_BATCH in durations:
            self._durations.labels(name).observe(durations[WHOLE_BATCH] / 1000)
        for part, ms in parts.items():
            self._parts.labels(name, part).observe(ms / 1000)
        reported: Mapping[str, int] = summary.get("rows_out") or {}
        with self._lock:
            for query, rows in reported.items():
                beyond = rows - self._sink_rows.pop((query, summary["batch_id"]), 0)
                if beyond > 0:
                    self._rows_out.labels(query).inc(beyond)

    def records_written(self, counts: Mapping[str, int], batch_id: int) -> None:
        """The sinks wrote `counts` records (per query) of micro-batch `batch_id`."""
        with self._lock:
            for query, rows in counts.items():
                self._rows_out.labels(query).inc(rows)
                key = (query, batch_id)
                self._sink_rows[key] = self._sink_rows.pop(key, 0) + rows
            while len(self._sink_rows) > _KEPT_BATCHES:
                del self._sink_rows[next(iter(self._sink_rows))]

    def describe(self) -> list[Metric]:
        """The families this collector yields (for the registry)."""
        return collect_specs(METRICS)

    def collect(self) -> Iterator[Metric]:
        """Every metric, the status read now and the lag measured now."""
        queries: dict[str, dict[str, Any]] = self.status.snapshot()["queries"]
        families: dict[MetricSpec, CounterMetricFamily | GaugeMetricFamily] = {
            spec: spec.family() for spec in METRICS if spec not in _INSTRUMENTS
        }
        for name, query in queries.items():
            families[INPUT_ROWS].add_metric([name, self.topic], query["input_rows"])
            families[BATCHES].add_metric([name], query["batches"])
            families[BAD_RECORDS].add_metric([name], query["bad_records"])
            families[LATE_ROWS].add_metric([name], query["late_rows"])
            families[ACTIVE].add_metric([name], 1 if query["active"] else 0)
            last = query["last_progress"]
            if last is None:
                continue
            for spec, value in (
                (WATERMARK, epoch_seconds(last.get("watermark"))),
                (LAST_BATCH, epoch_seconds(last.get("timestamp"))),
                (STATE_ROWS, last.get("state_rows")),
                (STATE_BYTES, last.get("state_bytes")),
            ):
                if value is not None:
                    families[spec].add_metric([name], value)
        self._add_lag(queries, families[LAG_EVENTS], families[LAG_SECONDS])
        yield from self._durations.collect()
        yield from self._parts.collect()
        yield from self._rows_out.collect()
        yield from families.values()

    def _add_lag(
        self,
        queries: dict[str, dict[str, Any]],
        events: CounterMetricFamily | GaugeMetricFamily,
        seconds: CounterMetricFamily | GaugeMetricFamily,
    ) -> None:
        processed = {
            name: {int(p): offset for p, offset in ends.items()}
            for name, query in queries.items()
            if (ends := ((query["last_progress"] or {}).get("end_offsets") or {}).get(self.topic))
        }
        if not processed:
            return
        with self._probing:
            ends = self.offsets.read()
            now = self.clock()
            if ends is None:
                return
            for name, done in processed.items():
                behind = {p: end - done.get(p, 0) for p, end in ends.items()}
                behind = {p: count for p, count in behind.items() if count > 0}
                arrivals = [self.offsets.arrivals.arrived(p, done.get(p, 0)) for p in behind]
                oldest = min((moment for moment in arrivals if moment is not None), default=now)
                events.add_metric([name, self.topic], sum(behind.values()))
                seconds.add_metric([name, self.topic], now - oldest)
