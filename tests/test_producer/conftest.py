"""Fixtures of the producer tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from hhar_stream.settings import Settings


@pytest.fixture
def fresh_topic(kafka: Settings, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Unique topic names; the topics and their .dlq are deleted afterwards.

    With `config`, the topic is created (one partition) with those configs; otherwise the
    producer creates it.
    """
    admin = AdminClient(kafka.kafka_client_config())
    names: list[str] = []

    def make(config: dict[str, str] | None = None) -> str:
        name = f"produce.{request.node.name[:40]}.{uuid.uuid4().hex[:8]}"
        name = name.replace("[", "-").replace("]", "")
        names.append(name)
        if config is not None:
            admin.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(timeout=30)
        return name

    yield make
    existing = set(admin.list_topics(timeout=10).topics)
    doomed = [topic for name in names for topic in (name, f"{name}.dlq") if topic in existing]
    if doomed:
        for future in admin.delete_topics(doomed).values():
            future.result(timeout=30)
