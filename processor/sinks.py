"""The processor's output: result records to Kafka's compacted result topics, Spark memory
tables and the console (`ResultSink`), and the result topics themselves."""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from confluent_kafka import KafkaError, Producer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType, TimestampType
from rich.console import Console
from rich.table import Table

from ..errors import QueryFailedError
from ..kafka_client import ADMIN_TIMEOUT, delete_topics, ensure_topics, result_topic_specs
from ..schemas.results import ENVELOPE_FIELDS, RESULT_RECORDS, ResultRecord
from ..schemas.spark import to_spark_schema
from ..settings import Settings
from .queries import positive_x

POSITIVE_X_VIEW = "activity_stats_positive_x"
"""Memory-sink view of the exercise's ``activity_stats where x_avg > 0``."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def ensure_result_topics(settings: Settings, queries: Sequence[str]) -> None:
    """Create the compacted result topics of `queries` that do not exist yet."""
    ensure_topics(settings, result_topic_specs(settings, queries))


def delete_result_topics(settings: Settings, queries: Sequence[str]) -> None:
    """Delete the result topics of `queries` (to start them over)."""
    delete_topics(settings, [settings.result_topic(name) for name in queries])


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
        *(
            F.unix_micros(name).alias(name) if name in timestamps else F.col(name)
            for name in columns
        )
    )
    records = []
    for row in selected.collect():
        values = row.asDict()
        for name in timestamps:
            if values[name] is not None:
                values[name] = _EPOCH + dt.timedelta(microseconds=values[name])
        records.append(record.model_validate(values | {"query": query, "batch_id": batch_id}))
    return records


class ResultSinks:
    """Writes result records to the chosen sinks, for every output of a processor.

    Kafka: one record per row to the query's compacted topic (key = group key JSON, value =
    record JSON); a replayed batch rewrites the same keys. Memory: a temp view named after the
    query with the latest record per key. Console: a table on stdout. Safe to use from the
    threads of several streaming queries at once.
    """

    watchers: ClassVar[list[Callable[[Mapping[str, int], int], None]]] = []
    """Called after every write with the records written per query and the batch id (the
    processor's metrics count them here, whatever the engine)."""

    def __init__(self, spark: SparkSession, settings: Settings, sinks: Sequence[str]) -> None:
        """Prepare `sinks` (any of kafka, memory, console) for the results of `settings`."""
        self.spark = spark
        self.settings = settings
        self.sinks = tuple(sinks)
        self.producer = result_producer(settings) if "kafka" in self.sinks else None
        self._tables: dict[str, dict[str, ResultRecord]] = {}
        self._lock = threading.Lock()
        self._schemas: dict[str, StructType] = {}

    def add_query(self, query: str, schema: StructType) -> None:
        """Write the results of a query that `RESULT_RECORDS` does not know (a named one):
        `schema` is the one of its memory table (the envelope, then its columns)."""
        self._schemas[query] = schema

    def writer(self, query: str, record: type[ResultRecord]) -> Callable[[DataFrame, int], None]:
        """A ``foreachBatch`` function that writes `query`'s rows of each micro-batch."""

        def write_batch(rows: DataFrame, batch_id: int) -> None:
            self.write({query: collect_records(rows, record, query, batch_id)}, batch_id)

        return write_batch

    def write(self, records: Mapping[str, Sequence[ResultRecord]], batch_id: int) -> None:
        """Write the records of micro-batch `batch_id` (query -> its records) and wait until
        Kafka has them all.

        Raises:
            QueryFailedError: when Kafka did not take every record.
        """
        if self.producer is not None:
            self._publish(records)
        for query, rows in records.items():
            if "memory" in self.sinks:
                self._refresh_table(query, rows)
            if "console" in self.sinks:
                self._print(query, rows, batch_id)
        written = {query: len(rows) for query, rows in records.items()}
        for watcher in ResultSinks.watchers:
            watcher(written, batch_id)

    def _publish(self, records: Mapping[str, Sequence[ResultRecord]]) -> None:
        assert self.producer is not None
        failures: list[str] = []

        def delivered(error: KafkaError | None, message: Any) -> None:
            if error is not None:
                failures.append(f"{message.topic()}: {error.str()}")

        for query, rows in records.items():
            topic = self.settings.result_topic(query)
            for record in rows:
                while True:
                    try:
                        self.producer.produce(
                            topic,
                            key=record.key_json(),
                            value=record.value_json(),
                            on_delivery=delivered,
                        )
                        break
                    except BufferError:
                        self.producer.poll(0.5)
            self.producer.poll(0)
        remaining = self.producer.flush(ADMIN_TIMEOUT)
        if failures or remaining:
            detail = failures[0] if failures else f"{remaining} records not delivered in time"
            msg = f"writing results to Kafka failed: {detail}"
            raise QueryFailedError(msg)

    def _refresh_table(self, query: str, records: Sequence[ResultRecord]) -> None:
        with self._lock:
            table = self._tables.get(query)
            if table is not None and not records:
                return
            table = self._tables.setdefault(query, {})
            for record in records:
                table[record.key_json()] = record
            rows = [record.model_dump(by_alias=True) for record in table.values()]
        if query in self._schemas:
            schema = self._schemas[query]
        else:
            schema = to_spark_schema(type(records[0]) if records else RESULT_RECORDS[query])
        frame = self.spark.createDataFrame(rows, schema=schema)
        frame.createOrReplaceTempView(query)
        if query == "activity_stats":
            positive_x(frame).createOrReplaceTempView(POSITIVE_X_VIEW)

    def _print(self, query: str, records: Sequence[ResultRecord], batch_id: int) -> None:
        if not records:
            return
        columns = row_columns(type(records[0]))
        table = Table()
        for column in columns:
            table.add_column(column)
        for record in records:
            values = record.model_dump(by_alias=True)
            table.add_row(*("" if values[name] is None else str(values[name]) for name in columns))
        console = Console(file=sys.stdout, width=200)
        console.print(f"{query}, batch {batch_id}: {len(records)} rows")
        console.print(table)

    def close(self) -> None:
        """Deliver what is still queued."""
        if self.producer is not None:
            self.producer.flush(ADMIN_TIMEOUT)


def result_producer(settings: Settings) -> Producer:
    """The Kafka producer the result sinks share (idempotent, acks=all)."""
    return Producer(
        settings.kafka_client_config()
        | {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": settings.compression,
        }
    )
