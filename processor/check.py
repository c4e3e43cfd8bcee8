"""Stream equals batch, for named queries: `hhar queries check NAME`.

The named query's SQL runs once, as a batch, over what the events topic held at the results'
last batch (the end offsets Spark logged for the query's last committed batch), with the same
tables and rules; its rows are compared with the result topic's current rows, key by key
(counts exactly, fractions within a relative 1e-9: the stream adds its partial sums in another
order). An ``EMIT FINAL`` query is compared on the windows the watermark of that batch had
closed; the others of the batch are not final yet.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from ..errors import QueryFailedError
from ..kafka_client import latest_values
from ..schemas.queries import QueryDefinition
from ..schemas.results import ENVELOPE_FIELDS, ResultRecord
from ..settings import Settings
from .checkpoints import CheckpointFiles, QueryCheckpoint, resolve_root
from .named import NAMED_FOLDER, collect_rows
from .source import MESSAGE_COLUMNS
from .sql import EVENTS, SqlSource, SqlStatement, reads_history, register_tables, resolve

RELATIVE_TOLERANCE = 1e-9
_SNAPSHOT_TRIES = 20
"""Reads of the results and the checkpoint until both are of the same batch (a running
processor moves on meanwhile)."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class Difference:
    """A key whose row is not the same in the results and in the batch (None: no row)."""

    key: str
    results: dict[str, Any] | None
    batch: dict[str, Any] | None

    def describe(self) -> str:
        """One line: the key, then the values that differ (or the row that is missing)."""
        if self.results is None:
            return f"{self.key}: not in the results; the batch has {_text(self.batch)}"
        if self.batch is None:
            return f"{self.key}: not in the batch; the results have {_text(self.results)}"
        changed = {
            name: (value, self.batch.get(name))
            for name, value in self.results.items()
            if not _same({name: value}, {name: self.batch.get(name)})
        }
        return f"{self.key}: " + ", ".join(
            f"{name} is {json.dumps(mine)} in the results, {json.dumps(theirs)} in the batch"
            for name, (mine, theirs) in changed.items()
        )


def _text(row: dict[str, Any] | None) -> str:
    return ", ".join(f"{name}={json.dumps(value)}" for name, value in (row or {}).items())


@dataclass
class CheckResult:
    """What `check_query` found."""

    name: str
    batch_id: int
    events: int
    """Messages of the events topic up to the batch (valid events and bad ones)."""
    rows: int
    """Rows compared (the batch's, final ones for EMIT FINAL)."""
    open_rows: int = 0
    """EMIT FINAL: rows of windows the watermark had not closed (not compared)."""
    differences: list[Difference] = field(default_factory=list)

    def details(self, limit: int = 20) -> list[str]:
        """A line per row that differs (the first `limit`): its key, then how."""
        lines = [difference.describe() for difference in self.differences[:limit]]
        if len(self.differences) > limit:
            lines.append(f"... and {len(self.differences) - limit:,} more")
        return lines

    @property
    def equal(self) -> bool:
        """True when every row is the same."""
        return not self.differences

    def summary(self) -> str:
        """One line: equal, or how many rows differ."""
        where = f"the {self.events:,} messages up to its batch {self.batch_id}"
        opened = (
            f"; {self.open_rows:,} rows of windows still open not compared"
            if (self.open_rows)
            else ""
        )
        if self.equal:
            return (
                f"{self.name}: the results equal the query run as a batch over {where} "
                f"({self.rows:,} rows{opened})"
            )
        return (
            f"{self.name}: {len(self.differences):,} of {self.rows:,} rows differ from the "
            f"query run as a batch over {where}{opened}"
        )


def _row(record: ResultRecord) -> dict[str, Any]:
    values: dict[str, Any] = record.model_dump(
        mode="json", by_alias=True, exclude=set(ENVELOPE_FIELDS)
    )
    return values


def _same(left: dict[str, Any], right: dict[str, Any]) -> bool:
    if left.keys() != right.keys():
        return False
    for name, value in left.items():
        other = right[name]
        if isinstance(value, float) and isinstance(other, float | int):
            if not math.isclose(value, other, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12):
                return False
        elif value != other:
            return False
    return True


def _snapshot(
    settings: Settings, definition: QueryDefinition, checkpoint: QueryCheckpoint
) -> tuple[int, dict[str, ResultRecord]]:
    """The last committed batch and the result topic's rows of that batch (read again while a
    running processor moves on between the two reads)."""
    model = definition.record_model()
    for _ in range(_SNAPSHOT_TRIES):
        before = checkpoint.committed_batches()
        values = latest_values(settings, definition.topic)
        after = checkpoint.committed_batches()
        records = {key.decode(): model.model_validate_json(value) for key, value in values.items()}
        newest = max((record.batch_id for record in records.values()), default=-1)
        if before and before == after and newest <= after[-1]:
            return after[-1], records
        if not after:
            msg = (
                f"query {definition.name} has not committed a batch yet: run hhar process "
                f"with its query file first (checkpoint {checkpoint.location})"
            )
            raise QueryFailedError(msg)
        time.sleep(0.5)
    msg = f"query {definition.name}: its results and checkpoint did not settle on one batch"
    raise QueryFailedError(msg)


def _messages(spark: SparkSession, settings: Settings, offsets: dict[int, int]) -> DataFrame:
    """The events topic's messages before `offsets` (per partition), read once as a batch."""
    ending = json.dumps({settings.topic: {str(p): offset for p, offset in offsets.items()}})
    return (
        spark.read.format("kafka")
        .options(**settings.spark_kafka_options())
        .option("subscribe", settings.topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", ending)
        .option("kafka.isolation.level", "read_committed")
        .load()
        .select(*MESSAGE_COLUMNS)
    )


def _closes(definition: QueryDefinition, row: dict[str, Any]) -> dt.datetime | None:
    """When an EMIT FINAL row is final: the end of its window."""
    if definition.window_end is None:
        return None
    value = row[definition.window_end]
    if isinstance(value, dict):
        value = value.get("end")
    if value is None:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def check_query(
    spark: SparkSession, settings: Settings, definition: QueryDefinition
) -> CheckResult:
    """Compare named query `definition`'s results with its SQL run as a batch over the events
    its last committed batch had read.

    Raises:
        QueryFailedError: when the query has no committed batch, or its SQL no longer runs.
    """
    files = CheckpointFiles(spark, f"{resolve_root(settings.checkpoint)}/{NAMED_FOLDER}")
    checkpoint = QueryCheckpoint(files, definition.name)
    batch_id, results = _snapshot(settings, definition, checkpoint)
    offsets = checkpoint.committed_offsets(settings.topic)
    messages = _messages(spark, settings, offsets).cache()  # read from Kafka once
    register_tables(spark, settings, messages, history=reads_history([definition.sql]))
    statement = SqlStatement(definition.sql, SqlSource(definition.sql, definition.source), 0)
    try:
        frame = resolve(spark, statement, settings)
    finally:
        spark.catalog.dropTempView(EVENTS)
    expected = {
        record.key_json(): record
        for record in collect_rows(frame, definition.record_model(), definition.name, batch_id)
    }
    open_rows = 0
    if definition.output_mode == "append" and definition.window_end is not None:
        watermark = _EPOCH + dt.timedelta(milliseconds=checkpoint.batch_watermark_ms(batch_id))
        closed = {}
        for key, record in expected.items():
            end = _closes(definition, _row(record))
            if end is not None and end <= watermark:
                closed[key] = record
        open_rows = len(expected) - len(closed)
        expected = closed
    result = CheckResult(definition.name, batch_id, messages.count(), len(expected), open_rows)
    messages.unpersist()
    for key in sorted(set(expected) | set(results)):
        mine = _row(results[key]) if key in results else None
        theirs = _row(expected[key]) if key in expected else None
        if mine is None or theirs is None or not _same(mine, theirs):
            result.differences.append(Difference(key, mine, theirs))
    return result
