"""The processor end to end, in process: events in the real broker, every query streaming with
``available-now``, every result topic compared with the same query run in batch."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from types import SimpleNamespace

import pytest

from hhar_stream.processor.config import BAD_RECORDS, QUERY_NAMES
from hhar_stream.processor.engine import Processor, load_historical_stats, query_definitions
from hhar_stream.processor.io import POSITIVE_X_VIEW, collect_records
from hhar_stream.processor.parse import parse_events
from hhar_stream.processor.status import read_status
from hhar_stream.schemas import SensorEvent
from hhar_stream.schemas.results import ResultRecord
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

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

FIRST_EVENTS = 1200  # 4 minutes of event time, 200 ms apart
MORE_EVENTS = 600
RUN_TIMEOUT = 600.0


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
    processor = Processor(settings)
    try:
        processor.start(spark, reset=reset)
        deadline = time.monotonic() + RUN_TIMEOUT
        while not processor.wait(2.0):
            assert time.monotonic() < deadline, "the available-now run did not end"
    finally:
        processor.stop()
        status_logger.removeHandler(handler)
        status_logger.setLevel(logging.NOTSET)
    return processor, handler.lines


def topic_messages(spark, settings: Settings):
    """Every message of the events topic, read once in batch and kept in memory."""
    raw = (
        spark.read.format("kafka").options(**settings.spark_kafka_options())
        .option("subscribe", settings.topic).option("startingOffsets", "earliest").load()
        .select("partition", "offset", "timestamp", "value")
    )
    return spark.createDataFrame(raw.collect(), schema=raw.schema)


def batch_results(spark, settings: Settings, query: str, raw,
                  without: tuple[SensorEvent, ...] = ()) -> dict[str, ResultRecord]:
    """`query` run once, in batch, over the messages `raw` (minus the events `without`)."""
    if without:
        raw = raw.where(~raw.value.cast("string").isin(*(event.to_json() for event in without)))
    historical = load_historical_stats(spark, settings) if query == "live_vs_historical" else None
    definition = query_definitions(settings, historical)[query]
    records = collect_records(definition.results(parse_events(raw)), definition.record, query, 0)
    return {record.key_json(): record for record in records}


def closed_windows(records: dict[str, ResultRecord], watermark: str) -> dict[str, ResultRecord]:
    """The windows an append-mode stream has emitted once the watermark reached `watermark`."""
    mark = dt.datetime.fromisoformat(watermark.replace("Z", "+00:00"))
    return {key: record for key, record in records.items() if record.window_end <= mark}


def assert_topics_equal_batch(spark, settings: Settings, processor: Processor,
                              late: tuple[SensorEvent, ...] = ()) -> None:
    raw = topic_messages(spark, settings)
    for query in (*QUERY_NAMES, BAD_RECORDS):
        actual = read_results(settings, settings.result_topic(query))
        if query == "windowed_activity":
            watermark = processor.status.snapshot()["queries"][query]["last_progress"]["watermark"]
            expected = closed_windows(batch_results(spark, settings, query, raw, late), watermark)
            assert expected, "no window closed: the test data spans too little event time"
        else:
            expected = batch_results(spark, settings, query, raw)
        assert_same_rows(actual, expected)


@pytest.fixture(scope="module")
def stream(kafka: Settings, spark, tmp_path_factory: pytest.TempPathFactory):
    """Events and malformed messages in a fresh topic, and a first processor run over them."""
    prefix = f"processor-e2e-{uuid.uuid4().hex[:8]}"
    topic = create_topic(kafka, prefix)
    work = tmp_path_factory.mktemp("process")
    history = work / "history"
    history.mkdir()
    lines = [event.to_json() for event in make_events(300, seed=5)]
    (history / "part-00000-hist.json").write_text("\n".join(lines) + "\n")
    (history / "_SUCCESS").write_text("")
    settings = kafka.model_copy(update={
        "topic": topic,
        "results_prefix": f"{prefix}.results.",
        "checkpoint": work / "checkpoints",
        "history": history,
        "sink": "kafka,memory",
        "available_now": True,
        "window": "1 minute",
        "watermark": "30 seconds",
    })
    events = make_events(FIRST_EVENTS)
    produce(settings, topic, events, BAD_MESSAGES)
    processor, log_lines = run_processor(spark, settings)
    yield SimpleNamespace(settings=settings, events=events, processor=processor, logs=log_lines)
    delete_topics(kafka, prefix)


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
    assert any(line.startswith("windowed_activity batch") and "watermark 2015-02-23T10:2" in line
               for line in stream.logs)


def test_the_status_file_names_every_query(stream) -> None:
    state = read_status(stream.settings.checkpoint)
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
    by_user = {row["User"]: row["count"] for row in spark.sql(
        "SELECT User, count FROM stairs_by_user").collect()}
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
    settings = stream.settings.model_copy(update={"queries": "total_count"})
    processor, _ = run_processor(spark, settings, reset=True)
    (record,) = read_results(settings, settings.result_topic("total_count")).values()
    assert record.count == FIRST_EVENTS + MORE_EVENTS + 1
    assert record.batch_id == 0
    assert processor.summary()["events"] == FIRST_EVENTS + MORE_EVENTS + 1 + len(BAD_MESSAGES) + 2
