"""The fused engine: one Kafka read and one parse per event feed every result, and a
micro-batch costs what it changed, not all the state there is.

One streaming query (``fused``) reads the events topic and parses every message with the
project's rules (`parse.parse_events`, planned once when the query starts). Each micro-batch
is one Spark job (`BatchAggregation`): the valid events grouped by (event-time window, Device,
gt, Model, and the User where ``stairs_by_user`` counts the row) with their count, the sums of
x, y, z and the latest Arrival_Time, and every other message as a bad record of its own, all
collected to the driver: as many rows as (window, Device, gt) the batch touched. On the driver,
`EngineState` merges them in place (the totals of `derive.Totals`, the open windows, Spark's
watermark rule) and names the keys they changed; the batch's delta goes to the checkpoint
(`StateLog`); the changed rows of every result are derived in plain Python (`derive`) and
written with one flush. Snapshots of the whole state are written in the background, only as
often as the deltas outweigh them.

Exactly once: batch N's delta is written before any result of batch N. When Spark runs batch
N again after a crash (same offsets), the engine's state already holds it: the delta tells
which rows it changed and which windows it closed, and those are written again (same keys,
same values in compacted topics).

Driver memory: the state holds one count per (Device, gt) and per open (window, Device, gt),
and the sums per (gt, Model): it grows with the fleet (devices x activities) and the open
windows, never with the events or the time the processor runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from ..errors import QueryFailedError
from ..schemas.results import BadRecord, ResultRecord, WindowedActivity
from ..settings import Settings
from .catalogue import BAD_RECORDS, stairs_parameters, window_milliseconds
from .checkpoints import QueryCheckpoint
from .engine import Run
from .fused_state import (
    BatchChanges,
    ClosedWindow,
    EngineState,
    Group,
    SnapshotWriter,
    StateLog,
    delta_entry,
    replayed_changes,
)
from .parse import REASON_COLUMN, bad_record_columns, parse_events
from .queries import AXES, counted_on_stairs
from .source import MESSAGE_COLUMNS, MESSAGE_SCHEMA, read_event_stream

logger = logging.getLogger(__name__)

FUSED_QUERY = "fused"
"""Name (and checkpoint folder) of the fused engine's streaming query."""

WINDOWED = "windowed_activity"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_WARM_UP_MESSAGES = [
    b'{"Arrival_Time":1424686735090,"Creation_Time":1424686733176142602,"Device":"nexus4_1",'
    b'"Index":0,"Model":"nexus4","User":"a","gt":"stand","x":-5.493164E-4,"y":-0.0107421875,'
    b'"z":0.0010528564}',
    b"not an event",
]

ONE_TASK_OFFSETS = 20_000
"""A micro-batch of at most this many offsets is parsed and aggregated in one task, without a
shuffle: for a few thousand events the second stage and its tasks cost more than one core
saves (the latency's floor); a larger batch is spread over the cores."""

BATCH_PARTS = ("aggregate", "merge", "state_write", "derive", "sink_write")
"""The parts of a micro-batch the engine times (`parts_ms` in its status counts)."""


def watermark_text(moment_ms: int) -> str:
    """A watermark as Spark's progress shows it (``2015-02-23T10:21:00.000Z``)."""
    moment = _EPOCH + dt.timedelta(milliseconds=moment_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def state_parameters(settings: Settings) -> dict[str, Any]:
    """The settings the engine's state depends on (`StateLog` refuses others)."""
    stairs = stairs_parameters(settings)
    return {
        "window_ms": window_milliseconds(settings)[0],
        "stairs_users": sorted(stairs["users"]),
        "stairs_device": stairs["device"],
    }


class BatchAggregation:
    """The micro-batch's one Spark job, its columns built once (building them is a call into
    the JVM per expression: tens of milliseconds a batch if made anew)."""

    def __init__(self, settings: Settings) -> None:
        """The aggregate of `settings`' window and stairs filter."""
        self.window_ms = window_milliseconds(settings)[0]
        ok = F.col(REASON_COLUMN).isNull()
        arrival = F.col("Arrival_Time")
        stairs = stairs_parameters(settings)
        self.keys: list[Column] = [
            ok.alias("ok"),
            F.when(ok, arrival - arrival % F.lit(self.window_ms)).alias("window_start"),
            *(F.when(ok, F.col(name)).alias(name) for name in ("Device", "gt", "Model")),
            F.when(ok & counted_on_stairs(stairs["users"], stairs["device"]), F.col("User")).alias(
                "stairs_user"
            ),
        ]
        bad = bad_record_columns(MESSAGE_COLUMNS)
        bad["timestamp"] = F.unix_micros(bad["timestamp"])
        self.keys += [F.when(~ok, column).alias(f"bad_{name}") for name, column in bad.items()]
        self.aggregates: list[Column] = [
            F.count(F.lit(1)).alias("count"),
            *(F.sum(axis).alias(f"{axis}_sum") for axis in AXES),
            F.max(arrival).alias("latest"),
        ]

    def __call__(self, parsed: DataFrame) -> DataFrame:
        """`parsed` messages (`parse.parse_events`) in one job: the valid events as one row per
        (window_start, Device, gt, Model, stairs_user) with ``count``, ``x_sum``, ``y_sum``,
        ``z_sum`` and ``latest`` (max Arrival_Time), and every other message as a row of its
        own with its `BadRecord` columns (``bad_*``; ``bad_timestamp`` in epoch
        microseconds); ``ok`` tells them apart.

        ``window_start`` is the start of the tumbling event-time window (epoch ms), as Spark's
        ``window()`` gives it; ``stairs_user`` the User where ``stairs_by_user`` counts the
        events, else null.
        """
        return parsed.groupBy(*self.keys).agg(*self.aggregates)


def warm_up(spark: SparkSession, aggregation: BatchAggregation) -> None:
    """Run a micro-batch's job once on two messages, so that the first real batch does not
    pay for generating and compiling its code."""
    sample = spark.createDataFrame(
        [(0, offset, _EPOCH, bytearray(value)) for offset, value in enumerate(_WARM_UP_MESSAGES)],
        schema=MESSAGE_SCHEMA,
    )
    aggregation(parse_events(sample)).collect()


GROUP_COLUMNS = (
    "window_start",
    "Device",
    "gt",
    "Model",
    "stairs_user",
    "count",
    "x_sum",
    "y_sum",
    "z_sum",
    "latest",
)
"""The columns of a `BatchAggregation` row of valid events, in the order of a `Group`."""


def group_of(row: Row) -> Group:
    """The `Group` of a `BatchAggregation` row of valid events."""
    return tuple(row[name] for name in GROUP_COLUMNS)


@dataclass
class BatchAggregate:
    """`BatchAggregation` of one micro-batch, on the driver."""

    groups: list[Group] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)


class FusedBatches:
    """The fused query's ``foreachBatch``: merge, log, derive and write."""

    def __init__(self, run: Run, log: StateLog, state: EngineState) -> None:
        """Continue from `state` (the newest in `log`, or an empty one)."""
        self.run = run
        self.log = log
        self.state = state
        self.snapshots = SnapshotWriter(log)
        self.aggregation = BatchAggregation(run.settings)
        self.window_ms, self.delay_ms = window_milliseconds(run.settings)
        self.derived = [query for query in run.queries if query.reads == "totals"]
        self.emits_windows = any(query.name == WINDOWED for query in run.queries)
        self.historical: dict[tuple[str, str], dict[str, Any]] = {}
        if run.historical is not None:
            self.historical = {
                (row["gt"], row["Model"]): row.asDict() for row in run.historical.collect()
            }
        self.lock = threading.Lock()
        self.last_batch_end = time.monotonic()

    def __call__(self, parsed: DataFrame, batch_id: int) -> None:
        """Process micro-batch `batch_id` of parsed messages."""
        with self.lock:
            parts: dict[str, float] = {}
            started = time.perf_counter()
            aggregate = self._aggregate(parsed, batch_id)
            parts["aggregate"] = time.perf_counter() - started
            written = 0
            if batch_id == self.state.batch_id:
                logger.info(
                    "batch %d was merged before the restart: writing its results again", batch_id
                )
                changes = replayed_changes(self.log.entries_of(batch_id))
            elif batch_id == self.state.batch_id + 1:
                started = time.perf_counter()
                changes = self.state.merge(
                    batch_id, aggregate.groups, len(aggregate.bad), self.window_ms, self.delay_ms
                )
                parts["merge"] = time.perf_counter() - started
                started = time.perf_counter()
                written = self.log.append(delta_entry(self.state, changes, aggregate.groups))
                self.snapshots.offer(self.state)
                parts["state_write"] = time.perf_counter() - started
            else:
                msg = (
                    f"Spark runs batch {batch_id} but the fused engine's state in "
                    f"{self.log.location()} is at batch {self.state.batch_id}: start over with "
                    f"--reset"
                )
                raise QueryFailedError(msg)
            rows_out = self._write(changes, aggregate.bad, batch_id, parts)
            self.run.status.counted(
                FUSED_QUERY,
                batch_id,
                bad_records=len(aggregate.bad),
                late_rows=changes.late_rows,
                state_rows=self.state.rows,
                touched_rows=len(aggregate.groups),
                state_bytes=self.log.stored_bytes(),
                written_bytes=written,
                rows_out=rows_out,
                parts_ms={name: round(1000 * seconds, 1) for name, seconds in parts.items()},
                watermark=watermark_text(self.state.late_watermark_ms),
            )
            self.last_batch_end = time.monotonic()

    def _offsets(self, batch_id: int) -> int | None:
        """How many offsets of the events topic micro-batch `batch_id` spans (from Spark's
        offset log, events and transaction markers), when the previous batch is logged."""
        if batch_id == 0:
            return None
        checkpoint, topic = self.run.checkpoints[FUSED_QUERY], self.run.settings.topic
        start = checkpoint.logged_offsets(batch_id - 1, topic)
        end = checkpoint.logged_offsets(batch_id, topic)
        if not start or not end:
            return None
        return sum(offset - start.get(partition, 0) for partition, offset in end.items())

    def _aggregate(self, parsed: DataFrame, batch_id: int) -> BatchAggregate:
        """The micro-batch's one Spark job (in one task when the batch is small), collected."""
        aggregate = BatchAggregate()
        offsets = self._offsets(batch_id)
        if offsets is not None and offsets <= ONE_TASK_OFFSETS:
            parsed = parsed.coalesce(1)
        for row in self.aggregation(parsed).collect():
            if row["ok"]:
                aggregate.groups.append(group_of(row))
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

    def _write(
        self,
        changes: BatchChanges,
        bad: list[BadRecord],
        batch_id: int,
        parts: dict[str, float],
    ) -> dict[str, int]:
        """Write the rows `changes` changed, the windows it closed and the `bad` records to
        every sink, with one flush; the records written per query."""
        started = time.perf_counter()
        records: dict[str, Sequence[ResultRecord]] = {}
        for query in self.derived:
            assert query.derive is not None
            extra = {"historical": self.historical} if query.uses_history else {}
            rows = query.derive(self.state.totals, changes=changes.totals, **extra)
            records[query.name] = [
                query.record.model_validate(row | {"query": query.name, "batch_id": batch_id})
                for row in rows
            ]
        if self.emits_windows:
            records[WINDOWED] = self._windows(changes.closed, batch_id)
        records[BAD_RECORDS] = bad
        parts["derive"] = time.perf_counter() - started
        started = time.perf_counter()
        self.run.sinks.write(records, batch_id)
        parts["sink_write"] = time.perf_counter() - started
        return {query: len(rows) for query, rows in records.items()}

    def _windows(self, closed: Sequence[ClosedWindow], batch_id: int) -> list[ResultRecord]:
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
            for start, device, gt, count in closed
        ]

    def resume(self) -> None:
        """Write again the windows of the idle closings after the newest batch: they happened
        outside Spark's batches, and a crash may have cut their writing short."""
        with self.lock:
            batch_id = self.state.batch_id
            idle = [entry for entry in self.log.entries_of(batch_id) if entry["seq"] > 0]
            closed = replayed_changes(idle).closed
            if self.emits_windows and closed:
                self.run.sinks.write({WINDOWED: self._windows(closed, batch_id)}, batch_id)

    def close_idle(self) -> None:
        """Spark's no-data batch: close (and write) the windows the watermark has passed."""
        with self.lock:
            if not self.state.closing_pending:
                return
            changes = self.state.close_idle(self.window_ms)
            self.log.append(delta_entry(self.state, changes))
            self.snapshots.offer(self.state)
            if self.emits_windows and changes.closed:
                self.run.sinks.write(
                    {WINDOWED: self._windows(changes.closed, self.state.batch_id)},
                    self.state.batch_id,
                )
            self.run.status.windows_closed(
                FUSED_QUERY, watermark_text(self.state.late_watermark_ms)
            )


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
        """Load the state, warm up, write what an idle closing may have left unwritten, start
        the query."""
        checkpoint = run.checkpoints[FUSED_QUERY]
        log = StateLog(
            checkpoint.files,
            FUSED_QUERY,
            state_parameters(run.settings),
            run.settings.snapshot_interval,
        )
        log.check_layout()
        window_ms, delay_ms = window_milliseconds(run.settings)
        started = time.monotonic()
        state = log.load(window_ms, delay_ms)
        if state.batch_id >= 0:
            logger.info(
                "fused engine state after batch %d: %d rows, loaded in %.1f s",
                state.batch_id,
                state.rows,
                time.monotonic() - started,
            )
        committed = checkpoint.committed_batches()
        if committed and state.batch_id < committed[-1]:
            msg = (
                f"query {FUSED_QUERY} cannot start: Spark's checkpoint {checkpoint.location} "
                f"committed batch {committed[-1]} but the engine's state there ends "
                f"{'nowhere' if state.batch_id < 0 else f'at batch {state.batch_id}'}: "
                f"start over with --reset"
            )
            raise QueryFailedError(msg)
        self.batches = FusedBatches(run, log, state)
        self.batches.resume()
        started = time.monotonic()
        warm_up(run.spark, self.batches.aggregation)
        logger.info("warm-up job: %.1f s", time.monotonic() - started)
        parsed = parse_events(read_event_stream(run.spark, run.settings))
        query = run.start_stream(FUSED_QUERY, parsed, "append", self.batches)
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
        """Stop closing idle windows; let a snapshot being written end."""
        self._stopping.set()
        if self._idle_closer is not None:
            self._idle_closer.join(timeout=30)
        if self.batches is not None:
            self.batches.snapshots.wait()

    def failure(self) -> str | None:
        """Why closing idle windows or writing a snapshot failed, if it did."""
        if self.batches is not None and self.batches.snapshots.failure is not None:
            return self.batches.snapshots.failure
        return self._failure
