"""Shared by the processor's Kafka tests: events, producing, reading result topics back."""

from __future__ import annotations

import datetime as dt
import math
import random
import time
import uuid
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from hhar_stream.processor.catalogue import CATALOGUE
from hhar_stream.processor.fused import FUSED_QUERY
from hhar_stream.processor.parse import parse_events
from hhar_stream.processor.runner import Processor
from hhar_stream.processor.sinks import collect_records
from hhar_stream.processor.source import load_historical_stats
from hhar_stream.schemas import ACTIVITY_LABELS, SensorEvent
from hhar_stream.schemas.results import ResultRecord, parse_result_value
from hhar_stream.settings import Settings

START = 1424686800000  # 2015-02-23 10:20:00 UTC


def make_events(
    count: int, first_index: int = 0, seed: int = 11, step_ms: int = 200
) -> list[SensorEvent]:
    """`count` events of users a to c on both phones, `step_ms` apart from index `first_index`."""
    rng = random.Random(seed)
    events = []
    for index in range(first_index, first_index + count):
        arrival = START + index * step_ms
        events.append(
            SensorEvent(
                Arrival_Time=arrival,
                Creation_Time=arrival * 1_000_000 - 1_990_000_000,
                Device=rng.choice(["nexus4_1", "nexus4_2"]),
                Index=index,
                Model="nexus4",
                User=rng.choice("abc"),
                gt=rng.choice(ACTIVITY_LABELS),
                x=rng.randint(-65536, 65536) / 65536,
                y=rng.uniform(-1, 1),
                z=rng.gauss(0, 0.5),
            )
        )
    return events


_VALID = make_events(1)[0].model_copy(update={"device": "nexus4_1"}).to_json()

BAD_MESSAGES = [
    b"not json",
    b'{"Arrival_Time":"soon"}',
    _VALID.replace('"Device":"nexus4_1"', '"Device":4').encode(),
    _VALID.replace('"gt":', '"gt":"run","was":').encode(),
    _VALID.replace('"x":', '"x":"NaN","old_x":').encode(),
    b"\xff\xfe binary",
]
"""Messages that are not events, most of them one change away from a valid event."""


def produce(
    settings: Settings, topic: str, events: Iterable[SensorEvent], bad: Iterable[bytes] = ()
) -> None:
    """Write events (key = Device, timestamp = Arrival_Time) and raw bad messages."""
    producer = Producer(settings.kafka_client_config() | {"enable.idempotence": True})
    for event in events:
        producer.produce(
            topic, key=event.device, value=event.to_json(), timestamp=event.arrival_time
        )
    for value in bad:
        producer.produce(topic, key=b"bad", value=value)
    assert producer.flush(30) == 0


def read_results(
    settings: Settings, topic: str, named: dict[str, type[ResultRecord]] | None = None
) -> dict[str, ResultRecord]:
    """The current state of a compacted result topic: the last record per key (`named`: the
    record models of named queries)."""
    consumer = Consumer(
        settings.kafka_client_config()
        | {"group.id": f"check-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        state: dict[str, ResultRecord] = {}
        remaining = {p for p, end in ends.items() if end > 0}
        while remaining:
            message = consumer.poll(10)
            assert message is not None, f"{topic}: partitions {remaining} did not reach their end"
            assert message.error() is None, message.error()
            state[message.key().decode()] = parse_result_value(message.value(), named)
            if message.offset() + 1 >= ends[message.partition()]:
                remaining.discard(message.partition())
        return state
    finally:
        consumer.close()


def comparable(record: ResultRecord) -> dict:
    """A record's row without the batch it was written in."""
    return record.model_dump(exclude={"batch_id"})


def assert_same_rows(actual: dict[str, ResultRecord], expected: dict[str, ResultRecord]) -> None:
    """Same keys; counts exact, averages within 1e-9 relative."""
    assert sorted(actual) == sorted(expected)
    for key, record in expected.items():
        got, want = comparable(actual[key]), comparable(record)
        assert got.keys() == want.keys()
        for field, value in want.items():
            if isinstance(value, float):
                assert math.isclose(got[field], value, rel_tol=1e-9, abs_tol=1e-12), (key, field)
            else:
                assert got[field] == value, (key, field)


def topic_messages(spark, settings: Settings):
    """Every message of the events topic, read once in batch and kept in memory."""
    raw = (
        spark.read.format("kafka")
        .options(**settings.spark_kafka_options())
        .option("subscribe", settings.topic)
        .option("startingOffsets", "earliest")
        .load()
        .select("partition", "offset", "timestamp", "value")
    )
    return spark.createDataFrame(raw.collect(), schema=raw.schema)


def batch_results(
    spark, settings: Settings, query: str, raw, without: tuple[SensorEvent, ...] = ()
) -> dict[str, ResultRecord]:
    """The reference: `query`'s catalogue entry run once, in batch, by Spark, over the messages
    `raw` (minus the events `without`)."""
    if without:
        raw = raw.where(~raw.value.cast("string").isin(*(event.to_json() for event in without)))
    entry = CATALOGUE[query]
    parameters = entry.parameters(settings)
    if entry.uses_history:
        parameters["historical"] = load_historical_stats(spark, settings)
    rows = entry.rows(parse_events(raw), **parameters)
    records = collect_records(rows, entry.record, query, 0)
    return {record.key_json(): record for record in records}


def closed_windows(records: dict[str, ResultRecord], watermark: str) -> dict[str, ResultRecord]:
    """The windows an append-mode stream has emitted once the watermark reached `watermark`."""
    mark = dt.datetime.fromisoformat(watermark.replace("Z", "+00:00"))
    return {key: record for key, record in records.items() if record.window_end <= mark}


def windows_watermark(processor: Processor) -> str:
    """The watermark of the streaming query that computed ``windowed_activity`` at the end of
    a run (the fused engine's own for the fused query)."""
    name = "windowed_activity" if "windowed_activity" in processor.queries else FUSED_QUERY
    return processor.status.snapshot()["queries"][name]["last_progress"]["watermark"]


def assert_topics_equal_batch(
    spark,
    settings: Settings,
    processor: Processor,
    late: tuple[SensorEvent, ...] = (),
    empty: bool = False,
) -> None:
    """Every result topic equals its query run in batch over the events topic (windows: the
    ones closed by the run's final watermark; `late` events left out of them; none when the
    input is `empty`)."""
    raw = topic_messages(spark, settings)
    for query in CATALOGUE:
        actual = read_results(settings, settings.result_topic(query))
        if query == "windowed_activity" and empty:
            expected = {}
        elif query == "windowed_activity":
            expected = closed_windows(
                batch_results(spark, settings, query, raw, late), windows_watermark(processor)
            )
            assert expected, "no window closed: the test data spans too little event time"
        else:
            expected = batch_results(spark, settings, query, raw)
        assert_same_rows(actual, expected)


def run_available_now(
    spark, settings: Settings, reset: bool = False, timeout: float = 600.0
) -> Processor:
    """One available-now run of the processor of `settings` (its engine) to its end."""
    processor = Processor(settings.changed(**{"available_now": True}))
    try:
        processor.start(spark, reset=reset)
        deadline = time.monotonic() + timeout
        while not processor.wait(1.0):
            assert time.monotonic() < deadline, "the available-now run did not end"
    finally:
        processor.stop()
    return processor
