"""The exercise's way, as the processor benchmark's baseline: a Spark file stream over the part
files, one file per trigger (``maxFilesPerTrigger=1``), and one query, ``groupBy("gt").count()``
in complete mode into a memory table.

Prints one JSON object like `hhar process --json`'s summary: ``events`` (rows read),
``batches``, ``seconds`` (from the query's start to its end: planning, reading, parsing,
aggregating, state store and checkpoint commits of every micro-batch; not the JVM's start) and
``events_per_second``. The trigger is ``availableNow``, which keeps the one-file-per-batch
limit and stops once every file is read, so the run ends by itself.

    python bench/baseline_file_stream.py --source DATA_FOLDER [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hhar_stream.processor.session import build_session
from hhar_stream.schemas.events import SensorEvent
from hhar_stream.schemas.spark import to_spark_schema
from hhar_stream.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="folder of part files")
    parser.add_argument("--checkpoint", type=Path, help="checkpoint folder (default: temporary)")
    parser.add_argument("--files-per-trigger", type=int, default=1)
    args = parser.parse_args()
    settings = Settings()
    spark = build_session(settings, app_name="hhar-bench-baseline")
    spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", "100000")
    checkpoint = args.checkpoint or Path(tempfile.mkdtemp(prefix="hhar-baseline-"))
    try:
        stream = (
            spark.readStream.schema(to_spark_schema(SensorEvent))
            .option("maxFilesPerTrigger", args.files_per_trigger)
            .json(str(args.source))
        )
        started = time.perf_counter()
        query = (
            stream.groupBy("gt")
            .count()
            .writeStream.queryName("activity_counts")
            .format("memory")
            .outputMode("complete")
            .option("checkpointLocation", str(checkpoint / "activity_counts"))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
        seconds = time.perf_counter() - started
        progress = query.recentProgress
        events = sum(batch.numInputRows for batch in progress)
        counted = sum(row["count"] for row in spark.sql("select * from activity_counts").collect())
        print(
            json.dumps(
                {
                    "events": events,
                    "batches": len(progress),
                    "counted": counted,
                    "seconds": round(seconds, 2),
                    "events_per_second": round(events / seconds, 1) if seconds > 0 else None,
                },
                indent=2,
            )
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
