"""The per-query engine: each selected query reads the events topic and keeps its own state.

`query_definitions` says what each query computes (parsed messages -> result rows), in which
output mode and as which record kind; `Processor` starts one Spark streaming query per
definition with its own checkpoint, writes every micro-batch through a `ResultSink` and keeps
`ProcessorStatus` current through a `ProgressListener`. The ``bad_records`` side output always
runs, so messages that are not valid events are kept aside as well as counted.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from ..errors import InputDataError, QueryFailedError
from ..schemas.results import RESULT_RECORDS, ResultRecord
from ..settings import Settings
from . import queries as q
from .config import BAD_RECORDS, name_list, select_queries, select_sinks, spark_interval
from .io import (
    ResultSink,
    check_events_topic,
    checkpoint_dir,
    claim_checkpoint,
    ensure_result_topics,
    read_event_lines,
    read_event_stream,
    removed_unread,
    reset_outputs,
    result_producer,
)
from .parse import count_parse_outcomes, invalid_records, parse_events, valid_events
from .status import PARSE_METRICS, ProcessorStatus, ProgressListener, status_path

logger = logging.getLogger(__name__)

OutputMode = Literal["complete", "update", "append"]

_LISTENER_TIMEOUT = 30.0


@dataclass(frozen=True)
class QueryDefinition:
    """What one query computes, how Spark emits it and which record kind its rows are."""

    name: str
    output_mode: OutputMode
    results: Callable[[DataFrame], DataFrame]
    """Parsed messages (`parse.parse_events`) -> result rows of `record`."""
    on_events: Callable[[DataFrame], DataFrame] | None = None
    """Valid events (or their `queries.fine_aggregates`) -> the same rows; None for a query
    that needs the parsed messages themselves."""

    @property
    def record(self) -> type[ResultRecord]:
        """The result record model of the query."""
        return RESULT_RECORDS[self.name]


def _on_valid(
    name: str, output_mode: OutputMode, query: Callable[..., DataFrame], **options: Any
) -> QueryDefinition:
    on_events = functools.partial(query, **options)
    return QueryDefinition(
        name, output_mode, lambda parsed: on_events(valid_events(parsed)), on_events
    )


def query_definitions(
    settings: Settings, historical: DataFrame | None = None
) -> dict[str, QueryDefinition]:
    """Every query with the parameters of `settings`, plus the ``bad_records`` side output.

    ``live_vs_historical`` is defined only when `historical` (`queries.historical_stats` of
    the history) is given.
    """
    definitions = [
        _on_valid("total_count", "complete", q.total_count),
        _on_valid("device_activity", "complete", q.device_activity),
        _on_valid("device_activity_cube", "complete", q.device_activity_cube),
        _on_valid("device_activity_rollup", "complete", q.device_activity_rollup),
        _on_valid(
            "stairs_by_user",
            "update",
            q.stairs_by_user,
            users=name_list(settings.stairs_users, "stairs_users"),
            device=settings.stairs_device,
        ),
        _on_valid("activity_stats", "complete", q.activity_stats),
        _on_valid(
            "windowed_activity",
            "append",
            q.windowed_activity,
            window=spark_interval(settings.window, "window"),
            watermark=spark_interval(settings.watermark, "watermark"),
        ),
        QueryDefinition(BAD_RECORDS, "append", invalid_records),
    ]
    if historical is not None:
        definitions.append(
            _on_valid("live_vs_historical", "complete", q.live_vs_historical,
                      historical=historical)
        )
    return {definition.name: definition for definition in definitions}


def history_path(settings: Settings) -> Path:
    """The static history of ``live_vs_historical``: --history, else the data folder."""
    return settings.history or settings.data


def load_historical_stats(spark: SparkSession, settings: Settings) -> DataFrame:
    """`queries.historical_stats` of the history, computed once and kept in memory.

    Raises:
        InputDataError: when the history is missing or holds no valid event.
    """
    path = history_path(settings)
    advice = "pass --history PATH, or leave the query out: --queries all,-live_vs_historical"
    try:
        lines = read_event_lines(spark, path)
    except InputDataError as error:
        msg = f"live_vs_historical needs a static history, but {error}: {advice}"
        raise InputDataError(msg) from None
    stats = q.historical_stats(valid_events(parse_events(lines)))
    rows = stats.collect()
    if not rows:
        msg = f"live_vs_historical needs a static history, but {path} holds no valid event"
        raise InputDataError(msg)
    logger.info("history %s: %d (gt, Model) groups", path, len(rows))
    return spark.createDataFrame(rows, schema=stats.schema)


_DATA_LOSS = re.compile(r"KAFKA_DATA_LOSS|Some data may have been lost")
_DATA_LOSS_ADVICE = (
    "to go on without them, run again with HHAR_FAIL_ON_DATA_LOSS=false "
    "(--no-fail-on-data-loss); the checkpoint stays where it was"
)


def _failure(error: Exception) -> str:
    """The most telling line of a streaming query's error (our own message when it is ours)."""
    text = str(error)
    if _DATA_LOSS.search(text):
        where = re.search(r"TopicPartition: ([^\s,)]+)", text)
        return (
            f"data was lost from the input topic{f' ({where.group(1)})' if where else ''}: "
            f"Kafka no longer holds events the processor has not read (retention or deleted "
            f"records removed them); {_DATA_LOSS_ADVICE}"
        )
    ours = re.search(r"hhar_stream\.errors\.\w+: (.+)", text)
    if ours:
        return ours.group(1).strip()
    python = re.findall(r"^\w+(?:Error|Exception): (.+)$", text, flags=re.MULTILINE)
    line = (python[-1] if python else text.strip().splitlines()[0]).strip()
    line = re.sub(r"^\[STREAM_FAILED\] Query \[[^]]*\] terminated with exception: ", "", line)
    if "[STATE_STORE_" in line:
        line += " (the checkpoint holds another query's state: start over with --reset)"
    return line


class Processor:
    """The per-query engine of `hhar process`: start, watch and stop the streaming queries."""

    engine = "per-query"
    """The engine's name in `hhar process --engine`."""

    def __init__(self, settings: Settings, progress_log_level: int = logging.INFO) -> None:
        """Validate the selection in `settings` (no I/O); batches log at `progress_log_level`."""
        self.settings = settings
        self.names = select_queries(settings.queries)
        self.sinks = select_sinks(settings.sink)
        self.trigger = spark_interval(settings.trigger, "trigger")
        query_definitions(settings)  # validates windows, users, durations before any I/O
        self.status = ProcessorStatus(status_path(settings.checkpoint), settings.topic)
        self.listener = ProgressListener(self.status, progress_log_level)
        self.queries: dict[str, StreamingQuery] = {}
        self._spark: SparkSession | None = None
        self._producer = None
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self.skipped: dict[str, int] = {}
        """Per streaming query, the unread events Kafka no longer held when it started."""

    @property
    def outputs(self) -> list[str]:
        """The selected queries and the ``bad_records`` side output."""
        return [*self.names, BAD_RECORDS]

    def streaming_names(self) -> list[str]:
        """The streaming queries this engine starts (checkpoint folders under the root)."""
        return self.outputs

    def preflight(self) -> None:
        """Check what can be checked before Spark starts: the broker, the topic, the history.

        A continuous run waits for a missing events topic; an available-now run fails.
        """
        if "live_vs_historical" in self.names and not history_path(self.settings).exists():
            msg = (
                f"live_vs_historical needs a static history, but {history_path(self.settings)} "
                f"does not exist: pass --history PATH, or leave the query out: "
                f"--queries all,-live_vs_historical"
            )
            raise InputDataError(msg)
        check_events_topic(self.settings, wait=not self.settings.available_now)

    def start(self, spark: SparkSession, reset: bool = False) -> None:
        """Start the engine's streaming queries; `reset` starts them over."""
        self.preflight()
        historical = (
            load_historical_stats(spark, self.settings)
            if "live_vs_historical" in self.names
            else None
        )
        definitions = query_definitions(self.settings, historical)
        if reset:
            reset_outputs(self.settings, list(dict.fromkeys(
                [*self.outputs, *self.streaming_names()])))
        for name in self.streaming_names():
            claim_checkpoint(self.settings, name)
        if not self.settings.fail_on_data_loss:
            self._count_skipped()
        if "kafka" in self.sinks:
            ensure_result_topics(self.settings, self.outputs)
            self._producer = result_producer(self.settings)
        self._spark = spark
        spark.streams.addListener(self.listener)
        self._started_at = time.monotonic()
        try:
            self._start_queries(spark, definitions)
        except Exception:
            self.stop()
            raise
        logger.info(
            "processing %s from %s with the %s engine (sinks: %s, %s)", ", ".join(self.names),
            self.settings.topic, self.engine, ", ".join(self.sinks),
            "available now" if self.settings.available_now else f"trigger {self.trigger}",
        )

    def _count_skipped(self) -> None:
        """Record (and log) the unread events Kafka removed before each query starts."""
        for name in self.streaming_names():
            gaps = removed_unread(self.settings, checkpoint_dir(self.settings, name))
            self.skipped[name] = sum(end - start for start, end in gaps.values())
            if gaps:
                where = ", ".join(f"partition {partition}: offsets {start} to {end - 1}"
                                  for partition, (start, end) in sorted(gaps.items()))
                logger.warning(
                    "query %s skips %d events of %s that Kafka removed before they were read "
                    "(%s); fail_on_data_loss is off", name, self.skipped[name],
                    self.settings.topic, where,
                )

    def _start_queries(self, spark: SparkSession, definitions: dict[str, QueryDefinition]) -> None:
        for name in self.outputs:
            self.queries[name] = self._start_query(spark, definitions[name])

    def _start_query(self, spark: SparkSession, definition: QueryDefinition) -> StreamingQuery:
        parsed = count_parse_outcomes(
            parse_events(read_event_stream(spark, self.settings)), PARSE_METRICS
        )
        sink = ResultSink(
            spark, self.settings, definition.name, definition.record, self.sinks, self._producer
        )
        writer = (
            definition.results(parsed)
            .writeStream.queryName(definition.name)
            .outputMode(definition.output_mode)
            .option("checkpointLocation", str(checkpoint_dir(self.settings, definition.name)))
            .foreachBatch(sink)
        )
        return self._with_trigger(writer).start()

    def _with_trigger(self, writer: DataStreamWriter) -> DataStreamWriter:
        if self.settings.available_now:
            return writer.trigger(availableNow=True)
        return writer.trigger(processingTime=self.trigger)

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; True once every query has stopped.

        Raises:
            QueryFailedError: when a query failed (the others are stopped).
        """
        deadline = time.monotonic() + timeout
        for name, query in self.queries.items():
            try:
                if query.isActive:
                    query.awaitTermination(max(0.01, deadline - time.monotonic()))
                failure = query.exception()  # also of a query that ended before this call
            except StreamingQueryException as error:
                failure = error
            if failure is not None:
                self.stop()
                msg = f"query {name} failed: {_failure(failure)}"
                raise QueryFailedError(msg)
            self.status.observe(name, query.isActive, query.status["message"])
        done = not any(query.isActive for query in self.queries.values())
        if done and self._stopped_at is None:
            self._stopped_at = time.monotonic()
        return done

    def stop(self) -> None:
        """Stop every query and the listener; safe to call twice."""
        for name, query in self.queries.items():
            if query.isActive:
                query.stop()
            self.status.observe(name, query.isActive, query.status["message"])
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()
        if self._spark is not None:
            ids = {str(query.id) for query in self.queries.values()}
            if not self.listener.wait_until_ended(ids, _LISTENER_TIMEOUT):
                logger.warning("the progress of the last batches may be missing from the status")
            self._spark.streams.removeListener(self.listener)
            self._spark = None
            self.status.stopped()
        if self._producer is not None:
            self._producer.flush(30)

    def summary(self) -> dict[str, Any]:
        """Totals of this run: per query, events read per second of processing, and the
        unread events Kafka had removed (skipped with fail_on_data_loss off)."""
        snapshot = self.status.snapshot()["queries"]
        if self._started_at is None:
            elapsed = 0.0
        else:
            elapsed = (self._stopped_at or time.monotonic()) - self._started_at
        events = max((snapshot[name]["input_rows"] for name in self.queries
                      if name in snapshot), default=0)
        return {
            "queries": {name: snapshot.get(name, {}) for name in self.queries},
            "events": events,
            "skipped_events": max(self.skipped.values(), default=0),
            "seconds": round(elapsed, 2),
            "events_per_second": round(events / elapsed, 1) if elapsed > 0 else None,
        }
