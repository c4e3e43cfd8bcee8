"""An ad hoc continuous query (what `hhar sql` runs): one SELECT over the live events, its
micro-batches handed to whoever shows them, nothing left behind.

`AdHocQuery` starts the analyzed query (`sql.analyze`) as a streaming query of its own, in
the output mode the query calls for, with a temporary checkpoint (in the system's temporary
folder on a local master, under the checkpoint root on a cluster, whose executors must reach
it); each micro-batch's rows become records (`named.collect_rows`) in a queue. `stop` stops
the query and removes its checkpoint; nothing is written to Kafka. A query that reads no
stream (only ``history``) runs once, as a batch (`batch_records`).
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import uuid
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql.streaming import StreamingQuery

from ..schemas.queries import record_model
from ..schemas.results import ResultRecord
from ..settings import Settings, format_duration
from .checkpoints import CheckpointFiles
from .named import collect_rows
from .runner import describe_failure
from .sql import Analysis

logger = logging.getLogger(__name__)

QUERY_NAME = "sql"
"""The ``query`` of an ad hoc query's records."""

Batch = tuple[int, list[ResultRecord]]
"""A micro-batch: its id and its rows as records."""


def ad_hoc_model(analysis: Analysis) -> type[ResultRecord]:
    """The record model of an ad hoc query's rows."""
    return record_model(QUERY_NAME, analysis.columns, analysis.key_columns)


def batch_records(analysis: Analysis) -> list[ResultRecord]:
    """The rows of a query that reads no stream, computed once."""
    return collect_rows(analysis.frame, ad_hoc_model(analysis), QUERY_NAME, 0)


class AdHocQuery:
    """One ad hoc query running over the events topic until stopped."""

    def __init__(self, analysis: Analysis, settings: Settings) -> None:
        """Prepare (not start) the streaming query of `analysis` (a streaming one)."""
        assert analysis.output_mode is not None
        self.analysis = analysis
        self.settings = settings
        self.model = ad_hoc_model(analysis)
        self.batches: queue.Queue[Batch] = queue.Queue()
        self.query: StreamingQuery | None = None
        self._local_checkpoint: Path | None = None
        self._files: CheckpointFiles | None = None
        self._checkpoint = ""

    def _make_checkpoint(self) -> str:
        spark = self.analysis.frame.sparkSession
        if self.settings.master.startswith("local"):
            self._local_checkpoint = Path(tempfile.mkdtemp(prefix="hhar-sql-"))
            return str(self._local_checkpoint)
        self._files = CheckpointFiles(spark, self.settings.checkpoint)
        self._checkpoint = f"sql-{uuid.uuid4().hex}"
        return self._files.path(self._checkpoint)

    def start(self) -> None:
        """Start the query: its first micro-batch reads from ``--from`` (starting offsets)."""
        location = self._make_checkpoint()
        writer = (
            self.analysis.frame.writeStream.queryName(f"hhar_sql_{uuid.uuid4().hex[:8]}")
            .outputMode(self.analysis.output_mode or "append")
            .option("checkpointLocation", location)
            .foreachBatch(self._batch)
            .trigger(processingTime=format_duration(self.settings.trigger))
        )
        self.query = writer.start()

    def _batch(self, rows: DataFrame, batch_id: int) -> None:
        self.batches.put((batch_id, collect_rows(rows, self.model, QUERY_NAME, batch_id)))

    def next_batch(self, timeout: float) -> Batch | None:
        """The next micro-batch's rows, or None when none came within `timeout` seconds."""
        try:
            return self.batches.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def events_read(self) -> int:
        """Events (valid or not) the query has read so far, from Spark's recent progress."""
        if self.query is None:
            return 0
        return sum(int(progress.numInputRows or 0) for progress in self.query.recentProgress)

    def failure(self) -> str | None:
        """Why the query stopped by itself, if it failed."""
        if self.query is None or self.query.isActive:
            return None
        error = self.query.exception()
        return None if error is None else describe_failure(error)

    def stop(self) -> None:
        """Stop the query and remove its checkpoint (safe to call twice)."""
        if self.query is not None and self.query.isActive:
            self.query.stop()
        if self._local_checkpoint is not None:
            shutil.rmtree(self._local_checkpoint, ignore_errors=True)
            self._local_checkpoint = None
        if self._files is not None:
            self._files.delete(self._checkpoint)
            self._files = None
