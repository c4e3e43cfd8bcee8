"""The producer's Kafka side: reaching the broker, creating topics, the transactional producer
and the resume positions kept in a compacted state topic.

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

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

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

_UNREACHABLE = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE, KafkaError._TRANSPORT})
_AUTHENTICATION_FAILED = frozenset({
    KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED,
})

REACH_TIMEOUT = 10.0
"""Seconds to wait for the broker to answer before giving up."""


def check_broker(settings: Settings, timeout: float = REACH_TIMEOUT) -> None:
    """Fail fast, in one line, when the broker cannot be reached or refuses the credentials.

    Raises:
        BrokerError: when no broker answers within `timeout` seconds, the connection is
            refused, the name does not resolve or the SASL authentication fails (the message
            names the user, never the password).
    """
    reported: list[KafkaError] = []
    admin = AdminClient(
        settings.kafka_client_config() | {"error_cb": reported.append, "log_level": 0}
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=min(1.0, timeout))
        except KafkaException as error:
            failure: KafkaError = error.args[0]
        else:
            return
        admin.poll(0)
        # librdkafka's own reports name the cause ("Connection refused"); the exception does not.
        refusals = [error for error in reported if error.code() in _AUTHENTICATION_FAILED]
        if refusals:
            msg = (
                f"cannot reach Kafka at {settings.bootstrap}: authentication as user "
                f"{settings.sasl_username!r} failed (wrong user name or password?): "
                f"{refusals[0].str()}"
            )
            raise BrokerError(msg)
        causes = [error for error in reported if error.code() in _UNREACHABLE]
        if causes or time.monotonic() >= deadline:
            detail = min(causes, key=lambda error: error.code() != KafkaError._TRANSPORT,
                         default=failure).str()
            msg = f"cannot reach Kafka at {settings.bootstrap}: {detail}"
            raise BrokerError(msg)


def ensure_topics(settings: Settings, topics: dict[str, dict[str, str]]) -> None:
    """Create the topics that do not exist yet (name -> topic configs).

    Raises:
        BrokerError: when a topic cannot be created.
    """
    admin = AdminClient(settings.kafka_client_config())
    existing = set(admin.list_topics(timeout=REACH_TIMEOUT).topics)
    missing = [
        NewTopic(
            name,
            num_partitions=1 if config.get("cleanup.policy") == "compact" else settings.partitions,
            replication_factor=settings.replication_factor,
            config={"min.insync.replicas": str(settings.min_insync_replicas)} | config,
        )
        for name, config in topics.items()
        if name not in existing
    ]
    if not missing:
        return
    for name, future in admin.create_topics(missing, request_timeout=REACH_TIMEOUT).items():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            msg = f"cannot create topic {name}: {error.args[0].str()}"
            raise BrokerError(msg) from None
        logger.info("created topic %s", name)


EVENT_TOPIC_CONFIG = {"retention.ms": "-1"}
"""Configs of the events and dead-letter topics the producer creates. Records carry the
recording's timestamps (2015), so time-based retention would delete them within minutes."""

STATE_TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.ms": "600000"}
"""Configs of the state topic: compacted, one partition, segments rolled so compaction runs."""


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
