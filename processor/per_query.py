"""The per-query engine: every query is a streaming query of its own, as the exercise ran them.

Each query reads and parses the events topic itself and keeps its state in Spark's state
store (distributed over the executors, checkpointed by Spark): the reference the fused engine
is tested against, and the engine for key spaces too large for the driver.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql.streaming import StreamingQuery

from .checkpoints import QueryCheckpoint
from .engine import Run
from .parse import count_parse_outcomes, parse_events
from .source import read_event_stream
from .status import PARSE_METRICS

_PROVIDER = "spark.sql.streaming.stateStore.providerClass"
_STATE = "org.apache.spark.sql.execution.streaming.state"

STATE_STORES = {
    "hdfs": {_PROVIDER: f"{_STATE}.HDFSBackedStateStoreProvider"},
    "rocksdb": {
        _PROVIDER: f"{_STATE}.RocksDBStateStoreProvider",
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    },
}
"""Spark's state stores (``HHAR_STATE_STORE``): its default, in the executors' memory with a
delta file per batch; or RocksDB on the executors' disks with changelog checkpointing (each
batch uploads the changes of its state, not the whole store). A query keeps the store its
checkpoint was started with."""


class PerQueryEngine:
    """`hhar process --engine per-query`."""

    name = "per-query"

    def streaming_names(self, outputs: Sequence[str]) -> list[str]:
        """One streaming query (and checkpoint folder) per output."""
        return list(outputs)

    def check_checkpoint(self, checkpoint: QueryCheckpoint) -> None:
        """Spark checks its own checkpoints."""

    def start(self, run: Run) -> dict[str, StreamingQuery]:
        """Start one streaming query per output, on the state store of the settings."""
        for name, value in STATE_STORES[run.settings.state_store].items():
            run.spark.conf.set(name, value)
        started = {}
        for query in run.queries:
            parsed = count_parse_outcomes(
                parse_events(read_event_stream(run.spark, run.settings)), PARSE_METRICS
            )
            rows = query.rows(parsed, **run.parameters(query))
            started[query.name] = run.start_stream(
                query.name, rows, query.output_mode, run.sinks.writer(query.name, query.record)
            )
        return started

    def finish(self) -> None:
        """Nothing to finish: Spark ran the last no-data batch itself."""

    def stop(self) -> None:
        """Nothing runs beside the streaming queries."""

    def failure(self) -> str | None:
        """Failures are the streaming queries'."""
        return None
