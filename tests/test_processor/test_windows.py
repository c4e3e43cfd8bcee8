"""``windowed_activity`` on out-of-order data with late rows: the fused engine's windows equal
Spark's own (the per-query engine's) over the same micro-batches.

Two recordings of the same minutes, one 90 s behind the other, arrive interleaved in blocks,
so event time jumps back and forth; with a 20 s watermark many rows of the slower recording
come after their window was closed. Both engines read the one-partition topic in the same
micro-batches (at most 300 messages each, available-now)."""

from __future__ import annotations

import pytest

from hhar_stream.settings import Settings

from .helpers import (
    assert_same_rows,
    make_events,
    produce,
    read_results,
    run_available_now,
)

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

BLOCK = 100
"""Events of one recording before the other takes over (20 s of event time)."""


def interleaved_recordings(count: int):
    ahead = make_events(count, seed=81)
    behind = [
        event.model_copy(
            update={"arrival_time": event.arrival_time - 90_000, "index": event.index + 10**6}
        )
        for event in make_events(count, seed=82)
    ]
    events = []
    for start in range(0, count, BLOCK):
        events += ahead[start : start + BLOCK] + behind[start : start + BLOCK]
    return events


def test_windows_of_out_of_order_data_equal_sparks(
    kafka: Settings, spark, topics, tmp_path
) -> None:
    topic = topics.create("windows", partitions=1)
    produce(kafka, topic, interleaved_recordings(1000))
    runs = {}
    for engine in ("fused", "per-query"):
        settings = kafka.changed(
            **{
                "engine": engine,
                "topic": topic,
                "queries": "windowed_activity",
                "results_prefix": f"{topic}.{engine}.",
                "checkpoint": tmp_path / engine,
                "window": "30 seconds",
                "watermark": "20 seconds",
                "max_offsets_per_trigger": 300,
            }
        )
        runs[engine] = settings, run_available_now(spark, settings)
    fused, per_query = (
        read_results(settings, settings.result_topic("windowed_activity"))
        for settings, _ in runs.values()
    )
    assert len(fused) > 20
    assert_same_rows(fused, per_query)
    late = runs["fused"][1].summary()["queries"]["fused"]["late_rows"]
    assert late > 100, late  # the case that tells one watermark from Spark's two
    counted = sum(record.count for record in fused.values())
    assert counted <= 2000 - late
