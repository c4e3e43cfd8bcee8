"""The read-only ceiling: Spark reads the events topic and counts it, nothing else.

The same Kafka source as `hhar process` (`processor.source.read_event_stream`: read_committed,
the same fetch settings, ``maxOffsetsPerTrigger``), one streaming query, available-now, each
micro-batch counted in ``foreachBatch``. What no engine of the processor can beat on this
machine. Prints one JSON summary as ``hhar process --json`` does.

    python bench/ceiling.py --topic TOPIC [--bootstrap HOST:PORT] [--max-offsets-per-trigger N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame

from hhar_stream.processor.session import build_session
from hhar_stream.processor.source import read_event_stream
from hhar_stream.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--bootstrap")
    parser.add_argument("--max-offsets-per-trigger", type=int)
    args = parser.parse_args()
    update: dict[str, Any] = {"topic": args.topic}
    if args.bootstrap:
        update["bootstrap"] = args.bootstrap
    if args.max_offsets_per_trigger:
        update["max_offsets_per_trigger"] = args.max_offsets_per_trigger
    settings = Settings(home=Path(__file__).resolve().parent.parent / ".hhar").model_copy(
        update=update
    )
    spark = build_session(settings, app_name="hhar-bench-ceiling")
    counted: list[int] = []

    def count(batch: DataFrame, batch_id: int) -> None:
        counted.append(batch.count())

    try:
        with tempfile.TemporaryDirectory(prefix="hhar-ceiling-") as checkpoint:
            started = time.monotonic()
            query = (
                read_event_stream(spark, settings)
                .writeStream.queryName("ceiling")
                .option("checkpointLocation", checkpoint)
                .trigger(availableNow=True)
                .foreachBatch(count)
                .start()
            )
            query.awaitTermination()
            seconds = time.monotonic() - started
        events = sum(counted)
        print(
            json.dumps(
                {
                    "engine": "read-and-count",
                    "events": events,
                    "batches": len(counted),
                    "seconds": round(seconds, 2),
                    "events_per_second": round(events / seconds, 1) if seconds else None,
                }
            )
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
