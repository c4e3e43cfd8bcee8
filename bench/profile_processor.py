"""Where the processor's time goes: its stages timed one by one on a static read of the topic.

Reads the events topic as a batch (the same Kafka source options the streaming queries use)
and times, each as its own Spark job over every event, after one warm-up job:

- ``read``: the Kafka records only (count);
- ``json_only``: ``from_json`` with the event schema alone, no validation (for scale);
- ``json_keys``: ``json_object_keys`` alone, which `parse_events` uses to find missing and
  unexpected keys (a second JSON parse of each line);
- ``parse``: `parse_events` with every validation rule, valid rows counted, twice: the first
  run also pays for generating and compiling the code of the plan;
- ``batch_aggregate``: the fused engine's one job per micro-batch (parse, group by window,
  Device, gt, Model and stairs user, bad records aside), collected;
- ``windowed``: parse + ``windowed_activity``, collected (the per-query engine's own stream);
- ``bad_records``: parse + the invalid rows, counted (the per-query engine's own stream);
- ``merge`` and ``derive_each``: the fused engine's driver work on the collected aggregate:
  the merge into its state, and each query's rows derived in plain Python as validated
  records (every row: all of them changed).

Prints one JSON object of seconds per stage (and events/s), for bench/run_all.py.

    python bench/profile_processor.py --topic TOPIC [--bootstrap HOST:PORT] [--history DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F

from hhar_stream.processor import queries as q
from hhar_stream.processor.catalogue import CATALOGUE, window_milliseconds, window_parameters
from hhar_stream.processor.fused import BatchAggregation, group_of
from hhar_stream.processor.fused_state import EngineState
from hhar_stream.processor.parse import (
    EVENT_SCHEMA,
    invalid_records,
    parse_events,
    valid_events,
)
from hhar_stream.processor.session import build_session
from hhar_stream.processor.source import load_historical_stats
from hhar_stream.settings import Settings


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topic", required=True)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--history", type=Path, help="history of live_vs_historical")
    args = parser.parse_args()
    update: dict[str, Any] = {"topic": args.topic}
    if args.bootstrap:
        update["bootstrap"] = args.bootstrap
    if args.history:
        update["history"] = args.history
    settings = Settings().changed(**update)
    spark = build_session(settings, app_name="hhar-bench-profile")
    try:
        raw = (
            spark.read.format("kafka")
            .options(**settings.spark_kafka_options())
            .option("subscribe", settings.topic)
            .option("startingOffsets", "earliest")
            .option("endingOffsets", "latest")
            .option("kafka.isolation.level", "read_committed")
            .load()
            .select("partition", "offset", "timestamp", "value")
        )
        figures: dict[str, Any] = {}
        figures["warm_up_s"], events = timed(raw.count)
        figures["events"] = events
        figures["read_s"], _ = timed(raw.count)
        json_only = raw.select(
            F.from_json(F.col("value").cast("string"), EVENT_SCHEMA).alias("event")
        ).select("event.*")
        figures["json_only_s"], _ = timed(json_only.count)
        keys = raw.select(F.json_object_keys(F.col("value").cast("string")).alias("keys"))
        figures["json_keys_s"], _ = timed(keys.where(F.size("keys") == len(EVENT_SCHEMA)).count)
        parsed = parse_events(raw)
        figures["parse_first_s"], _ = timed(valid_events(parsed).count)
        figures["parse_s"], _ = timed(valid_events(parsed).count)
        window_ms, delay_ms = window_milliseconds(settings)
        figures["batch_aggregate_s"], rows = timed(
            lambda: BatchAggregation(settings)(parsed).collect()
        )
        figures["batch_aggregate_rows"] = len(rows)
        window = q.windowed_activity(valid_events(parsed), **window_parameters(settings))
        figures["windowed_s"], _ = timed(window.collect)
        figures["bad_records_s"], _ = timed(invalid_records(parsed).count)

        groups = [group_of(r) for r in rows if r["ok"]]
        state = EngineState()
        figures["merge_s"], _ = timed(lambda: state.merge(0, groups, 0, window_ms, delay_ms))
        historical = {}
        if settings.history:
            historical = {
                (row["gt"], row["Model"]): row.asDict()
                for row in load_historical_stats(spark, settings).collect()
            }
        derive: dict[str, float] = {}
        for query in CATALOGUE.values():
            if query.derive is None:
                continue
            extra = {"historical": historical} if query.uses_history else {}

            def records(query=query, extra=extra) -> list:
                return [
                    query.record.model_validate(row | {"query": query.name, "batch_id": 0})
                    for row in query.derive(state.totals, **extra)
                ]

            derive[query.name], _ = timed(records)
        figures["derive_each_s"] = {name: round(value, 4) for name, value in derive.items()}
        figures["derive_total_s"] = sum(derive.values())
        for key in (
            "read_s",
            "json_only_s",
            "json_keys_s",
            "parse_s",
            "batch_aggregate_s",
            "windowed_s",
            "bad_records_s",
        ):
            figures[key.removesuffix("_s") + "_events_per_s"] = round(events / figures[key])
        print(
            json.dumps(
                {
                    key: round(value, 3) if isinstance(value, float) else value
                    for key, value in figures.items()
                },
                indent=2,
            )
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
