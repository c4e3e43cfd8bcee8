"""Checks of the reliability tests: an independent reader of topics, row identities and how
many were lost, duplicated or unexpected. (The `hhar` commands they run and crash are
`support.cli.HharProcess`.)"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from hhar_stream.settings import Settings

ROW_IDENTITY = ("User", "Device", "Index", "Arrival_Time")
"""The fields that identify one HHAR row (the issue's uniqueness check)."""


@dataclass(frozen=True)
class Message:
    """A record read back from Kafka."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


def read_messages(
    settings: Settings, topic: str, isolation: str = "read_committed", timeout: float = 30.0
) -> list[Message]:
    """Every record of `topic`, from the beginning to the end of each partition, read by a
    consumer of its own (a fresh group that commits nothing)."""
    consumer = Consumer(
        settings.kafka_client_config()
        | {
            "group.id": f"reliability-check-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            "fetch.message.max.bytes": 4_000_000,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        assert metadata.error is None, f"{topic}: {metadata.error}"
        consumer.assign([TopicPartition(topic, number, -2) for number in metadata.partitions])
        messages: list[Message] = []
        at_end: set[int] = set()
        while len(at_end) < len(metadata.partitions):
            message = consumer.poll(timeout)
            assert message is not None, f"{topic}: no end of partition within {timeout} s"
            if message.error():
                at_end.add(message.partition())
                continue
            messages.append(
                Message(
                    partition=message.partition(),
                    offset=message.offset(),
                    key=message.key(),
                    value=message.value(),
                    headers={name: value.decode() for name, value in message.headers() or []},
                )
            )
        return messages
    finally:
        consumer.close()


def row_identities(values: Iterable[bytes | str]) -> Counter[tuple]:
    """How often each (User, Device, Index, Arrival_Time) occurs among JSON events (message
    values or source lines)."""
    seen: Counter[tuple] = Counter()
    for value in values:
        event = json.loads(value)
        seen[tuple(event[name] for name in ROW_IDENTITY)] += 1
    return seen


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The end (high watermark) of every partition of `topic`."""
    consumer = Consumer(
        settings.kafka_client_config()
        | {"group.id": f"reliability-ends-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            number: consumer.get_watermark_offsets(
                TopicPartition(topic, number), timeout=10, cached=False
            )[1]
            for number in partitions
        }
    finally:
        consumer.close()


def count_exactness(expected: set, seen: Counter) -> tuple[int, int, int]:
    """(lost, duplicated, unexpected): expected items never seen, extra copies of seen items,
    and seen items that were not expected."""
    lost = len(expected - seen.keys())
    duplicated = sum(count - 1 for count in seen.values() if count > 1)
    unexpected = len(seen.keys() - expected)
    return lost, duplicated, unexpected
