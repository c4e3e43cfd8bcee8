"""Shared by the processor's Kafka tests: events, producing, reading result topics back."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from hhar_stream.schemas import ACTIVITY_LABELS, SensorEvent
from hhar_stream.schemas.results import ResultRecord, parse_result_value
from hhar_stream.settings import Settings

START = 1424686800000  # 2015-02-23 10:20:00 UTC


def make_events(count: int, first_index: int = 0, seed: int = 11,
                step_ms: int = 200) -> list[SensorEvent]:
    """`count` events of users a to c on both phones, `step_ms` apart from index `first_index`."""
    rng = random.Random(seed)
    events = []
    for index in range(first_index, first_index + count):
        arrival = START + index * step_ms
        events.append(SensorEvent(
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
        ))
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


def create_topic(settings: Settings, prefix: str, partitions: int = 3) -> str:
    """A new events topic (no time-based retention: the events carry 2015 timestamps)."""
    name = f"{prefix}.{uuid.uuid4().hex[:8]}"
    admin = AdminClient(settings.kafka_client_config())
    admin.create_topics([NewTopic(name, partitions, 1, config={"retention.ms": "-1"})])[
        name].result(timeout=30)
    return name


def delete_topics(settings: Settings, prefix: str) -> None:
    """Delete every topic whose name starts with `prefix`."""
    admin = AdminClient(settings.kafka_client_config())
    doomed = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    if doomed:
        for future in admin.delete_topics(doomed).values():
            future.result(timeout=30)


def produce(settings: Settings, topic: str, events: Iterable[SensorEvent],
            bad: Iterable[bytes] = ()) -> None:
    """Write events (key = Device, timestamp = Arrival_Time) and raw bad messages."""
    producer = Producer(settings.kafka_client_config() | {"enable.idempotence": True})
    for event in events:
        producer.produce(topic, key=event.device, value=event.to_json(),
                         timestamp=event.arrival_time)
    for value in bad:
        producer.produce(topic, key=b"bad", value=value)
    assert producer.flush(30) == 0


def read_results(settings: Settings, topic: str) -> dict[str, ResultRecord]:
    """The current state of a compacted result topic: the last record per key."""
    consumer = Consumer(settings.kafka_client_config() | {
        "group.id": f"check-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        state: dict[str, ResultRecord] = {}
        remaining = {p for p, end in ends.items() if end > 0}
        while remaining:
            message = consumer.poll(10)
            assert message is not None, f"{topic}: partitions {remaining} did not reach their end"
            assert message.error() is None, message.error()
            state[message.key().decode()] = parse_result_value(message.value())
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
