"""The producer's Kafka side: the transactional producer and the resume positions kept in a
compacted state topic (the broker check and the topics are `hhar_stream.kafka_client`'s).

Every replay writes through one transactional producer (idempotent, ``acks=all``). Each
transaction holds a slice of events, the dead letters of the same rows and one record in the
state topic saying how far the replay got; a replay killed at any point therefore resumes from
the last committed transaction and a ``read_committed`` reader sees every row exactly once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from hhar_stream.errors import BrokerError
from hhar_stream.settings import Settings

logger = logging.getLogger(__name__)
librdkafka_logger = logging.getLogger("hhar_stream.librdkafka")


def _demote_retried(record: logging.LogRecord) -> bool:
    """librdkafka warns while a fresh broker loads its transaction coordinator, then retries by
    itself: a debug line, not a warning."""
    if "load in progress" in record.getMessage() and "retrying" in record.getMessage():
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return librdkafka_logger.isEnabledFor(logging.DEBUG)
    return True


librdkafka_logger.addFilter(_demote_retried)

REACH_TIMEOUT = 10.0
"""Seconds to wait for the broker to answer before giving up."""


def replay_identity(topic: str, file_names: Sequence[str], source: str, order: str) -> str:
    """The id of a replay (topic, source files, order): its state key and transactional id."""
    digest = hashlib.sha256(
        json.dumps([topic, source, order, list(file_names)]).encode()
    ).hexdigest()[:16]
    return f"hhar-produce.{topic}.{digest}"


def transactional_producer(
    settings: Settings, transactional_id: str, on_error: Callable[[KafkaError, Any], None]
) -> Producer:
    """A producer tuned for throughput whose deliveries are committed in transactions.

    Only failed deliveries are reported to `on_error` (the commit confirms the others).
    """
    config = settings.kafka_client_config() | {
        "transactional.id": transactional_id,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": settings.compression,
        "linger.ms": settings.linger_ms,
        "batch.size": settings.batch_size,
        "batch.num.messages": 100_000,
        # Bounded memory: at most this much waits in the client (a commit empties it anyway).
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 65_536,
        "delivery.report.only.error": True,
        "on_delivery": on_error,
        "logger": librdkafka_logger,
    }
    return Producer(config)


def load_position(settings: Settings, replay_id: str, timeout: float = REACH_TIMEOUT) -> Any:
    """The last committed position of a replay in the state topic, or None.

    Reads the state topic with ``read_committed`` up to its end, so a position written in a
    transaction that was aborted (or killed) is never seen.

    Raises:
        BrokerError: when the state topic cannot be read to its end in `timeout` seconds.
    """
    consumer = Consumer(settings.kafka_client_config() | {
        "group.id": replay_id,
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "logger": librdkafka_logger,
    })
    partition = TopicPartition(settings.state_topic, 0, -2)  # -2: OFFSET_BEGINNING
    wanted = replay_id.encode()
    position = None
    deadline = time.monotonic() + timeout
    try:
        _, high = consumer.get_watermark_offsets(partition, timeout=timeout)
        consumer.assign([partition])
        # read_committed stops at the last stable offset; keep going until it reaches the end
        # (another replay's transaction may hold it back for a moment).
        while consumer.position([partition])[0].offset < high:
            if time.monotonic() >= deadline:
                msg = f"timed out reading the resume position from {settings.state_topic}"
                raise BrokerError(msg)
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            if message.key() == wanted:
                value = message.value()
                position = json.loads(value) if value else None
    finally:
        consumer.close()
    return position
