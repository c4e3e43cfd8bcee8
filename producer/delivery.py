"""The producer's Kafka side: the sender (one transactional producer) and the resume positions
kept in a compacted state topic (the broker check and the topics are `hhar_stream.kafka_client`'s).

Every replay (every worker of one) writes through one `Sender`: an idempotent, ``acks=all``
producer whose records are committed in transactions. Each transaction holds a slice of
events, the dead letters of the same rows and one record in the state topic saying how far the
replay got; a replay killed at any point therefore resumes from the last committed transaction
and a ``read_committed`` reader sees every row exactly once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from hhar_stream.errors import BrokerError
from hhar_stream.settings import Settings

from .routing import Headers

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
QUEUE_FULL_TIMEOUT = 60.0
"""Seconds a record may wait for room in the producer's queue before the replay fails."""
COMMIT_TIMEOUT = 60.0
"""Seconds a transaction call (init, commit, abort) may retry retriable errors."""
_CALL_SLICE = 1.0
_ANY_PARTITION = -1
"""librdkafka's RD_KAFKA_PARTITION_UA: the partitioner picks the partition (by key)."""
_PURGED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})
_FENCED = frozenset(
    {
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
    }
)


class TransactionFailedError(Exception):
    """A transaction could not be committed; the message says why."""


def replay_identity(topic: str, file_names: Sequence[str], source: str, order: str) -> str:
    """The id of a replay (topic, source files, order): its state key and transactional id."""
    digest = hashlib.sha256(
        json.dumps([topic, source, order, list(file_names)]).encode()
    ).hexdigest()[:16]
    return f"hhar-produce.{topic}.{digest}"


def producer_config(settings: Settings) -> dict[str, Any]:
    """The librdkafka settings of the producer: idempotent, ``acks=all``, tuned for throughput
    (compression, linger, batch size), with a bounded queue."""
    return settings.kafka_client_config() | {
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": settings.compression,
        "linger.ms": settings.linger_ms,
        "batch.size": settings.batch_size,
        "batch.num.messages": 100_000,
        # Bounded memory: at most this much waits in the client (a commit empties it anyway).
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 65_536,
    }


class Sender:
    """One transactional producer: records in, transactions committed with a position.

    `send` and `send_events` wait for room while the producer's queue is full, for at most
    `QUEUE_FULL_TIMEOUT` seconds; `commit` writes the position record and commits, or aborts
    and raises `TransactionFailedError` naming the cause. Only failed deliveries are reported
    (the commit confirms the others); each distinct error is logged once.
    """

    def __init__(
        self,
        settings: Settings,
        transactional_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A producer for `settings`' broker, tuned for throughput, with this transactional id."""
        self.bootstrap = settings.bootstrap
        self.state_topic = settings.state_topic
        self.transactional_id = transactional_id
        self.delivery_errors: Counter[str] = Counter()
        """How often each delivery error happened."""
        self.fatal_error: str | None = None
        """Why librdkafka stopped the producer for good, once a call has said it."""
        self._clock = clock
        self._producer = Producer(
            producer_config(settings)
            | {
                "transactional.id": transactional_id,
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery_error,
                "logger": librdkafka_logger,
            }
        )

    def start(self) -> None:
        """Register the transactional id (fencing an earlier producer of it) and begin.

        Raises:
            BrokerError: when the broker does not start the transactions.
        """
        try:
            # Metadata first: it opens the connection, so the transaction coordinator is found
            # at once (without one, librdkafka asks again for it after 500 ms).
            self._producer.list_topics(timeout=REACH_TIMEOUT)
            self._call(self._producer.init_transactions)
        except KafkaException as error:
            msg = f"cannot start a Kafka transaction: {error.args[0].str()}"
            raise BrokerError(msg) from None
        self._producer.begin_transaction()

    def serve(self) -> None:
        """Serve the producer's callbacks (failed deliveries, logs) without waiting."""
        self._producer.poll(0)

    def send_events(
        self,
        topic: str,
        values: list[bytes],
        keys: list[str],
        timestamps: list[int],
        headers: Headers,
    ) -> None:
        """Produce events side by side: value, key and record timestamp, the same headers."""
        produce = self._producer.produce
        for value, key, timestamp in zip(values, keys, timestamps, strict=True):
            try:
                # Positional: (topic, value, key, partition, on_delivery, callback, timestamp,
                # headers); parsing keywords costs a sixth of the call.
                produce(topic, value, key, _ANY_PARTITION, None, None, timestamp, headers)
            except BufferError:
                self.send(topic, value, key, timestamp, headers)

    def send(
        self,
        topic: str,
        value: bytes,
        key: str | None,
        timestamp: int,
        headers: Headers,
    ) -> None:
        """Produce one record (timestamp 0: the time it is sent), waiting while the queue is full.

        Raises:
            BrokerError: when the queue stays full for `QUEUE_FULL_TIMEOUT` seconds.
        """
        deadline = None
        while True:
            try:
                self._producer.produce(topic, value, key, timestamp=timestamp, headers=headers)
                return
            except BufferError:
                now = self._clock()
                deadline = deadline or now + QUEUE_FULL_TIMEOUT
                if now >= deadline:
                    msg = (
                        f"the producer's queue stayed full for {QUEUE_FULL_TIMEOUT:.0f} s: "
                        f"Kafka at {self.bootstrap} does not take the events"
                    )
                    raise BrokerError(msg) from None
                self._producer.poll(0.1)

    def commit(self, position: dict[str, Any]) -> None:
        """Write `position` to the state topic (key: the transactional id), commit, and begin
        the next transaction; a commit that fails is aborted when Kafka says it must be.

        Raises:
            TransactionFailedError: naming the first failed delivery, or Kafka's error.
        """
        self.send(self.state_topic, json.dumps(position).encode(), self.transactional_id, 0, [])
        try:
            self._call(self._producer.commit_transaction)
        except KafkaException as error:
            raise TransactionFailedError(self._failure(error.args[0])) from None
        self._producer.begin_transaction()

    def _failure(self, kafka_error: KafkaError) -> str:
        if kafka_error.fatal():
            self.fatal_error = kafka_error.str()
        self._producer.poll(0)  # serve the failed deliveries' reports: they name the cause
        detail = (
            self.delivery_errors.most_common(1)[0][0]
            if self.delivery_errors
            else self.explain(kafka_error)
        )
        if kafka_error.code() in _FENCED:
            detail += " (another hhar produce of the same topic and source took over)"
        outcome = "could not be committed"
        if kafka_error.txn_requires_abort():
            outcome = "failed and was aborted"
            try:
                self._call(self._producer.abort_transaction)
            except KafkaException as abort_error:
                # The broker aborts it when it times out, and so does the next run.
                logger.warning("could not abort the transaction: %s", abort_error.args[0].str())
                outcome = "failed"
        return f"a transaction {outcome}: {detail}"

    @staticmethod
    def _call(method: Callable[[float], None], timeout: float = COMMIT_TIMEOUT) -> None:
        """Call a transaction method, retrying retriable errors for up to `timeout` seconds.

        Each call waits at most a second (a timed-out call resumes where it was), so signal
        handlers, which run between calls, keep a second Ctrl+C effective.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                method(_CALL_SLICE)
                return
            except KafkaException as error:
                kafka_error: KafkaError = error.args[0]
                if not kafka_error.retriable() or time.monotonic() >= deadline:
                    raise
                if kafka_error.code() != KafkaError._TIMED_OUT:
                    logger.warning("%s: %s; retrying", method.__name__, kafka_error.str())

    def explain(self, error: KafkaError) -> str:
        """Kafka's error in words; librdkafka's bare "Fatal error" with the reason it gave."""
        if error.code() == KafkaError._FATAL:
            try:
                self._producer.poll(0)  # an unserved fatal error's own event names its reason
            except KafkaException as fatal:
                self.fatal_error = fatal.args[0].str()
            if self.fatal_error:
                return f"{error.str()}: {self.fatal_error}"
        return str(error.str())

    def _on_delivery_error(self, error: KafkaError, message: Message) -> None:
        """Delivery report of a failed record; records purged by an abort are its consequence."""
        if error.code() in _PURGED:
            return
        text = error.str()
        if not self.delivery_errors[text]:
            logger.error(
                "delivery to %s[%s] failed: %s", message.topic(), message.partition(), text
            )
        self.delivery_errors[text] += 1


_LEADER_NOT_READY = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
    }
)


def _watermarks(consumer: Consumer, partition: TopicPartition, deadline: float) -> tuple[int, int]:
    """A partition's (earliest, end) offsets, asked again while its leader is not ready (a
    topic created a moment ago answers "not leader for partition")."""
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                partition, timeout=max(deadline - time.monotonic(), 0.1)
            )
        except KafkaException as error:
            if error.args[0].code() not in _LEADER_NOT_READY or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
        else:
            return low, high


def load_positions(
    settings: Settings, prefix: str, timeout: float = REACH_TIMEOUT
) -> dict[str, Any]:
    """The last committed position of every replay whose id starts with `prefix`, by id.

    Reads the state topic with ``read_committed`` up to its end, so a position written in a
    transaction that was aborted (or killed) is never seen.

    Raises:
        BrokerError: when the state topic cannot be read to its end in `timeout` seconds.
    """
    consumer = Consumer(
        settings.kafka_client_config()
        | {
            "group.id": prefix,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "logger": librdkafka_logger,
        }
    )
    partition = TopicPartition(settings.state_topic, 0, -2)  # -2: OFFSET_BEGINNING
    wanted = prefix.encode()
    positions: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        low, high = _watermarks(consumer, partition, deadline)
        consumer.assign([partition])
        # read_committed stops at the last stable offset; keep going until it reaches the end
        # (another replay's transaction may hold it back for a moment). A topic with nothing
        # to read (new, or emptied) has no end to reach: the position stays unset.
        while low < high and consumer.position([partition])[0].offset < high:
            if time.monotonic() >= deadline:
                msg = f"timed out reading the resume position from {settings.state_topic}"
                raise BrokerError(msg)
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            key = message.key()
            if key is not None and key.startswith(wanted):
                value = message.value()
                if value:
                    positions[key.decode()] = json.loads(value)
                else:
                    positions.pop(key.decode(), None)
    finally:
        consumer.close()
    return positions
