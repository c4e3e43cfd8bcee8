"""The processor's input and output: the Kafka source, the static history, result topics,
checkpoints and the result sinks. The only module that reads or writes outside Spark's plans.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Producer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import TimestampType
from rich.console import Console
from rich.table import Table

from ..errors import BrokerError, InputDataError, QueryFailedError
from ..kafka_client import (
    check_broker,
    delete_topics,
    ensure_topics,
    list_topics,
    result_topic_specs,
    watermark_offsets,
)
from ..schemas.results import ENVELOPE_FIELDS, ResultRecord
from ..schemas.spark import to_spark_schema
from ..settings import Settings
from .queries import positive_x

logger = logging.getLogger(__name__)

POSITIVE_X_VIEW = "activity_stats_positive_x"
"""Memory-sink view of the exercise's ``activity_stats where x_avg > 0``."""

_ADMIN_TIMEOUT = 30.0
_WAIT_REPORT_SECONDS = 30.0
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# --- input ----------------------------------------------------------------------------------
def read_event_stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """The events topic as a stream of raw messages: partition, offset, timestamp, value.

    Reads committed messages only (``isolation.level=read_committed``), so events of an
    aborted producer transaction never count.
    """
    reader = (
        spark.readStream.format("kafka")
        .options(**settings.spark_kafka_options())
        .option("subscribe", settings.topic)
        .option("startingOffsets", settings.starting_offsets)
        .option("failOnDataLoss", str(settings.fail_on_data_loss).lower())
        .option("kafka.isolation.level", "read_committed")
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
    return reader.load().select("partition", "offset", "timestamp", "value")


def read_event_lines(spark: SparkSession, path: Path) -> DataFrame:
    """The lines of a JSON-lines file or folder (``.gz`` too) as a static ``value`` column.

    Spark skips the folder's ``_SUCCESS``-style marker files.

    Raises:
        InputDataError: when `path` does not exist or holds no file.
    """
    if not path.exists():
        msg = f"{path} does not exist"
        raise InputDataError(msg)
    if path.is_dir() and not any(
        item.is_file() and not item.name.startswith(("_", ".")) for item in path.rglob("*")
    ):
        msg = f"{path} holds no data file"
        raise InputDataError(msg)
    return spark.read.text(str(path))


def _committed_offsets(query_checkpoint: Path, topic: str) -> dict[int, int]:
    """Where a query resumes in `topic`: the end offsets of its last committed batch.

    Spark logs a batch's end offsets in ``offsets/<batch>`` (a version line, the batch
    metadata, then one JSON line per source) and ``commits/<batch>`` once the batch is done.
    Empty before the first committed batch.
    """
    commits = [int(path.name) for path in (query_checkpoint / "commits").glob("[0-9]*")
               if path.name.isdigit()]
    if not commits:
        return {}
    source = json.loads((query_checkpoint / "offsets" / str(max(commits))).read_text()
                        .splitlines()[-1])
    return {int(partition): offset for partition, offset in source.get(topic, {}).items()}


def removed_unread(settings: Settings, query_checkpoint: Path) -> dict[int, tuple[int, int]]:
    """Offsets of the events topic a query has not read and Kafka no longer holds.

    Per partition, (from, to): from the query's committed position up to the partition's
    earliest offset, which retention (or deleted records) moved past it.
    """
    resume = _committed_offsets(query_checkpoint, settings.topic)
    if not resume:
        return {}
    earliest = {partition: low for partition, (low, _) in
                watermark_offsets(settings, settings.topic, resume).items()}
    return {partition: (offset, earliest[partition]) for partition, offset in resume.items()
            if earliest[partition] > offset}


def check_events_topic(settings: Settings, wait: bool = False) -> None:
    """Fail with a clear message unless the broker answers and the events topic exists.

    With `wait`, a missing topic is waited for (a processor may start before its producer).
    """
    missing = (
        f"topic {settings.topic!r} does not exist at {settings.bootstrap}: produce events "
        f"first (hhar produce) or choose --topic"
    )
    check_broker(settings)  # names refused credentials as such
    reported_at = None
    while settings.topic not in list_topics(settings):
        if not wait:
            raise BrokerError(missing)
        if reported_at is None or time.monotonic() - reported_at > _WAIT_REPORT_SECONDS:
            logger.info("waiting for topic %s to exist (start the producer)", settings.topic)
            reported_at = time.monotonic()
        time.sleep(1.0)


def ensure_result_topics(settings: Settings, queries: Sequence[str]) -> None:
    """Create the compacted result topics of `queries` that do not exist yet."""
    ensure_topics(settings, result_topic_specs(settings, queries))


def checkpoint_dir(settings: Settings, query: str) -> Path:
    """The checkpoint folder of one query under the checkpoint root."""
    return settings.checkpoint / query


CHECKPOINT_OWNER_FILE = "hhar-query"
"""File in a query's checkpoint folder naming the query it belongs to."""


def claim_checkpoint(settings: Settings, query: str) -> None:
    """Mark the checkpoint folder of `query` as its own; refuse one of another query.

    Spark notices a foreign checkpoint only when a micro-batch touches its state, and not at
    all when there is nothing new to read: this check makes the mistake an error at start.

    Raises:
        QueryFailedError: when the folder belongs to another query.
    """
    folder = checkpoint_dir(settings, query)
    owner_file = folder / CHECKPOINT_OWNER_FILE
    if owner_file.exists():
        owner = owner_file.read_text().strip()
        if owner != query:
            msg = (
                f"query {query} cannot start: its checkpoint {folder} belongs to query "
                f"{owner}; choose another --checkpoint, or start over with --reset"
            )
            raise QueryFailedError(msg)
        return
    folder.mkdir(parents=True, exist_ok=True)
    owner_file.write_text(f"{query}\n")


def reset_outputs(settings: Settings, queries: Sequence[str]) -> None:
    """Start `queries` over: remove their checkpoints and delete their result topics."""
    for name in queries:
        folder = checkpoint_dir(settings, name)
        if folder.exists():
            shutil.rmtree(folder)
            logger.info("removed checkpoint %s", folder)
    delete_topics(settings, [settings.result_topic(name) for name in queries])


# --- output ---------------------------------------------------------------------------------
def row_columns(record: type[ResultRecord]) -> list[str]:
    """The columns of a query's result rows: the record's fields past the envelope."""
    envelope = set(ENVELOPE_FIELDS)
    return [
        field.alias or name for name, field in record.model_fields.items() if name not in envelope
    ]


def collect_records(
    rows: DataFrame, record: type[ResultRecord], query: str, batch_id: int
) -> list[ResultRecord]:
    """The rows of one result DataFrame as validated records of `query`'s model."""
    columns = row_columns(record)
    timestamps = {
        field.name for field in rows.schema.fields if isinstance(field.dataType, TimestampType)
    }
    # Timestamps travel as epoch microseconds: Python's collect would make them naive local
    # times, whatever Spark's session time zone says.
    selected = rows.select(
        *(F.unix_micros(name).alias(name) if name in timestamps else F.col(name)
          for name in columns)
    )
    records = []
    for row in selected.collect():
        values = row.asDict()
        for name in timestamps:
            if values[name] is not None:
                values[name] = _EPOCH + dt.timedelta(microseconds=values[name])
        records.append(record.model_validate(values | {"query": query, "batch_id": batch_id}))
    return records


class ResultSink:
    """Writes each micro-batch of one query's results to the chosen sinks (``foreachBatch``).

    Kafka: one record per row to the query's compacted topic (key = group key JSON, value =
    record JSON); a replayed batch rewrites the same keys. Memory: a temp view named after the
    query with the latest record per key. Console: a table on stdout.
    """

    def __init__(
        self,
        spark: SparkSession,
        settings: Settings,
        query: str,
        record: type[ResultRecord],
        sinks: Sequence[str],
        producer: Producer | None = None,
    ) -> None:
        """Prepare the sinks of `query`; `producer` is required for the Kafka sink."""
        if "kafka" in sinks and producer is None:
            msg = "the Kafka sink needs a producer"
            raise ValueError(msg)
        self.spark = spark
        self.query = query
        self.record = record
        self.sinks = tuple(sinks)
        self.topic = settings.result_topic(query)
        self.producer = producer
        self._table: dict[str, ResultRecord] = {}
        self._lock = threading.Lock()

    def __call__(self, rows: DataFrame, batch_id: int) -> None:
        """Write the rows of micro-batch `batch_id`."""
        self.write(collect_records(rows, self.record, self.query, batch_id), batch_id)

    def write(self, records: list[ResultRecord], batch_id: int) -> None:
        """Write the records (`collect_records`) of micro-batch `batch_id`."""
        if "kafka" in self.sinks:
            self._publish(records)
        if "memory" in self.sinks:
            self._refresh_table(records)
        if "console" in self.sinks:
            self._print(records, batch_id)

    def _publish(self, records: list[ResultRecord]) -> None:
        failures: list[str] = []

        def delivered(error: KafkaError | None, _message: Any) -> None:
            if error is not None:
                failures.append(error.str())

        for record in records:
            while True:
                try:
                    self.producer.produce(
                        self.topic, key=record.key_json(), value=record.value_json(),
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.5)
            self.producer.poll(0)
        remaining = self.producer.flush(_ADMIN_TIMEOUT)
        if failures or remaining:
            detail = failures[0] if failures else f"{remaining} records not delivered in time"
            msg = f"writing {self.query} results to {self.topic} failed: {detail}"
            raise QueryFailedError(msg)

    def _refresh_table(self, records: list[ResultRecord]) -> None:
        with self._lock:
            for record in records:
                self._table[record.key_json()] = record
            rows = [record.model_dump(by_alias=True) for record in self._table.values()]
        table = self.spark.createDataFrame(rows, schema=to_spark_schema(self.record))
        table.createOrReplaceTempView(self.query)
        if self.query == "activity_stats":
            positive_x(table).createOrReplaceTempView(POSITIVE_X_VIEW)

    def _print(self, records: list[ResultRecord], batch_id: int) -> None:
        if not records:
            return
        columns = row_columns(self.record)
        table = Table()
        for column in columns:
            table.add_column(column)
        for record in records:
            values = record.model_dump(by_alias=True)
            table.add_row(*("" if values[name] is None else str(values[name]) for name in columns))
        console = Console(file=sys.stdout, width=200)
        console.print(f"{self.query}, batch {batch_id}: {len(records)} rows")
        console.print(table)


def result_producer(settings: Settings) -> Producer:
    """The Kafka producer the result sinks share (idempotent, acks=all)."""
    return Producer(
        settings.kafka_client_config()
        | {"enable.idempotence": True, "acks": "all", "linger.ms": 5,
           "compression.type": settings.compression}
    )
