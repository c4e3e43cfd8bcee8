"""The fused engine: one Kafka read and one stateful aggregation feed every query.

The per-query engine runs each query as its own streaming query, so every query reads and
parses the whole topic again. Here one streaming query keeps `queries.fine_aggregates` of the
valid events (one row per (Device, gt, Model, User): at most a few hundred rows, with the count
and the sums of x, y, z) in Spark's state store, exactly once, and each micro-batch derives
every result from that small table with the same query functions, which accept it in place of
the events. ``windowed_activity`` (event-time windows need the events' timestamps) and the
``bad_records`` side output stay streaming queries of their own: three Kafka reads instead of
one per query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from . import queries as q
from .config import BAD_RECORDS
from .engine import Processor, QueryDefinition
from .io import ResultSink, checkpoint_dir, collect_records, read_event_stream
from .parse import count_parse_outcomes, parse_events, valid_events
from .status import PARSE_METRICS

logger = logging.getLogger(__name__)

FUSED_QUERY = "fused"
"""Name (and checkpoint folder) of the streaming query that keeps the fine aggregates."""

OWN_STREAMS = ("windowed_activity", BAD_RECORDS)
"""Outputs that stay streaming queries of their own in the fused engine."""


class DerivedResults:
    """``foreachBatch`` of the fused query: every derived query's rows from the aggregates."""

    def __init__(
        self,
        spark: SparkSession,
        derivations: dict[str, tuple[Callable[[DataFrame], DataFrame], ResultSink]],
    ) -> None:
        """`derivations`: query name -> (aggregates -> result rows, the query's sink)."""
        self.spark = spark
        self.derivations = derivations

    def __call__(self, aggregates: DataFrame, batch_id: int) -> None:
        """Derive and write every query's rows for micro-batch `batch_id`."""
        # A few hundred rows: bring them to the driver once, so that each derivation is a
        # small local job instead of a recomputation of the micro-batch. The jobs are tiny,
        # their time mostly planning and scheduling: they run side by side.
        rows = aggregates.collect()
        local = self.spark.createDataFrame(rows, schema=aggregates.schema).cache()
        try:
            with ThreadPoolExecutor(len(self.derivations)) as pool:
                records = list(pool.map(
                    lambda item: collect_records(item[1][0](local), item[1][1].record,
                                                 item[0], batch_id),
                    self.derivations.items(),
                ))
        finally:
            local.unpersist()
        for (_, sink), collected in zip(self.derivations.values(), records, strict=True):
            sink.write(collected, batch_id)


class FusedProcessor(Processor):
    """`hhar process --engine fused`: the `Processor` whose derived queries share one state."""

    engine = "fused"

    def streaming_names(self) -> list[str]:
        """The streaming queries this engine starts (checkpoint folders under the root)."""
        own = [name for name in self.outputs if name in OWN_STREAMS]
        derived = [name for name in self.names if name not in OWN_STREAMS]
        return ([FUSED_QUERY] if derived else []) + own

    def _start_queries(self, spark: SparkSession, definitions: dict[str, QueryDefinition]) -> None:
        derived = [name for name in self.names if name not in OWN_STREAMS]
        if derived:
            self.queries[FUSED_QUERY] = self._start_fused(spark, definitions, derived)
        for name in self.outputs:
            if name in OWN_STREAMS:
                self.queries[name] = self._start_query(spark, definitions[name])

    def _start_fused(
        self, spark: SparkSession, definitions: dict[str, QueryDefinition], derived: list[str]
    ) -> StreamingQuery:
        parsed = count_parse_outcomes(
            parse_events(read_event_stream(spark, self.settings)), PARSE_METRICS
        )
        sink = DerivedResults(
            spark,
            {
                name: (
                    definitions[name].on_events,
                    ResultSink(spark, self.settings, name, definitions[name].record,
                               self.sinks, self._producer),
                )
                for name in derived
            },
        )
        writer = (
            q.fine_aggregates(valid_events(parsed))
            .writeStream.queryName(FUSED_QUERY)
            .outputMode("complete")
            .option("checkpointLocation", str(checkpoint_dir(self.settings, FUSED_QUERY)))
            .foreachBatch(sink)
        )
        return self._with_trigger(writer).start()

