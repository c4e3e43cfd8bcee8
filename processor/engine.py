"""What the processor and its engines share: the `Engine` interface, and the `Run` an engine
starts its streaming queries with.

The processor (`runner.Processor`) holds one engine and hands it a `Run`; the engines
(`fused.FusedEngine`, `per_query.PerQueryEngine`) import this module, never the processor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from ..settings import Settings, format_duration
from .catalogue import Query
from .checkpoints import QueryCheckpoint
from .sinks import ResultSinks
from .status import ProcessorStatus


@dataclass
class Run:
    """What an engine starts its streaming queries with."""

    spark: SparkSession
    settings: Settings
    queries: list[Query]
    """The selected queries, then ``bad_records``."""
    sinks: ResultSinks
    checkpoints: dict[str, QueryCheckpoint]
    """The checkpoint of each streaming query the engine starts."""
    status: ProcessorStatus
    historical: DataFrame | None
    """`queries.historical_stats` of the history, when ``live_vs_historical`` runs."""

    def parameters(self, query: Query) -> dict[str, Any]:
        """The keyword arguments of `query`'s functions."""
        parameters = query.parameters(self.settings)
        if query.uses_history:
            parameters["historical"] = self.historical
        return parameters

    def start_stream(
        self,
        name: str,
        frame: DataFrame,
        output_mode: str,
        write_batch: Callable[[DataFrame, int], None],
    ) -> StreamingQuery:
        """Start streaming query `name`: `frame` in `output_mode`, each micro-batch given to
        `write_batch`, with its checkpoint and the processor's trigger."""
        writer = (
            frame.writeStream.queryName(name)
            .outputMode(output_mode)
            .option("checkpointLocation", self.checkpoints[name].location)
            .foreachBatch(write_batch)
        )
        if self.settings.available_now:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=format_duration(self.settings.trigger))
        return writer.start()


class Engine(Protocol):
    """How the processor runs an engine."""

    name: str
    """The engine's name in ``hhar process --engine``."""

    def streaming_names(self, outputs: Sequence[str]) -> list[str]:
        """The streaming queries (and checkpoint folders) the engine runs for `outputs`."""
        ...

    def check_checkpoint(self, checkpoint: QueryCheckpoint) -> None:
        """Refuse a checkpoint the engine cannot continue from (QueryFailedError)."""
        ...

    def start(self, run: Run) -> dict[str, StreamingQuery]:
        """Start the streaming queries; they run until stopped (or to the end of the topic)."""
        ...

    def finish(self) -> None:
        """Called once when every query ended by itself (an available-now run)."""
        ...

    def stop(self) -> None:
        """Stop what the engine runs beside its streaming queries."""
        ...

    def failure(self) -> str | None:
        """Why the engine failed outside its streaming queries, if it did."""
        ...
