"""The per-query engine end to end, in process: events in the real broker, every query its own
stream with ``available-now``, every result topic compared with the same query run in batch."""

from __future__ import annotations

import logging
import uuid
from types import SimpleNamespace

import pytest

from hhar_stream.processor.catalogue import BAD_RECORDS, QUERY_NAMES
from hhar_stream.processor.runner import Processor
from hhar_stream.processor.sinks import POSITIVE_X_VIEW
from hhar_stream.processor.status import read_status
from hhar_stream.settings import Settings

from .helpers import (
    BAD_MESSAGES,
    assert_topics_equal_batch,
    make_events,
    produce,
    read_results,
    run_available_now,
)

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

FIRST_EVENTS = 1200  # 4 minutes of event time, 200 ms apart
MORE_EVENTS = 600


class ListHandler(logging.Handler):
    """Keeps the messages logged while a run lasts."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run_processor(spark, settings: Settings, reset: bool = False) -> tuple[Processor, list[str]]:
    """One available-now run of the processor to its end; returns it and its log lines."""
    handler = ListHandler()
    status_logger = logging.getLogger("hhar_stream.processor.status")
    status_logger.addHandler(handler)
    status_logger.setLevel(logging.INFO)
    try:
        processor = run_available_now(spark, settings, reset=reset)
    finally:
        status_logger.removeHandler(handler)
        status_logger.setLevel(logging.NOTSET)
    return processor, handler.lines


@pytest.fixture(scope="module")
def stream(kafka: Settings, spark, module_topics, tmp_path_factory: pytest.TempPathFactory):
    """Events and malformed messages in a fresh topic, and a first processor run over them."""
    topic = module_topics.create("processor-e2e")
    work = tmp_path_factory.mktemp("process")
    history = work / "history"
    history.mkdir()
    lines = [event.to_json() for event in make_events(300, seed=5)]
    (history / "part-00000-hist.json").write_text("\n".join(lines) + "\n")
    (history / "_SUCCESS").write_text("")
    settings = kafka.changed(
        **{
            "engine": "per-query",
            "topic": topic,
            "results_prefix": f"{topic}.results.",
            "checkpoint": work / "checkpoints",
            "history": history,
            "sink": "kafka,memory",
            "available_now": True,
            "window": "1 minute",
            "watermark": "30 seconds",
        }
    )
    events = make_events(FIRST_EVENTS)
    produce(settings, topic, events, BAD_MESSAGES)
    processor, log_lines = run_processor(spark, settings)
    yield SimpleNamespace(settings=settings, events=events, processor=processor, logs=log_lines)


def test_every_result_topic_equals_the_query_run_in_batch(stream, spark) -> None:
    assert_topics_equal_batch(spark, stream.settings, stream.processor)


def test_malformed_messages_are_counted_and_kept_aside(stream) -> None:
    kept = read_results(stream.settings, stream.settings.result_topic(BAD_RECORDS))
    values = sorted(record.value for record in kept.values())
    assert values == sorted(value.decode(errors="replace") for value in BAD_MESSAGES)
    assert all(record.reason for record in kept.values())
    total = read_results(stream.settings, stream.settings.result_topic("total_count"))
    assert [record.count for record in total.values()] == [FIRST_EVENTS]
    summary = stream.processor.summary()
    assert summary["events"] == FIRST_EVENTS + len(BAD_MESSAGES)
    for query in (*QUERY_NAMES, BAD_RECORDS):
        assert summary["queries"][query]["bad_records"] == len(BAD_MESSAGES), query


def test_the_listener_logs_each_batch(stream) -> None:
    first = [line for line in stream.logs if line.startswith("device_activity batch 0:")]
    assert first and first[0].startswith(
        f"device_activity batch 0: {FIRST_EVENTS + len(BAD_MESSAGES)} rows "
        f"(bad {len(BAD_MESSAGES)}, late 0), "
    )
    assert any(
        line.startswith("windowed_activity batch") and "watermark 2015-02-23T10:2" in line
        for line in stream.logs
    )


def test_the_status_file_names_every_query(stream) -> None:
    state = read_status(stream.settings)
    assert state["running"] is False
    assert state["topic"] == stream.settings.topic
    queries = state["queries"]
    assert sorted(queries) == sorted((*QUERY_NAMES, BAD_RECORDS))
    for name, query in queries.items():
        assert query["name"] == name
        assert uuid.UUID(query["id"]) and query["active"] is False
        assert query["last_progress"]["batch_id"] >= 0
        assert query["input_rows"] == FIRST_EVENTS + len(BAD_MESSAGES)


def test_memory_tables_hold_the_latest_rows(stream, spark) -> None:
    assert spark.sql("SELECT count FROM total_count").collect()[0]["count"] == FIRST_EVENTS
    by_user = {
        row["User"]: row["count"]
        for row in spark.sql("SELECT User, count FROM stairs_by_user").collect()
    }
    expected = {}
    for event in stream.events:
        if "stairs" in event.gt and event.user in ("a", "b") and event.device == "nexus4_1":
            expected[event.user] = expected.get(event.user, 0) + 1
    assert by_user == expected
    positive = spark.sql(f"SELECT gt, x_avg FROM {POSITIVE_X_VIEW}").collect()
    every = spark.sql("SELECT gt, x_avg FROM activity_stats").collect()
    assert sorted(positive) == sorted(row for row in every if row["x_avg"] > 0)


def test_a_second_run_continues_from_the_checkpoint(stream, spark) -> None:
    """More rows, one of them late for its window: counted everywhere but in the windows."""
    settings = stream.settings
    late = stream.events[3].model_copy(update={"index": 10**6})
    more = make_events(MORE_EVENTS, first_index=FIRST_EVENTS, seed=12)
    produce(settings, settings.topic, [*more, late], BAD_MESSAGES[:2])
    processor, _ = run_processor(spark, settings)
    assert_topics_equal_batch(spark, settings, processor, late=(late,))
    total = read_results(settings, settings.result_topic("total_count"))
    (record,) = total.values()
    assert record.count == FIRST_EVENTS + MORE_EVENTS + 1
    assert record.batch_id == 1  # continued: run 1 wrote batch 0
    windowed = processor.summary()["queries"]["windowed_activity"]
    assert windowed["late_rows"] == 1
    assert windowed["input_rows"] == MORE_EVENTS + 1 + 2


def test_reset_starts_over(stream, spark) -> None:
    settings = stream.settings.changed(**{"queries": "total_count"})
    processor, _ = run_processor(spark, settings, reset=True)
    (record,) = read_results(settings, settings.result_topic("total_count")).values()
    assert record.count == FIRST_EVENTS + MORE_EVENTS + 1
    assert record.batch_id == 0
    assert processor.summary()["events"] == FIRST_EVENTS + MORE_EVENTS + 1 + len(BAD_MESSAGES) + 2
