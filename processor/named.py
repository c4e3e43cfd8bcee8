"""Named continuous queries: users' SQL that `hhar process` runs beside the built-in queries.

A named query (``CREATE QUERY name AS SELECT ...;`` in a file of ``--query-file``, `sql`) is a
streaming query of its own, whatever the engine: it reads and parses the events topic itself
(its cost: one more read of the topic), keeps its state in Spark's state store and its
checkpoint in ``<checkpoint root>/named/<name>``, and writes its rows to the sinks as the
built-in queries do: ``hhar.results.<name>`` (compacted; key = its key columns as JSON, value =
the row in the envelope ``query``, ``batch_id``, then the columns), a memory table, the console.

Its definition (`schemas.queries.QueryDefinition`: SQL, description, output mode, key columns,
columns, topic) becomes a catalogue entry at run time (`catalogue.named_query`), and is
published to the compacted definitions topic (``Settings.query_definitions_topic``, key = the
name), which `hhar watch`, the dashboard and `hhar queries` read: views on other machines learn
what to show from Kafka, which they read anyway (as ksqlDB's command topic tells its servers).

The checkpoint remembers the query's SQL (``hhar-sql``): a query whose SQL changed under the
same name refuses its old checkpoint (whose state and results belong to the old SQL) and names
the way to start that query over alone (``--reset-query NAME``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from ..errors import BrokerError, SqlError
from ..kafka_client import ADMIN_TIMEOUT, definitions_topic_spec, ensure_topics, latest_values
from ..schemas.queries import QueryDefinition
from ..schemas.results import ResultRecord
from ..settings import Settings
from .catalogue import Query, named_query
from .checkpoints import CheckpointFiles, QueryCheckpoint, resolve_root
from .engine import Run
from .sinks import delete_result_topics, ensure_result_topics, result_producer
from .sql import (
    Analysis,
    SqlStatement,
    analyze,
    parse_query_files,
    reads_history,
    register_tables,
)

logger = logging.getLogger(__name__)

NAMED_FOLDER = "named"
"""Folder of the named queries' checkpoints under the checkpoint root."""
SQL_MARK = "hhar-sql"
"""File in a named query's checkpoint: the SQL it was written with, and its fingerprint."""


def definition_of(analysis: Analysis, settings: Settings) -> QueryDefinition:
    """The definition of an analyzed named query."""
    statement = analysis.statement
    assert statement.name is not None and analysis.output_mode is not None
    return QueryDefinition(
        name=statement.name,
        sql=statement.sql,
        description=statement.description,
        source=statement.source.line_of(statement.start),
        output_mode=analysis.output_mode,
        key_columns=analysis.key_columns,
        columns=analysis.columns,
        window_end=analysis.window_end,
        topic=settings.result_topic(statement.name),
        fingerprint=statement.fingerprint,
    )


def _memory_type(data_type: DataType, nested: bool = False) -> DataType:
    """The type a record's value of `data_type` fits in a memory table: decimals are floats,
    binary is base64 text, and inside structs, arrays and maps times are ISO texts (as JSON
    wrote them)."""
    if isinstance(data_type, DecimalType):
        return DoubleType()
    if isinstance(data_type, BinaryType):
        return StringType()
    if nested and isinstance(data_type, TimestampType | TimestampNTZType | DateType):
        return StringType()
    if isinstance(data_type, StructType):
        return StructType(
            [
                StructField(field.name, _memory_type(field.dataType, True), True)
                for field in data_type.fields
            ]
        )
    if isinstance(data_type, ArrayType):
        return ArrayType(_memory_type(data_type.elementType, True), True)
    if isinstance(data_type, MapType):
        return MapType(StringType(), _memory_type(data_type.valueType, True), True)
    if isinstance(data_type, TimestampNTZType):
        return TimestampType()
    return data_type


def memory_schema(result: StructType) -> StructType:
    """The schema of a named query's memory table: the envelope, then the result's columns."""
    return StructType(
        [
            StructField("query", StringType(), True),
            StructField("batch_id", LongType(), True),
            *(StructField(f.name, _memory_type(f.dataType), True) for f in result.fields),
        ]
    )


def collect_rows(
    rows: DataFrame, record: type[ResultRecord], query: str, batch_id: int
) -> list[ResultRecord]:
    """The rows of one micro-batch of a named query as validated records.

    Spark writes each row as JSON (timestamps in ISO-8601 UTC, nulls kept), whatever its
    columns' types: the record model reads them as it reads them from Kafka.
    """
    as_json = rows.select(
        F.to_json(F.struct(*(rows[name] for name in rows.columns)), {"ignoreNullFields": "false"})
    )
    envelope = {"query": query, "batch_id": batch_id}
    return [record.model_validate(json.loads(row[0]) | envelope) for row in as_json.collect()]


class NamedQueries:
    """The named queries of one processor: read, asked of Spark, started, watched, stopped."""

    def __init__(self, settings: Settings, reserved: Iterable[str]) -> None:
        """Read the query files of `settings` (no Spark yet); `reserved`: names taken by
        the built-in queries and the engine's streaming queries.

        Raises:
            SqlError: for a statement that is not a named query, a bad or taken name, a name
                defined twice, an empty file.
            InputDataError: for a query file that does not exist.
        """
        self.settings = settings
        self.statements: list[SqlStatement] = (
            parse_query_files(settings.query_file, reserved) if settings.query_file else []
        )
        self.analyses: dict[str, Analysis] = {}
        self.definitions: dict[str, QueryDefinition] = {}
        self.queries: dict[str, StreamingQuery] = {}

    @property
    def names(self) -> list[str]:
        """The named queries, in the order of their files."""
        return [statement.name for statement in self.statements if statement.name]

    def entries(self) -> list[Query]:
        """The catalogue entries of the named queries (once analyzed)."""
        return [named_query(definition) for definition in self.definitions.values()]

    def analyze(self, spark: SparkSession) -> None:
        """Ask Spark about every named query before any data is read (`sql.analyze`).

        Raises:
            SqlError: for the first query a stream cannot run, in words.
        """
        if not self.statements:
            return
        queries = [statement.sql for statement in self.statements]
        register_tables(spark, self.settings, history=reads_history(queries))
        for statement in self.statements:
            assert statement.name is not None
            analysis = analyze(spark, statement, self.settings, named=True)
            self.analyses[statement.name] = analysis
            self.definitions[statement.name] = definition_of(analysis, self.settings)

    def checkpoints(self, spark: SparkSession) -> dict[str, QueryCheckpoint]:
        """The checkpoint of each named query (``<root>/named/<name>``)."""
        files = CheckpointFiles(spark, f"{resolve_root(self.settings.checkpoint)}/{NAMED_FOLDER}")
        return {name: QueryCheckpoint(files, name) for name in self.names}

    def refuse_changed(self, checkpoints: dict[str, QueryCheckpoint]) -> None:
        """Refuse a checkpoint written by a named query whose SQL has changed since (nothing
        is written).

        Raises:
            SqlError: naming the query, its checkpoint and the way to start it over alone.
        """
        for name, checkpoint in checkpoints.items():
            mark = checkpoint.files.read_text(f"{name}/{SQL_MARK}")
            if mark is None:
                continue
            definition = self.definitions[name]
            if json.loads(mark).get("fingerprint") != definition.fingerprint:
                msg = (
                    f"query {name} ({definition.source}) cannot start: its SQL changed since "
                    f"its checkpoint {checkpoint.location} was written; start it over with "
                    f"hhar process --reset-query {name} (its checkpoint and results go), or "
                    f"give the new query a new name"
                )
                raise SqlError(msg)

    def claim(self, checkpoints: dict[str, QueryCheckpoint]) -> None:
        """Claim each checkpoint (`QueryCheckpoint.claim`), clear a crash's leftovers, and
        record the SQL it is written with."""
        for name, checkpoint in checkpoints.items():
            checkpoint.claim()
            checkpoint.clear_interrupted_start()
            if not checkpoint.files.exists(f"{name}/{SQL_MARK}"):
                definition = self.definitions[name]
                mark = {"fingerprint": definition.fingerprint, "sql": definition.sql}
                checkpoint.files.write_text(f"{name}/{SQL_MARK}", json.dumps(mark, indent=2))

    def reset(self, spark: SparkSession, names: Sequence[str]) -> None:
        """Start the named queries `names` over: remove their checkpoints, delete their result
        topics."""
        checkpoints = self.checkpoints(spark)
        for name in names:
            if checkpoints[name].delete():
                logger.info("removed checkpoint %s", checkpoints[name].location)
        delete_result_topics(self.settings, names)

    def publish(self) -> None:
        """Create the result topics, publish the definitions of the queries that run, and
        withdraw (a null value) those of queries this processor no longer runs.

        Raises:
            BrokerError: when Kafka does not take them.
        """
        topic = self.settings.query_definitions_topic
        published = latest_values(self.settings, topic)
        if not self.definitions and not published:
            return  # no named query, and none to withdraw: no topic to create
        ensure_result_topics(self.settings, self.names)
        ensure_topics(self.settings, definitions_topic_spec(self.settings))
        producer = result_producer(self.settings)
        for name, definition in self.definitions.items():
            producer.produce(topic, key=name, value=definition.model_dump_json())
        for key in published:
            if key.decode() not in self.definitions:
                producer.produce(topic, key=key, value=None)
                logger.info("withdrew the definition of query %s (not run any more)", key.decode())
        if producer.flush(ADMIN_TIMEOUT):
            msg = f"publishing the named queries' definitions to {topic} failed"
            raise BrokerError(msg)

    def start(self, run: Run, checkpoints: dict[str, QueryCheckpoint]) -> dict[str, StreamingQuery]:
        """Start one streaming query per named query, each with its checkpoint of
        `checkpoints`, the sinks and trigger of `run`."""
        run = dataclasses.replace(run, checkpoints=checkpoints)
        for name, analysis in self.analyses.items():
            definition = self.definitions[name]
            run.sinks.add_query(name, memory_schema(analysis.frame.schema))
            self.queries[name] = run.start_stream(
                name,
                analysis.frame,
                definition.output_mode,
                self._writer(run, definition),
            )
        return self.queries

    @staticmethod
    def _writer(run: Run, definition: QueryDefinition) -> Callable[[DataFrame, int], None]:
        record = definition.record_model()
        name = definition.name

        def write_batch(rows: DataFrame, batch_id: int) -> None:
            run.sinks.write({name: collect_rows(rows, record, name, batch_id)}, batch_id)

        return write_batch

    def stop(self) -> None:
        """Stop every named query still running."""
        for query in self.queries.values():
            if query.isActive:
                query.stop()


def read_definitions(settings: Settings) -> dict[str, QueryDefinition]:
    """The definitions of the named queries the processor of `settings` runs, from the
    definitions topic (none when it does not exist); records that do not parse are skipped.

    Raises:
        BrokerError: when the broker does not answer.
    """
    definitions: dict[str, QueryDefinition] = {}
    for key, value in latest_values(settings, settings.query_definitions_topic).items():
        try:
            definitions[key.decode()] = QueryDefinition.model_validate_json(value)
        except ValueError as error:
            logger.warning("skipping the definition of %s: %s", key.decode(errors="replace"), error)
    return definitions
