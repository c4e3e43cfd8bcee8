"""The fused engine: one Kafka read and one parse per event feed every result.

One streaming query (``fused``) reads the events topic. Each micro-batch is one Spark job
(`batch_aggregate`): parse every message with the project's rules, then group the valid events
by (Device, gt, Model, User, event-time window) with their count, the sums of x, y, z and the
latest Arrival_Time: a few hundred rows, collected to the driver. Only when a message was not
a valid event does a second job collect the bad records. On the driver, `FusedState` merges
the aggregate into the engine's own state (fine totals, open windows, Spark's watermark rule),
the state is written to the checkpoint (`FusedStateFiles`), and every result is derived in
plain Python (`derive`), its changed rows written in one go, with one flush.

Exactly once: the state after batch N is written before any result of batch N. When Spark
runs batch N again after a crash (same offsets), the engine finds that state, skips the merge
and writes the results again (same keys, same values in compacted topics); without it, it
merges onto the state of batch N-1.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import (
    BinaryType,
    IntegerType,
    LongType,
    StructField,
    StructType,
    TimestampType,
)

from ..errors import QueryFailedError
from ..schemas.results import BadRecord, ResultRecord, WindowedActivity
from .catalogue import BAD_RECORDS, Query, window_milliseconds
from .checkpoints import QueryCheckpoint
from .engine import Run
from .fused_state import FusedState, FusedStateFiles, Group, WindowKey
from .parse import REASON_COLUMN, bad_record_columns, parse_events
from .queries import AXES, FINE_GRAIN
from .source import read_event_stream

logger = logging.getLogger(__name__)

FUSED_QUERY = "fused"
"""Name (and checkpoint folder) of the fused engine's streaming query."""

WINDOWED = "windowed_activity"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_MESSAGES = StructType(
    [
        StructField("partition", IntegerType()),
        StructField("offset", LongType()),
        StructField("timestamp", TimestampType()),
        StructField("value", BinaryType()),
    ]
)
"""The columns of the Kafka source the engine reads (`source.MESSAGE_COLUMNS`)."""

_WARM_UP_MESSAGES = [
    b'{"Arrival_Time":1424686735090,"Creation_Time":1424686733176142602,"Device":"nexus4_1",'
    b'"Index":0,"Model":"nexus4","User":"a","gt":"stand","x":-5.493164E-4,"y":-0.0107421875,'
    b'"z":0.0010528564}',
    b"not an event",
]


def watermark_text(moment_ms: int) -> str:
    """A watermark as Spark's progress shows it (``2015-02-23T10:21:00.000Z``)."""
    moment = _EPOCH + dt.timedelta(milliseconds=moment_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def batch_aggregate(messages: DataFrame, window_ms: int) -> DataFrame:
    """One micro-batch's messages in one Spark job: the valid events as one row per
    (Device, gt, Model, User, window_start) with ``count``, ``x_sum``, ``y_sum``, ``z_sum``
    and ``latest`` (max Arrival_Time), and every other message as a row of its own with its
    `BadRecord` columns (``timestamp`` in epoch microseconds); ``ok`` tells them apart.

    ``window_start`` is the start of the tumbling event-time window of `window_ms`
    milliseconds (epoch ms), as Spark's ``window()`` gives it.
    """
    parsed = parse_events(messages)
    ok = F.col(REASON_COLUMN).isNull()
    arrival = F.col("Arrival_Time")
    bad = bad_record_columns(parsed)
    bad["timestamp"] = F.unix_micros(bad["timestamp"])
    return parsed.groupBy(
        ok.alias("ok"),
        *(F.when(ok, F.col(name)).alias(name) for name in FINE_GRAIN),
        F.when(ok, arrival - arrival % F.lit(window_ms)).alias("window_start"),
        *(F.when(~ok, column).alias(f"bad_{name}") for name, column in bad.items()),
    ).agg(
        F.count(F.lit(1)).alias("count"),
        *(F.sum(axis).alias(f"{axis}_sum") for axis in AXES),
        F.max(arrival).alias("latest"),
    )


def warm_up(spark: SparkSession, window_ms: int) -> None:
    """Run a micro-batch's jobs once on two messages, so that the first real batch does not
    pay for generating and compiling their code."""
    moment = _EPOCH
    sample = spark.createDataFrame(
        [(0, offset, moment, bytearray(value)) for offset, value in enumerate(_WARM_UP_MESSAGES)],
        schema=_MESSAGES,
    )
    batch_aggregate(sample, window_ms).collect()


@dataclass
class BatchAggregate:
    """`batch_aggregate` of one micro-batch, on the driver."""

    groups: list[Group] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)


class FusedBatches:
    """The fused query's ``foreachBatch``: merge, persist, derive and write."""

    def __init__(self, run: Run, store: FusedStateFiles, state: FusedState) -> None:
        """Continue from `state` (the newest in `store`, or an empty one)."""
        self.run = run
        self.store = store
        self.state = state
        self.window_ms, self.delay_ms = window_milliseconds(run.settings)
        self.derived = [query for query in run.queries if query.reads == "totals"]
        self.emits_windows = any(query.name == WINDOWED for query in run.queries)
        historical = {}
        if run.historical is not None:
            historical = {
                (row["gt"], row["Model"]): row.asDict() for row in run.historical.collect()
            }
        self.parameters: dict[str, dict[str, Any]] = {}
        for query in self.derived:
            self.parameters[query.name] = query.parameters(run.settings)
            if query.uses_history:
                self.parameters[query.name]["historical"] = historical
        self.lock = threading.Lock()
        self.last_batch_end = time.monotonic()
        self._written: dict[tuple[str, str], str] = {}

    def __call__(self, messages: DataFrame, batch_id: int) -> None:
        """Process micro-batch `batch_id`."""
        with self.lock:
            versions = self.store.of_batch(batch_id)
            aggregate = self._aggregate(messages, batch_id)
            if versions:
                logger.info(
                    "batch %d was merged before the restart: writing its results again", batch_id
                )
                state = versions[-1]
                closed = [window for version in versions for window in version.closed]
            else:
                base = self._state_before(batch_id)
                state = base.merge(
                    batch_id, aggregate.groups, len(aggregate.bad), self.window_ms, self.delay_ms
                )
                self.store.save(state)
                closed = state.closed
            self.state = state
            self._write(state, closed, aggregate.bad, batch_id)
            self.run.status.counted(
                FUSED_QUERY,
                batch_id,
                bad_records=len(aggregate.bad),
                late_rows=state.batch_late_rows,
                state_rows=len(state.totals) + len(state.windows),
                watermark=watermark_text(state.late_watermark_ms),
            )
            self.last_batch_end = time.monotonic()

    def _aggregate(self, messages: DataFrame, batch_id: int) -> BatchAggregate:
        """The micro-batch's one Spark job, collected."""
        aggregate = BatchAggregate()
        for row in batch_aggregate(messages, self.window_ms).collect():
            if row["ok"]:
                aggregate.groups.append(
                    (
                        row["Device"],
                        row["gt"],
                        row["Model"],
                        row["User"],
                        row["window_start"],
                        row["count"],
                        row["x_sum"],
                        row["y_sum"],
                        row["z_sum"],
                        row["latest"],
                    )
                )
                continue
            values = {
                name.removeprefix("bad_"): value
                for name, value in row.asDict().items()
                if name.startswith("bad_")
            }
            micros = values["timestamp"]
            values["timestamp"] = (
                None if micros is None else _EPOCH + dt.timedelta(microseconds=micros)
            )
            aggregate.bad.append(
                BadRecord.model_validate(values | {"query": BAD_RECORDS, "batch_id": batch_id})
            )
        aggregate.bad.sort(key=lambda record: (record.partition, record.offset))
        return aggregate

    def _state_before(self, batch_id: int) -> FusedState:
        if self.state.batch_id == batch_id - 1:
            return self.state
        previous = self.store.latest(up_to_batch=batch_id - 1)
        if previous is None and batch_id == 0:
            return FusedState()
        if previous is None or previous.batch_id != batch_id - 1:
            msg = (
                f"the fused engine's state after batch {batch_id - 1} is missing from "
                f"{self.store.files.path(self.store.folder)}: start over with --reset"
            )
            raise QueryFailedError(msg)
        return previous

    def _write(
        self,
        state: FusedState,
        closed: Sequence[tuple[WindowKey, int]],
        bad: list[BadRecord],
        batch_id: int,
    ) -> None:
        """Write the results of `state`: the derived rows that changed, the windows `closed`
        and the `bad` records, to every sink, with one flush."""
        records: dict[str, Sequence[ResultRecord]] = {}
        written: dict[tuple[str, str], str] = {}
        for query in self.derived:
            changed = []
            for row in self._derive(query, state):
                record = query.record.model_validate(
                    row | {"query": query.name, "batch_id": batch_id}
                )
                key = (query.name, record.key_json())
                value = record.model_dump_json(by_alias=True, exclude={"batch_id"})
                if self._written.get(key) != value:
                    changed.append(record)
                    written[key] = value
            records[query.name] = changed
        if self.emits_windows:
            records[WINDOWED] = self._windows(closed, batch_id)
        records[BAD_RECORDS] = bad
        self.run.sinks.write(records, batch_id)
        self._written |= written

    def _derive(self, query: Query, state: FusedState) -> list[dict[str, Any]]:
        assert query.derive is not None
        return query.derive(state.totals, **self.parameters[query.name])

    def _windows(
        self, closed: Sequence[tuple[WindowKey, int]], batch_id: int
    ) -> list[ResultRecord]:
        return [
            WindowedActivity(
                query=WINDOWED,
                batch_id=batch_id,
                window_start=_EPOCH + dt.timedelta(milliseconds=start),
                window_end=_EPOCH + dt.timedelta(milliseconds=start + self.window_ms),
                device=device,
                gt=gt,
                count=count,
            )
            for (start, device, gt), count in closed
        ]

    def resume(self) -> None:
        """Write the results of the state the engine continues from again (idempotent): a
        crash may have cut short the writing of its newest version."""
        with self.lock:
            if self.state.batch_id >= 0:
                self._write(self.state, self.state.closed, [], self.state.batch_id)

    def close_idle(self) -> None:
        """Spark's no-data batch: close (and write) the windows the watermark has passed."""
        with self.lock:
            if not self.state.closing_pending:
                return
            state = self.state.close_idle(self.window_ms)
            self.store.save(state)
            self.state = state
            if self.emits_windows and state.closed:
                self.run.sinks.write(
                    {WINDOWED: self._windows(state.closed, state.batch_id)}, state.batch_id
                )
            self.run.status.windows_closed(FUSED_QUERY, watermark_text(state.late_watermark_ms))


class FusedEngine:
    """`hhar process --engine fused` (the default)."""

    name = "fused"

    def __init__(self) -> None:
        """An engine not started yet."""
        self.batches: FusedBatches | None = None
        self._stopping = threading.Event()
        self._idle_closer: threading.Thread | None = None
        self._failure: str | None = None

    def streaming_names(self, outputs: Sequence[str]) -> list[str]:
        """One streaming query for every output."""
        return [FUSED_QUERY]

    def check_checkpoint(self, checkpoint: QueryCheckpoint) -> None:
        """Refuse a checkpoint of the earlier fused engine, which kept Spark state.

        Raises:
            QueryFailedError: naming ``--reset``.
        """
        if checkpoint.holds_spark_state():
            msg = (
                f"query {checkpoint.query} cannot start: its checkpoint {checkpoint.location} "
                f"was written by the fused engine of an earlier hhar-stream (Spark state; the "
                f"engine now keeps its own): start over with --reset"
            )
            raise QueryFailedError(msg)

    def start(self, run: Run) -> dict[str, StreamingQuery]:
        """Warm up, write the results of the state it continues from, start the query."""
        checkpoint = run.checkpoints[FUSED_QUERY]
        store = FusedStateFiles(checkpoint.files, FUSED_QUERY)
        state = store.latest()
        committed = checkpoint.committed_batches()
        if committed and (state is None or state.batch_id < committed[-1]):
            msg = (
                f"query {FUSED_QUERY} cannot start: Spark's checkpoint {checkpoint.location} "
                f"committed batch {committed[-1]} but the engine's state there ends "
                f"{'nowhere' if state is None else f'at batch {state.batch_id}'}: "
                f"start over with --reset"
            )
            raise QueryFailedError(msg)
        self.batches = FusedBatches(run, store, state or FusedState())
        self.batches.resume()
        started = time.monotonic()
        warm_up(run.spark, self.batches.window_ms)
        logger.info("warm-up job: %.1f s", time.monotonic() - started)
        query = run.start_stream(
            FUSED_QUERY, read_event_stream(run.spark, run.settings), "append", self.batches
        )
        if not run.settings.available_now:
            trigger = run.settings.trigger.total_seconds()
            self._idle_closer = threading.Thread(
                target=self._close_when_idle,
                args=(trigger,),
                name="hhar-idle-windows",
                daemon=True,
            )
            self._idle_closer.start()
        return {FUSED_QUERY: query}

    def _close_when_idle(self, trigger_seconds: float) -> None:
        """Close the windows the watermark passed when no batch came for a trigger interval,
        as Spark's no-data batches do for a stateful query."""
        assert self.batches is not None
        while not self._stopping.wait(trigger_seconds):
            if time.monotonic() - self.batches.last_batch_end < trigger_seconds:
                continue
            try:
                self.batches.close_idle()
            except Exception as error:  # noqa: BLE001 - reported by the processor's wait
                self._failure = f"closing idle windows failed: {error}"
                return

    def finish(self) -> None:
        """The end of an available-now run: Spark's last no-data batch."""
        if self.batches is not None:
            self.batches.close_idle()

    def stop(self) -> None:
        """Stop closing idle windows."""
        self._stopping.set()
        if self._idle_closer is not None:
            self._idle_closer.join(timeout=30)

    def failure(self) -> str | None:
        """Why closing idle windows failed, if it did."""
        return self._failure
