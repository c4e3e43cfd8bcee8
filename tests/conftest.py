"""Shared fixtures: one real Kafka broker and one local SparkSession per test run.

The broker is the project's own (`LocalKafka`), started on free ports in a temporary folder.
Set ``HHAR_TEST_BOOTSTRAP=host:port`` to use a broker you already run instead. If the broker
cannot start, every test that needs it errors with the reason: nothing is skipped silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from hhar_stream.daemons import free_port
from hhar_stream.local.kafka import LocalKafka
from hhar_stream.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_SAMPLES = REPO_ROOT.parent / "shared" / "real-samples"


@pytest.fixture(scope="session")
def real_samples() -> Path:
    """The folder of real HHAR rows shipped beside the project (read-only)."""
    if not REAL_SAMPLES.is_dir():
        pytest.fail(f"real samples not found at {REAL_SAMPLES}")
    return REAL_SAMPLES


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the repository's jars, with state in a temporary folder."""
    run = tmp_path_factory.mktemp("hhar")
    return Settings(
        home=REPO_ROOT / ".hhar",
        checkpoint=run / "checkpoints",
        data=run / "data",
        master="local[2]",
        shuffle_partitions=2,
        driver_memory="1g",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_heap="384m",
    )


@pytest.fixture(scope="session")
def kafka(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A real Kafka broker for the whole run; yields settings whose bootstrap points at it."""
    existing = os.environ.get("HHAR_TEST_BOOTSTRAP")
    if existing:
        yield base_settings.changed(**{"bootstrap": existing})
        return
    local = LocalKafka(base_settings, run_dir=tmp_path_factory.mktemp("kafka"))
    local.up()
    try:
        yield base_settings.changed(**{"bootstrap": local.bootstrap})
    finally:
        local.down()


@pytest.fixture
def topic_factory(kafka: Settings, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics for one test; they are deleted afterwards."""
    admin = AdminClient(kafka.kafka_client_config())
    created: list[str] = []

    def create(prefix: str = "t", partitions: int = 3, config: dict | None = None) -> str:
        name = f"{prefix}.{request.node.name[:40]}.{uuid.uuid4().hex[:8]}".replace("[", "-")
        name = name.replace("]", "")
        futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])
        futures[name].result(timeout=30)
        created.append(name)
        return name

    yield create
    if created:
        for future in admin.delete_topics(created).values():
            try:
                future.result(timeout=30)
            except Exception:  # noqa: BLE001 - a topic the test deleted itself
                pass


@pytest.fixture(scope="session")
def spark(base_settings: Settings):
    """The one local SparkSession of the test run, with the Kafka connector."""
    from hhar_stream.processor.session import build_session

    session = build_session(base_settings, app_name="hhar-stream-tests")
    # pyspark imports IPython (when installed) at the first Column operation, to name its call
    # site, and IPython's jedi raises the recursion limit as it is imported: inside a property
    # test, hypothesis would report that. One Column operation now.
    from pyspark.sql import functions as F

    session.range(1).select(F.col("id") + 1).count()
    yield session
    session.stop()
