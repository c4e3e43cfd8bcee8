"""Helpers of the producer tests: crafted input files and a read_committed reader."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from hhar_stream.settings import Settings

START_MS = 1424686735175


def event_line(arrival: int, device: str, index: int, rng: random.Random) -> str:
    """One valid activity-data JSON line, as the real files write it."""
    offset_ns = -1_999_000_000 if device.endswith("_1") else 1_846_050_000_000
    return json.dumps(
        {
            "Arrival_Time": arrival,
            "Creation_Time": arrival * 1_000_000 + offset_ns + rng.randrange(1_000_000),
            "Device": device,
            "Index": index,
            "Model": "nexus4",
            "User": rng.choice("abcdefghi"),
            "gt": rng.choice(["stand", "sit", "walk", "bike", "stairsup", "stairsdown", "null"]),
            "x": rng.randint(-65536, 65536) / 65536,
            "y": rng.randint(-655, 655) / 65536,
            "z": rng.randint(-6553, 6553) / 65536,
        },
        separators=(",", ":"),
    )


def write_part_files(
    folder: Path, files: int, rows_per_file: int, step_ms: int = 5, seed: int = 1
) -> list[Path]:
    """Part files in the real folder's layout: a round-robin split of one time-ordered stream.

    Row n of the stream (n = 0, 1, ...) arrives at START_MS + n * step_ms and goes to file
    n % files, so every file is in time order and spans the whole recording.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part-{number:05d}-c000.json" for number in range(files)]
    handles = [path.open("w") for path in paths]
    try:
        for n in range(files * rows_per_file):
            device = "nexus4_1" if n % 3 else "nexus4_2"
            handles[n % files].write(event_line(START_MS + n * step_ms, device, n, rng) + "\n")
    finally:
        for handle in handles:
            handle.close()
    (folder / "_SUCCESS").write_text("")
    (folder / "_committed_1234").write_text('{"added":[],"removed":[]}')
    return paths


def line_places(paths: list[Path]) -> dict[bytes, tuple[str, int]]:
    """Where each line of the files is, (file name, line number), by its bytes.

    Events carry the line as read and name no source line: this is how a test finds it (the
    valid lines of `write_part_files` are unique: each has its own ``Index``; a line written
    more than once is at its last place).
    """
    return {
        line: (path.name, number)
        for path in paths
        for number, line in enumerate(path.read_bytes().splitlines(), 1)
    }


@dataclass(frozen=True)
class Record:
    """A record read back from Kafka."""

    partition: int
    offset: int
    key: str | None
    timestamp_type: int
    timestamp: int
    headers: dict[str, str]
    value: bytes


def read_topic(settings: Settings, topic: str, timeout: float = 30.0) -> list[Record]:
    """Every committed record of a topic (read_committed, from the start to the end)."""
    consumer = Consumer(
        settings.kafka_client_config()
        | {
            "group.id": f"check-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        consumer.assign([TopicPartition(topic, number, -2) for number in partitions])
        records: list[Record] = []
        at_end: set[int] = set()
        while len(at_end) < len(partitions):
            message = consumer.poll(timeout)
            assert message is not None, f"{topic}: no end of partition within {timeout} s"
            if message.error():
                at_end.add(message.partition())
                continue
            stamp_type, stamp = message.timestamp()
            records.append(
                Record(
                    partition=message.partition(),
                    offset=message.offset(),
                    key=message.key().decode() if message.key() is not None else None,
                    timestamp_type=stamp_type,
                    timestamp=stamp,
                    headers={name: value.decode() for name, value in message.headers() or []},
                    value=message.value(),
                )
            )
        return records
    finally:
        consumer.close()


class CommittedCounter:
    """Counts a topic's committed records as they arrive (read_committed), cheaply enough to
    poll while a producer runs; 0 until the topic exists."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._consumer: Consumer | None = None
        self.count = 0

    def __call__(self) -> int:
        if self._consumer is None:
            consumer = Consumer(
                self._settings.kafka_client_config()
                | {
                    "group.id": f"count-{uuid.uuid4().hex[:8]}",
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                }
            )
            metadata = consumer.list_topics(self._topic, timeout=10).topics[self._topic]
            if metadata.error is not None:
                consumer.close()
                return 0
            consumer.assign(
                [TopicPartition(self._topic, number, -2) for number in metadata.partitions]
            )
            self._consumer = consumer
        messages = self._consumer.consume(100_000, timeout=0.2)
        self.count += sum(1 for message in messages if message.error() is None)
        return self.count

    def close(self) -> None:
        """Close the consumer."""
        if self._consumer is not None:
            self._consumer.close()
