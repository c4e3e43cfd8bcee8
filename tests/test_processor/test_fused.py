"""The fused engine end to end: one Kafka read and one state for every derived query, giving
the same results as the per-query engine and as the query functions run in batch."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest

from hhar_stream.processor import queries as q
from hhar_stream.processor.config import BAD_RECORDS, QUERY_NAMES
from hhar_stream.processor.engine import Processor
from hhar_stream.processor.fused import FUSED_QUERY, FusedProcessor
from hhar_stream.processor.queries import fine_aggregates
from hhar_stream.schemas import SensorEvent
from hhar_stream.schemas.spark import to_spark_schema
from hhar_stream.settings import Settings

from .helpers import (
    BAD_MESSAGES,
    assert_same_rows,
    create_topic,
    delete_topics,
    make_events,
    produce,
    read_results,
)
from .test_process_stream import assert_topics_equal_batch

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

EVENTS = 1200
MORE = 400
RUN_TIMEOUT = 600.0


def run(spark, settings: Settings, engine: type[Processor]) -> Processor:
    """One available-now run of `engine` to its end."""
    processor = engine(settings)
    try:
        processor.start(spark)
        deadline = time.monotonic() + RUN_TIMEOUT
        while not processor.wait(2.0):
            assert time.monotonic() < deadline, "the available-now run did not end"
    finally:
        processor.stop()
    return processor


@pytest.fixture(scope="module")
def engines(kafka: Settings, spark, tmp_path_factory: pytest.TempPathFactory):
    """The same events (and malformed messages) processed by both engines."""
    prefix = f"fused-e2e-{uuid.uuid4().hex[:8]}"
    topic = create_topic(kafka, prefix)
    work = tmp_path_factory.mktemp("fused")
    history = work / "history"
    history.mkdir()
    lines = [event.to_json() for event in make_events(300, seed=5)]
    (history / "part-00000-hist.json").write_text("\n".join(lines) + "\n")
    common = {
        "topic": topic, "history": history, "available_now": True,
        "window": "1 minute", "watermark": "30 seconds",
    }
    fused = kafka.model_copy(update=common | {
        "engine": "fused", "results_prefix": f"{prefix}.fused.",
        "checkpoint": work / "fused"})
    per_query = kafka.model_copy(update=common | {
        "engine": "per-query", "results_prefix": f"{prefix}.per-query.",
        "checkpoint": work / "per-query"})
    produce(fused, topic, make_events(EVENTS), BAD_MESSAGES)
    yield SimpleNamespace(
        fused=fused, per_query=per_query,
        fused_run=run(spark, fused, FusedProcessor),
        per_query_run=run(spark, per_query, Processor),
    )
    delete_topics(kafka, prefix)


def test_fused_results_equal_the_batch_computation(engines, spark) -> None:
    assert_topics_equal_batch(spark, engines.fused, engines.fused_run)


def test_fused_results_equal_the_per_query_engine(engines) -> None:
    for query in (*QUERY_NAMES, BAD_RECORDS):
        fused = read_results(engines.fused, engines.fused.result_topic(query))
        per_query = read_results(engines.per_query, engines.per_query.result_topic(query))
        assert fused, query
        assert_same_rows(fused, per_query)


def test_fused_reads_the_topic_three_times_not_once_per_query(engines) -> None:
    assert sorted(engines.fused_run.queries) == sorted(
        [FUSED_QUERY, "windowed_activity", BAD_RECORDS])
    assert len(engines.per_query_run.queries) == len(QUERY_NAMES) + 1
    summary = engines.fused_run.summary()
    assert summary["events"] == EVENTS + len(BAD_MESSAGES)


def test_fused_continues_from_its_checkpoint(engines, spark) -> None:
    settings = engines.fused
    produce(settings, settings.topic, make_events(MORE, first_index=EVENTS, seed=13))
    second = run(spark, settings, FusedProcessor)
    (total,) = read_results(settings, settings.result_topic("total_count")).values()
    assert total.count == EVENTS + MORE
    assert total.batch_id == 1
    assert second.summary()["events"] == MORE


@pytest.mark.parametrize(
    "query", ["total_count", "device_activity", "device_activity_cube",
              "device_activity_rollup", "stairs_by_user", "activity_stats"],
)
def test_queries_give_the_same_rows_on_fine_aggregates(spark, query: str) -> None:
    events = spark.createDataFrame(
        [event.model_dump(by_alias=True) for event in make_events(500, seed=3)],
        schema=to_spark_schema(SensorEvent),
    )
    function = getattr(q, query)
    def in_order(rows: list) -> list:
        return sorted(rows, key=lambda row: [str(value) for value in row])

    direct = in_order(function(events).collect())
    derived = in_order(function(fine_aggregates(events)).collect())
    assert len(direct) == len(derived)
    for want, got in zip(direct, derived, strict=True):
        for field, value in want.asDict().items():
            if isinstance(value, float):
                assert got[field] == pytest.approx(value, rel=1e-12), (query, field)
            else:
                assert got[field] == value, (query, field)


def test_no_events_count_zero_on_fine_aggregates_too(spark) -> None:
    """A sum over no aggregates is null: total_count must still say 0, as on the events."""
    events = spark.createDataFrame([], schema=to_spark_schema(SensorEvent))
    assert [row["count"] for row in q.total_count(events).collect()] == [0]
    assert [row["count"] for row in q.total_count(fine_aggregates(events)).collect()] == [0]
