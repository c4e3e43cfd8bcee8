"""The sender alone against the real broker: transactions with their position, a full queue,
a refused record, a fenced producer."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException

from hhar_stream.producer.delivery import (
    Sender,
    TransactionFailedError,
    load_positions,
)
from hhar_stream.settings import Settings

from .helpers import read_topic

pytestmark = pytest.mark.kafka


def sender_settings(kafka: Settings, state_topic: str, **changes) -> Settings:
    return kafka.model_copy(update={"state_topic": state_topic, **changes})


def test_a_commit_delivers_the_records_with_their_position(kafka, topics) -> None:
    topic = topics.create("produce", partitions=1)
    state = topics.create("state", partitions=1, config={"cleanup.policy": "compact"})
    settings = sender_settings(kafka, state)
    prefix = f"test-sender.{uuid.uuid4().hex[:8]}"
    sender = Sender(settings, f"{prefix}.worker-1-of-2")
    sender.start()
    sender.send_events(topic, [b"a", b"b"], ["k1", "k2"], [1_000, 2_000], [("h", "1")])
    sender.send(topic, b"c", None, 3_000, [])
    assert read_topic(kafka, topic) == []  # not before the commit (read_committed)
    sender.commit({"rows": 3})
    records = sorted(read_topic(kafka, topic), key=lambda r: r.timestamp)
    assert [(r.value, r.key, r.timestamp, r.headers) for r in records] == [
        (b"a", "k1", 1_000, {"h": "1"}),
        (b"b", "k2", 2_000, {"h": "1"}),
        (b"c", None, 3_000, {}),
    ]
    other = Sender(settings, f"{prefix}.worker-2-of-2")
    other.start()
    other.commit({"rows": 0})
    sender.commit({"rows": 4})
    assert load_positions(settings, prefix) == {
        f"{prefix}.worker-1-of-2": {"rows": 4},
        f"{prefix}.worker-2-of-2": {"rows": 0},
    }
    assert load_positions(settings, f"{prefix}.worker-2") == {
        f"{prefix}.worker-2-of-2": {"rows": 0}
    }


def test_records_beyond_the_queue_wait_for_room(kafka, topics) -> None:
    """90 MB through a queue that holds 64 MB (`queue.buffering.max.kbytes`): `send_events`
    can only get them all in by waiting while the queue is full."""
    topic, state = topics.create("produce", partitions=1), topics.create("state", partitions=1)
    sender = Sender(
        sender_settings(kafka, state, compression="none"), f"test-sender.{uuid.uuid4().hex[:8]}"
    )
    sender.start()
    values = [bytes([number]) * 900_000 for number in range(100)]
    sender.send_events(topic, values, ["k"] * 100, list(range(1, 101)), [])
    sender.commit({"rows": 100})
    records = read_topic(kafka, topic)
    assert sorted(r.timestamp for r in records) == list(range(1, 101))
    assert all(r.value == bytes([r.timestamp - 1]) * 900_000 for r in records)


def test_a_refused_record_aborts_the_transaction_and_names_the_cause(kafka, topics) -> None:
    topic = topics.create("produce", partitions=1, config={"max.message.bytes": "100"})
    state = topics.create("state", partitions=1)
    sender = Sender(
        sender_settings(kafka, state, compression="none"), f"test-sender.{uuid.uuid4().hex[:8]}"
    )
    sender.start()
    sender.send_events(topic, [b"x" * 500], ["k"], [1], [])
    with pytest.raises(
        TransactionFailedError, match="a transaction failed and was aborted: .*too large"
    ):
        sender.commit({"rows": 1})
    assert read_topic(kafka, topic) == []
    assert read_topic(kafka, state) == []


def test_a_second_sender_of_the_same_id_fences_the_first(kafka, topics) -> None:
    topic, state = topics.create("produce", partitions=1), topics.create("state", partitions=1)
    settings = sender_settings(kafka, state)
    identity = f"test-sender.{uuid.uuid4().hex[:8]}"
    first = Sender(settings, identity)
    first.start()
    first.send_events(topic, [b"old"], ["k"], [1], [])
    second = Sender(settings, identity)
    second.start()  # aborts the first one's open transaction
    second.send_events(topic, [b"new"], ["k"], [2], [])
    second.commit({"rows": 1})
    with pytest.raises(TransactionFailedError, match="another hhar produce of the same topic"):
        first.commit({"rows": 1})
    assert [r.value for r in read_topic(kafka, topic)] == [b"new"]
    # Fenced for good: librdkafka's later errors say only "Fatal error"; the sender knows why.
    with pytest.raises(KafkaException) as raised:
        first.send_events(topic, [b"late"], ["k"], [3], [])
    assert raised.value.args[0].code() == KafkaError._FATAL
    assert "fenced" in first.explain(raised.value.args[0]).lower()
