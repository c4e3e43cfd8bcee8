"""The one topic factory of the tests: unique names, topics created on request, and every topic
named under them deleted at the end (the ``topics`` fixture, or a ``with`` block)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from types import TracebackType

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from hhar_stream.kafka_client import wait_for_leaders
from hhar_stream.settings import Settings

NO_RETENTION = {"retention.ms": "-1"}
"""Test events carry 2015 timestamps: a topic keeps them whatever their age."""

_NOT_IN_NAMES = re.compile(r"[^a-zA-Z0-9._-]")


class TopicFactory:
    """Unique topic names for one test (or one module), on one broker.

    A name stands for a topic and for everything named under it (``<name>.dlq``,
    ``<name>.results.total_count``, ...): `delete` removes them all.
    """

    def __init__(self, settings: Settings, label: str) -> None:
        """Names with `label` (a test's name) in them, on the broker of `settings`."""
        self.label = _NOT_IN_NAMES.sub("-", label)[:40]
        self._admin = AdminClient(settings.kafka_client_config())
        self._names: list[str] = []

    def name(self, prefix: str = "t") -> str:
        """A new unique name; no topic is created (the command under test creates its own)."""
        name = f"{prefix}.{self.label}.{uuid.uuid4().hex[:8]}"
        self._names.append(name)
        return name

    def create(
        self, prefix: str = "t", partitions: int = 3, config: dict[str, str] | None = None
    ) -> str:
        """A new topic, kept whatever its events' age unless `config` says otherwise."""
        name = self.name(prefix)
        self.create_named([name], partitions, config)
        return name

    def create_named(
        self, names: Iterable[str], partitions: int = 3, config: dict[str, str] | None = None
    ) -> None:
        """Topics of the given names, each under a name handed out (``<name>.events``), as
        `create` makes them."""
        names = list(names)
        assert all(self._owns(name) for name in names), f"not named under {self._names}: {names}"
        new = [
            NewTopic(name, partitions, 1, config=NO_RETENTION | (config or {})) for name in names
        ]
        for future in self._admin.create_topics(new).values():
            future.result(timeout=30)
        wait_for_leaders(self._admin, names)

    def delete(self) -> None:
        """Delete every topic named so far and every topic named under one of them."""
        if not self._names:
            return
        existing = self._admin.list_topics(timeout=10).topics
        doomed = [topic for topic in existing if self._owns(topic)]
        if doomed:
            for future in self._admin.delete_topics(doomed).values():
                try:
                    future.result(timeout=30)
                except KafkaException as error:  # the test deleted it meanwhile
                    if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise

    def _owns(self, topic: str) -> bool:
        return any(topic == name or topic.startswith(f"{name}.") for name in self._names)

    def __enter__(self) -> TopicFactory:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.delete()
