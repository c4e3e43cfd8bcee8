"""`Processor`: what `hhar process` runs, whichever engine computes the results.

The processor checks what can be checked before Spark starts (broker, topic, history), prepares
the checkpoints (claims them, clears what a crash during a first batch left), creates the result
topics, starts its engine's streaming queries, watches them, and stops them. The engine is a
part it holds, chosen by ``HHAR_ENGINE`` (`ENGINES`):

- ``fused`` (`FusedEngine`, the default): one streaming query reads and parses every event
  once; the results are derived on the driver from small state the engine keeps itself;
- ``per-query`` (`PerQueryEngine`): every query is a streaming query of its own with Spark's
  state store, as the exercise ran them.

Both speak to the processor through the small `Engine` interface and a `Run` (`engine`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from ..errors import QueryFailedError
from ..settings import Settings, format_duration
from .catalogue import BAD_RECORDS, CATALOGUE, select_queries
from .checkpoints import CheckpointFiles, QueryCheckpoint
from .engine import Engine, Run
from .fused import FusedEngine
from .named import NamedQueries
from .per_query import PerQueryEngine
from .sinks import POSITIVE_X_VIEW, ResultSinks, delete_result_topics, ensure_result_topics
from .source import check_events_topic, check_history, load_historical_stats, removed_unread
from .status import ProcessorStatus, ProgressListener, status_path

logger = logging.getLogger(__name__)

_LISTENER_TIMEOUT = 30.0


ENGINES: dict[str, Callable[[], Engine]] = {"fused": FusedEngine, "per-query": PerQueryEngine}
"""The engines by their name in ``hhar process --engine``."""


def reserved_names() -> list[str]:
    """Names a named query cannot take: the outputs, their memory views and the streaming
    queries of every engine."""
    outputs = list(CATALOGUE)
    engines = [name for engine in ENGINES.values() for name in engine().streaming_names(outputs)]
    return list(dict.fromkeys([*outputs, POSITIVE_X_VIEW, *engines]))


_DATA_LOSS = re.compile(r"KAFKA_DATA_LOSS|Some data may have been lost")
_DATA_LOSS_ADVICE = (
    "to go on without them, run again with HHAR_FAIL_ON_DATA_LOSS=false "
    "(--no-fail-on-data-loss); the checkpoint stays where it was"
)
_FOREIGN_STATE = re.compile(
    r"\[(STATE_STORE_(KEY|VALUE)_SCHEMA_NOT_COMPATIBLE|STATE_STORE_COLUMN_FAMILY_SCHEMA_"
    r"INCOMPATIBLE|STATE_STORE_INVALID_VALUE_SCHEMA_EVOLUTION|STREAMING_STATEFUL_OPERATOR_"
    r"NOT_MATCH_IN_STATE_METADATA)"
)
_NOT_EMPTY = "[STATE_STORE_CHECKPOINT_LOCATION_NOT_EMPTY]"
_PYTHON_PROXY = "An exception was raised by the Python Proxy"
_SPARK_ERROR = re.compile(r"^[\w.]+: (\[[A-Z][A-Z0-9_.]*\] .+)$", re.MULTILINE)


def describe_failure(error: Exception) -> str:
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
    spark = _SPARK_ERROR.findall(text) if text.startswith(_PYTHON_PROXY) else []
    if spark:  # Spark's own error, raised in a foreachBatch function (a named query's)
        return re.sub(r"\s*SQLSTATE: \w+\s*$", "", spark[-1]).strip()
    python = re.findall(r"^\w+(?:Error|Exception): (.+)$", text, flags=re.MULTILINE)
    line = (python[-1] if python else text.strip().splitlines()[0]).strip()
    line = re.sub(r"^\[STREAM_FAILED\] Query \[[^]]*\] terminated with exception: ", "", line)
    if _FOREIGN_STATE.search(line):
        line += " (the checkpoint holds another query's state: start over with --reset)"
    elif _NOT_EMPTY in line:
        line += (
            " (it holds files of a batch that never started, which are not the "
            "leftovers of a crash: look at them, or start over with --reset)"
        )
    return line


class Processor:
    """`hhar process`: start, watch and stop the streaming queries of one engine."""

    def __init__(self, settings: Settings, progress_log_level: int = logging.INFO) -> None:
        """Validate the selection in `settings` (no I/O); batches log at `progress_log_level`."""
        self.settings = settings
        self.names = select_queries(settings.queries)
        self.sinks = settings.sink
        self.engine: Engine = ENGINES[settings.engine]()
        self.status = ProcessorStatus(status_path(settings), settings.topic)
        self.listener = ProgressListener(self.status, progress_log_level)
        self.queries: dict[str, StreamingQuery] = {}
        self._spark: SparkSession | None = None
        self._sinks: ResultSinks | None = None
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._finished = False
        self.skipped: dict[str, int] = {}
        """Per streaming query, the unread events Kafka no longer held when it started."""
        self.named = NamedQueries(settings, reserved_names())
        """The named queries of ``--query-file``: streaming queries of their own."""
        self._named_failures: set[str] = set()

    @property
    def outputs(self) -> list[str]:
        """The selected queries and the ``bad_records`` side output."""
        return [*self.names, BAD_RECORDS]

    def streaming_names(self) -> list[str]:
        """The streaming queries the engine starts (checkpoint folders under the root)."""
        return self.engine.streaming_names(self.outputs)

    def preflight(self) -> None:
        """Check what can be checked before Spark starts: the broker, the topic, the history.

        A continuous run waits for a missing events topic; an available-now run fails.
        """
        if "live_vs_historical" in self.names:
            check_history(self.settings)
        check_events_topic(self.settings, wait=not self.settings.available_now)

    def start(
        self, spark: SparkSession, reset: bool = False, reset_queries: Sequence[str] = ()
    ) -> None:
        """Start the engine's streaming queries and the named ones; `reset` starts them all
        over, `reset_queries` these named queries."""
        self.preflight()
        self.named.analyze(spark)  # a query Spark cannot run stops the start: nothing written
        historical = (
            load_historical_stats(spark, self.settings)
            if "live_vs_historical" in self.names
            else None
        )
        files = CheckpointFiles(spark, self.settings.checkpoint)
        if reset:
            self._reset(spark, files)
        if reset_queries and not reset:
            self.named.reset(spark, reset_queries)
        named_checkpoints = self.named.checkpoints(spark)
        self.named.refuse_changed(named_checkpoints)
        checkpoints = {name: QueryCheckpoint(files, name) for name in self.streaming_names()}
        for checkpoint in checkpoints.values():
            checkpoint.claim()
            checkpoint.clear_interrupted_start()
            self.engine.check_checkpoint(checkpoint)
        self.named.claim(named_checkpoints)
        if not self.settings.fail_on_data_loss:
            self._count_skipped(checkpoints | named_checkpoints)
        if "kafka" in self.sinks:
            ensure_result_topics(self.settings, self.outputs)
            self.named.publish()
        self._sinks = ResultSinks(spark, self.settings, self.sinks)
        self._spark = spark
        self.status.serving_ui(spark.sparkContext.uiWebUrl)
        spark.streams.addListener(self.listener)
        self._started_at = time.monotonic()
        run = Run(
            spark,
            self.settings,
            [CATALOGUE[name] for name in self.outputs],
            self._sinks,
            checkpoints,
            self.status,
            historical,
        )
        try:
            self.queries = self.engine.start(run)
            self.named.start(run, named_checkpoints)
        except Exception:
            self.stop()
            raise
        for stream in self.streaming_names():
            # A streaming query named after an output computes it; the engine's other
            # streaming queries (the fused one) compute every output.
            outputs = self.outputs if stream not in self.outputs else [stream]
            self.status.annotate(stream, outputs=outputs)
        for name, definition in self.named.definitions.items():
            self.status.annotate(name, named=definition.source, topic=definition.topic)
        logger.info(
            "processing %s from %s with the %s engine (sinks: %s, %s)",
            ", ".join([*self.names, *(f"{name} (named)" for name in self.named.names)]),
            self.settings.topic,
            self.engine.name,
            ", ".join(self.sinks),
            "available now"
            if self.settings.available_now
            else f"trigger {format_duration(self.settings.trigger)}",
        )

    def _reset(self, spark: SparkSession, files: CheckpointFiles) -> None:
        """Remove the checkpoints of every output, engine query and named query, delete the
        result topics."""
        names = dict.fromkeys([*self.outputs, *self.streaming_names()])
        for name in names:
            if QueryCheckpoint(files, name).delete():
                logger.info("removed checkpoint %s", files.path(name))
        delete_result_topics(self.settings, self.outputs)
        if self.named.names:
            self.named.reset(spark, self.named.names)

    def _count_skipped(self, checkpoints: dict[str, QueryCheckpoint]) -> None:
        """Record (and log) the unread events Kafka removed before each query starts."""
        for name, checkpoint in checkpoints.items():
            gaps = removed_unread(self.settings, checkpoint.committed_offsets(self.settings.topic))
            self.skipped[name] = sum(end - start for start, end in gaps.values())
            if gaps:
                where = ", ".join(
                    f"partition {partition}: offsets {start} to {end - 1}"
                    for partition, (start, end) in sorted(gaps.items())
                )
                logger.warning(
                    "query %s skips %d events of %s that Kafka removed before they were read "
                    "(%s); fail_on_data_loss is off",
                    name,
                    self.skipped[name],
                    self.settings.topic,
                    where,
                )

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; True once every query has stopped.

        Raises:
            QueryFailedError: when a query (or the engine) failed; everything is stopped.
        """
        deadline = time.monotonic() + timeout
        for name, query in self.queries.items():
            try:
                if query.isActive:
                    # pyspark waits int(timeout * 1000) ms: seconds may be a fraction, though
                    # its annotation says int.
                    query.awaitTermination(
                        max(0.01, deadline - time.monotonic())  # type: ignore[arg-type]
                    )
                failure = query.exception()  # also of a query that ended before this call
            except StreamingQueryException as error:
                failure = error
            if failure is not None:
                self.stop()
                msg = f"query {name} failed: {describe_failure(failure)}"
                raise QueryFailedError(msg)
            self.status.observe(name, query.isActive, query.status["message"])
        engine_failure = self.engine.failure()
        if engine_failure is not None:
            self.stop()
            raise QueryFailedError(engine_failure)
        self._watch_named(deadline)
        done = not any(query.isActive for query in self.queries.values())
        if done and not self._finished and self._stopped_at is None:
            self._finished = True
            self.engine.finish()
        done = done and not any(query.isActive for query in self.named.queries.values())
        if done and self._stopped_at is None:
            self._stopped_at = time.monotonic()
        return done

    def _watch_named(self, deadline: float) -> None:
        """Wait for the named queries until `deadline` (monotonic) and record their state; one
        that failed stops alone (its error goes to the log and the status), the others go on."""
        for name, query in self.named.queries.items():
            if name in self._named_failures:
                continue
            try:
                if query.isActive:
                    query.awaitTermination(
                        max(0.01, deadline - time.monotonic())  # type: ignore[arg-type]
                    )
                failure = query.exception()
            except StreamingQueryException as error:
                failure = error
            if failure is None:
                self.status.observe(name, query.isActive, query.status["message"])
                continue
            self._named_failures.add(name)
            text = describe_failure(failure)
            logger.error("named query %s failed: %s; the other queries go on", name, text)
            self.status.failed(name, text)

    def stop(self) -> None:
        """Stop every query, the engine and the listener; safe to call twice."""
        for name, query in self.queries.items():
            if query.isActive:
                query.stop()
            self.status.observe(name, query.isActive, query.status["message"])
        self.named.stop()
        self.engine.stop()
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()
        if self._spark is not None:
            ids = {str(query.id) for query in self.all_queries.values()}
            if not self.listener.wait_until_ended(
                ids, _LISTENER_TIMEOUT, delivering=self._spark_running
            ):
                logger.warning("the progress of the last batches may be missing from the status")
            self._spark.streams.removeListener(self.listener)
            self._spark = None
            self.status.stopped()
        if self._sinks is not None:
            self._sinks.close()

    def _spark_running(self) -> bool:
        """False once Spark's context is stopped or its JVM gone (a SIGTERM to the whole
        process group stops the JVM too): no listener event comes after that."""
        from py4j.protocol import Py4JError

        try:
            return self._spark is not None and not self._spark.sparkContext._jsc.sc().isStopped()
        except (Py4JError, ConnectionError, AttributeError):
            return False

    @property
    def all_queries(self) -> dict[str, StreamingQuery]:
        """The engine's streaming queries, then the named ones."""
        return self.queries | self.named.queries

    def summary(self) -> dict[str, Any]:
        """Totals of this run: per query, events read per second of processing, and the
        unread events Kafka had removed (skipped with fail_on_data_loss off)."""
        snapshot = self.status.snapshot()["queries"]
        if self._started_at is None:
            elapsed = 0.0
        else:
            elapsed = (self._stopped_at or time.monotonic()) - self._started_at
        events = max(
            (snapshot[name]["input_rows"] for name in self.queries if name in snapshot), default=0
        )
        return {
            "engine": self.engine.name,
            "queries": {name: snapshot.get(name, {}) for name in self.all_queries},
            "events": events,
            "skipped_events": max(self.skipped.values(), default=0),
            "seconds": round(elapsed, 2),
            "events_per_second": round(events / elapsed, 1) if elapsed > 0 else None,
        }
