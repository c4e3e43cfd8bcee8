"""Kafka for every part of hhar-stream: the broker check, the topics and their configs, admin.

The producer, the processor, `hhar watch`, `hhar demo` and the compose file's topic set-up
(`hhar kafka create-topics`) all use this one module: whether the broker answers
(`broker_answers`, quiet) or why it does not (`check_broker`, one line), which topics
hhar-stream creates with which configs (`TopicSpec`, `topic_specs`, `result_topic_specs`), and
creating, listing, aligning and deleting them. The librdkafka settings themselves are rendered
by `Settings.kafka_client_config`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from .errors import BrokerError
from .settings import Settings

logger = logging.getLogger(__name__)

REACH_TIMEOUT = 10.0
"""Seconds to wait for the broker to answer before giving up."""
ADMIN_TIMEOUT = 30.0
"""Seconds an admin operation (create, delete) may take."""

_UNREACHABLE = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE, KafkaError._TRANSPORT})
_AUTHENTICATION_FAILED = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
    }
)


# --- is the broker there? -------------------------------------------------------------------
def broker_answers(
    bootstrap: str, timeout: float = 3.0, client_config: Mapping[str, Any] | None = None
) -> bool:
    """True when a Kafka broker at `bootstrap` answers a metadata request (prints nothing)."""
    config = dict(client_config or {})
    # log_level 0: a probe of a broker that is still starting should not print "refused".
    config |= {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": int(timeout * 1000),
        "log_level": 0,
    }
    try:
        AdminClient(config).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


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
            detail = min(
                causes, key=lambda error: error.code() != KafkaError._TRANSPORT, default=failure
            ).str()
            msg = f"cannot reach Kafka at {settings.bootstrap}: {detail}"
            raise BrokerError(msg)


# --- the topics hhar-stream creates -----------------------------------------------------------
@dataclass(frozen=True)
class TopicSpec:
    """How hhar-stream creates one topic: partitions and topic configs (besides
    ``min.insync.replicas`` and the replication factor, which come from the settings)."""

    partitions: int
    config: dict[str, str] = field(default_factory=dict)


NO_TIME_RETENTION = {"retention.ms": "-1"}
"""Configs of the events and dead-letter topics. Records carry the recording's timestamps
(2015), so time-based retention would delete them at the broker's next retention check."""

STATE_TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.ms": "600000"}
"""Configs of the producer's state topic: compacted, segments rolled so compaction runs."""

RESULT_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    # Roll segments hourly so the cleaner can compact them: a row per key remains.
    "segment.ms": "3600000",
}
"""Configs of the result topics: compacted, the latest row per group key remains."""


def topic_specs(settings: Settings) -> dict[str, TopicSpec]:
    """The producer's topics: events and dead letters (`settings.partitions`, no time-based
    retention) and its compacted one-partition state topic."""
    events = TopicSpec(settings.partitions, NO_TIME_RETENTION)
    return {
        settings.topic: events,
        settings.dead_letter_topic: events,
        settings.state_topic: TopicSpec(1, STATE_TOPIC_CONFIG),
    }


def result_topic_specs(settings: Settings, outputs: Iterable[str]) -> dict[str, TopicSpec]:
    """The compacted result topic of each of `outputs` (query names)."""
    spec = TopicSpec(settings.partitions, RESULT_TOPIC_CONFIG)
    return {settings.result_topic(name): spec for name in outputs}


def definitions_topic_spec(settings: Settings) -> dict[str, TopicSpec]:
    """The compacted topic of the named queries' definitions (one partition: few records)."""
    return {settings.query_definitions_topic: TopicSpec(1, RESULT_TOPIC_CONFIG)}


def full_config(settings: Settings, spec: TopicSpec) -> dict[str, str]:
    """Every config a topic of `spec` is created with."""
    return {"min.insync.replicas": str(settings.min_insync_replicas)} | spec.config


# --- admin ------------------------------------------------------------------------------------
def admin_client(settings: Settings) -> AdminClient:
    """An AdminClient for the settings' cluster and credentials."""
    return AdminClient(settings.kafka_client_config())


def list_topics(settings: Settings, timeout: float = REACH_TIMEOUT) -> set[str]:
    """The names of the cluster's topics.

    Raises:
        BrokerError: when the broker does not answer.
    """
    try:
        return set(admin_client(settings).list_topics(timeout=timeout).topics)
    except KafkaException as error:
        msg = f"Kafka at {settings.bootstrap} does not answer: {error.args[0].str()}"
        raise BrokerError(msg) from None


def ensure_topics(settings: Settings, specs: Mapping[str, TopicSpec]) -> list[str]:
    """Create the topics of `specs` that do not exist yet; the names created.

    Raises:
        BrokerError: when a topic cannot be created.
    """
    admin = admin_client(settings)  # must outlive its futures
    existing = list_topics(settings)
    missing = [
        NewTopic(
            name, spec.partitions, settings.replication_factor, config=full_config(settings, spec)
        )
        for name, spec in specs.items()
        if name not in existing
    ]
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, request_timeout=ADMIN_TIMEOUT).items():
        try:
            future.result(timeout=ADMIN_TIMEOUT)
        except KafkaException as error:
            if error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            msg = f"cannot create topic {name}: {error.args[0].str()}"
            raise BrokerError(msg) from None
        logger.info("created topic %s", name)
        created.append(name)
    wait_for_leaders(admin, created)
    return created


def wait_for_leaders(admin: AdminClient, topics: list[str]) -> None:
    """Wait until every partition of `topics` has a leader: a topic just created may still
    answer "not leader for partition" or "unknown topic" for a moment.

    Raises:
        BrokerError: when a partition has none within `ADMIN_TIMEOUT` seconds.
    """
    deadline = time.monotonic() + ADMIN_TIMEOUT
    for topic in topics:
        while True:
            metadata = admin.list_topics(topic, timeout=REACH_TIMEOUT).topics.get(topic)
            if (
                metadata is not None
                and metadata.error is None
                and metadata.partitions
                and all(
                    partition.leader >= 0 and partition.error is None
                    for partition in metadata.partitions.values()
                )
            ):
                break
            if time.monotonic() > deadline:
                msg = f"topic {topic} has partitions without a leader after {ADMIN_TIMEOUT:.0f} s"
                raise BrokerError(msg)
            time.sleep(0.1)


def wait_for_brokers(settings: Settings, count: int, timeout: float) -> None:
    """Wait until the cluster lists at least `count` brokers (a cluster that is starting).

    Raises:
        BrokerError: when they are not there within `timeout` seconds (worded as
            `check_broker` words an unreachable broker).
    """
    admin = admin_client(settings)
    deadline = time.monotonic() + timeout
    while True:
        try:
            brokers = len(admin.list_topics(timeout=min(2.0, timeout)).brokers)
        except KafkaException:
            brokers = 0
        if brokers >= count:
            return
        if time.monotonic() >= deadline:
            if brokers == 0:
                check_broker(settings, timeout=1.0)
            msg = (
                f"Kafka at {settings.bootstrap} lists {brokers} broker(s) after "
                f"{timeout:.0f} s, fewer than the {count} the topics need"
            )
            raise BrokerError(msg)
        time.sleep(0.5)


def topic_configs(settings: Settings, topics: Iterable[str]) -> dict[str, dict[str, str]]:
    """The current configs of `topics`, defaults included (config name -> value).

    Raises:
        BrokerError: when Kafka cannot describe one of them.
    """
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in topics]
    if not resources:
        return {}
    described = {}
    admin = admin_client(settings)  # must outlive its futures
    futures = admin.describe_configs(resources, request_timeout=ADMIN_TIMEOUT)
    for resource, future in futures.items():
        try:
            entries = future.result(timeout=ADMIN_TIMEOUT)
        except KafkaException as error:
            msg = f"cannot describe topic {resource.name}: {error.args[0].str()}"
            raise BrokerError(msg) from None
        described[resource.name] = {name: entry.value for name, entry in entries.items()}
    return described


def align_topic_configs(
    settings: Settings, specs: Mapping[str, TopicSpec]
) -> dict[str, dict[str, tuple[str | None, str]]]:
    """Give the existing topics of `specs` every config hhar-stream creates them with
    (`full_config`); other configs stay as they are.

    A topic created by other means (an older compose file, a person) may lack one, for
    example ``retention.ms=-1``, whose absence lets Kafka delete the 2015 events.

    Returns:
        For each topic changed, config name -> (old value, new value).

    Raises:
        BrokerError: when Kafka refuses a change.
    """
    existing = [name for name in specs if name in list_topics(settings)]
    changes: dict[str, dict[str, tuple[str | None, str]]] = {}
    for name, current in topic_configs(settings, existing).items():
        wanted = full_config(settings, specs[name])
        differ = {
            key: (current.get(key), value)
            for key, value in wanted.items()
            if current.get(key) != value
        }
        if differ:
            changes[name] = differ
    if not changes:
        return {}
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(key, new, incremental_operation=AlterConfigOpType.SET)
                for key, (_, new) in differ.items()
            ],
        )
        for name, differ in changes.items()
    ]
    admin = admin_client(settings)  # must outlive its futures
    futures = admin.incremental_alter_configs(resources, request_timeout=ADMIN_TIMEOUT)
    for resource, future in futures.items():
        try:
            future.result(timeout=ADMIN_TIMEOUT)
        except KafkaException as error:
            msg = f"cannot change the configs of topic {resource.name}: {error.args[0].str()}"
            raise BrokerError(msg) from None
        logger.info(
            "topic %s: set %s",
            resource.name,
            ", ".join(f"{key}={new}" for key, (_, new) in changes[resource.name].items()),
        )
    return changes


def prepare_topics(settings: Settings, specs: Mapping[str, TopicSpec]) -> list[str]:
    """Create the topics of `specs` that are missing and align the configs of those that
    exist (`align_topic_configs`); one line per topic saying what was done.

    The partitions of an existing topic are left as they are (adding some would move keys
    to other partitions); a difference is reported.

    Raises:
        BrokerError: when a topic cannot be created or changed.
    """
    created = set(ensure_topics(settings, specs))
    changed = align_topic_configs(settings, specs)
    metadata = admin_client(settings).list_topics(timeout=REACH_TIMEOUT).topics
    lines = []
    for name, spec in specs.items():
        configs = ", ".join(f"{key}={value}" for key, value in full_config(settings, spec).items())
        partitions = len(metadata[name].partitions) if name in metadata else 0
        if name in created:
            lines.append(
                f"created topic {name}: {spec.partitions} partitions, replication "
                f"factor {settings.replication_factor}, {configs}"
            )
            continue
        done = "; ".join(
            f"set {key}={new} (was {old})" for key, (old, new) in changed.get(name, {}).items()
        )
        lines.append(
            f"topic {name} exists: {done}" if done else f"topic {name} exists with {configs}"
        )
        if partitions != spec.partitions:
            lines.append(
                f"topic {name} has {partitions} partitions, not {spec.partitions}: left as is"
            )
    return lines


def delete_topics(settings: Settings, topics: Iterable[str]) -> list[str]:
    """Delete those of `topics` that exist and wait until the broker no longer lists them;
    the names deleted.

    Raises:
        BrokerError: when Kafka refuses or does not finish in time.
    """
    admin = admin_client(settings)
    doomed = sorted(set(topics) & list_topics(settings))
    if not doomed:
        return []
    for name, future in admin.delete_topics(doomed, operation_timeout=ADMIN_TIMEOUT).items():
        try:
            future.result(timeout=ADMIN_TIMEOUT)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                msg = f"Kafka refused to delete topic {name}: {error.args[0].str()}"
                raise BrokerError(msg) from None
    deadline = time.monotonic() + ADMIN_TIMEOUT
    while set(doomed) & list_topics(settings):
        if time.monotonic() > deadline:
            msg = f"Kafka did not delete the topics {', '.join(doomed)} in time"
            raise BrokerError(msg)
        time.sleep(0.2)
    logger.info("deleted topics %s", ", ".join(doomed))
    return doomed


def watermark_offsets(
    settings: Settings,
    topic: str,
    partitions: Iterable[int] | None = None,
    timeout: float = REACH_TIMEOUT,
) -> dict[int, tuple[int, int]]:
    """(earliest, end) offsets of the partitions of `topic` (default: all of them).

    Raises:
        BrokerError: when the broker does not answer.
    """
    consumer = Consumer(
        settings.kafka_client_config() | {"group.id": "hhar-offsets", "enable.auto.commit": False}
    )
    try:
        if partitions is None:
            partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        return {
            number: consumer.get_watermark_offsets(
                TopicPartition(topic, number), timeout=timeout, cached=False
            )
            for number in partitions
        }
    except KafkaException as error:
        msg = f"Kafka at {settings.bootstrap} does not answer: {error.args[0].str()}"
        raise BrokerError(msg) from None
    finally:
        consumer.close()


def latest_values(
    settings: Settings, topic: str, timeout: float = ADMIN_TIMEOUT
) -> dict[bytes, bytes]:
    """The current state of a compacted topic: its last value per key (a null value deletes
    its key), read from the beginning to the end of each partition; empty when the topic does
    not exist.

    Raises:
        BrokerError: when the broker does not answer, or a partition's end is not reached in
            `timeout` seconds.
    """
    consumer = Consumer(
        settings.kafka_client_config()
        | {
            "group.id": "hhar-latest-values",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return {}
        consumer.assign([TopicPartition(topic, number, -2) for number in metadata.partitions])
        values: dict[bytes, bytes] = {}
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(at_end) < len(metadata.partitions):
            message = consumer.poll(max(0.0, deadline - time.monotonic()))
            if message is None:
                msg = f"{topic} was not read to its end within {timeout:.0f} s"
                raise BrokerError(msg)
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    msg = f"cannot read {topic}: {error.str()}"
                    raise BrokerError(msg)
                at_end.add(message.partition() or 0)
                continue
            key, value = message.key() or b"", message.value()
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        return values
    except KafkaException as error:
        msg = f"Kafka at {settings.bootstrap} does not answer: {error.args[0].str()}"
        raise BrokerError(msg) from None
    finally:
        consumer.close()
