"""The fused engine end to end: one Kafka read and one parse for every result, giving the same
results as the per-query engine and as the query functions run in batch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hhar_stream.processor.catalogue import CATALOGUE, QUERY_NAMES
from hhar_stream.processor.fused import FUSED_QUERY
from hhar_stream.settings import Settings

from .helpers import (
    BAD_MESSAGES,
    assert_same_rows,
    assert_topics_equal_batch,
    make_events,
    produce,
    read_results,
    run_available_now,
)

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

EVENTS = 1200
MORE = 400


@pytest.fixture(scope="module")
def engines(kafka: Settings, spark, module_topics, tmp_path_factory: pytest.TempPathFactory):
    """The same events (and malformed messages) processed by both engines."""
    topic = module_topics.create("fused-e2e")
    work = tmp_path_factory.mktemp("fused")
    history = work / "history"
    history.mkdir()
    lines = [event.to_json() for event in make_events(300, seed=5)]
    (history / "part-00000-hist.json").write_text("\n".join(lines) + "\n")
    common = {
        "topic": topic,
        "history": history,
        "available_now": True,
        "window": "1 minute",
        "watermark": "30 seconds",
    }
    fused = kafka.changed(
        **common
        | {"engine": "fused", "results_prefix": f"{topic}.fused.", "checkpoint": work / "fused"}
    )
    per_query = kafka.changed(
        **common
        | {
            "engine": "per-query",
            "results_prefix": f"{topic}.per-query.",
            "checkpoint": work / "per-query",
        }
    )
    produce(fused, topic, make_events(EVENTS), BAD_MESSAGES)
    yield SimpleNamespace(
        fused=fused,
        per_query=per_query,
        fused_run=run_available_now(spark, fused),
        per_query_run=run_available_now(spark, per_query),
    )


def test_fused_results_equal_the_batch_computation(engines, spark) -> None:
    assert_topics_equal_batch(spark, engines.fused, engines.fused_run)


def test_fused_results_equal_the_per_query_engine(engines) -> None:
    for query in CATALOGUE:
        fused = read_results(engines.fused, engines.fused.result_topic(query))
        per_query = read_results(engines.per_query, engines.per_query.result_topic(query))
        assert fused, query
        assert_same_rows(fused, per_query)


def test_fused_reads_the_topic_once_not_once_per_query(engines) -> None:
    assert list(engines.fused_run.queries) == [FUSED_QUERY]
    assert len(engines.per_query_run.queries) == len(QUERY_NAMES) + 1
    summary = engines.fused_run.summary()
    assert summary["events"] == EVENTS + len(BAD_MESSAGES)
    (fused,) = summary["queries"].values()
    assert fused["bad_records"] == len(BAD_MESSAGES)


def test_fused_continues_from_its_checkpoint(engines, spark) -> None:
    settings = engines.fused
    produce(settings, settings.topic, make_events(MORE, first_index=EVENTS, seed=13))
    second = run_available_now(spark, settings)
    (total,) = read_results(settings, settings.result_topic("total_count")).values()
    assert total.count == EVENTS + MORE
    assert total.batch_id == 1
    assert second.summary()["events"] == MORE


def test_fused_results_of_an_empty_topic_equal_the_batch_computation(
    kafka: Settings, spark, topics, tmp_path
) -> None:
    topic = topics.create("fused-empty")
    history = tmp_path / "history"
    history.mkdir()
    (history / "part-00000.json").write_text(make_events(1)[0].to_json() + "\n")
    settings = kafka.changed(
        topic=topic,
        history=history,
        available_now=True,
        engine="fused",
        results_prefix=f"{topic}.results.",
        checkpoint=tmp_path / "checkpoints",
    )
    processor = run_available_now(spark, settings)
    assert_topics_equal_batch(spark, settings, processor, empty=True)
    assert processor.summary()["events"] == 0
