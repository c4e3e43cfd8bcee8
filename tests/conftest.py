"""Shared fixtures: one real Kafka broker and one local SparkSession per test run, and the
topics of a test or a module (`support.topics.TopicFactory`).

The broker is the project's own (`LocalKafka`), started on free ports in a temporary folder.
Set ``HHAR_TEST_BOOTSTRAP=host:port`` to use a broker you already run instead. If the broker
cannot start, every test that needs it errors with the reason: nothing is skipped silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.topics import TopicFactory

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
def own_broker(base_settings: Settings, tmp_path: Path) -> Iterator[LocalKafka]:
    """A single-node broker that belongs to one test: stopping or crashing it disturbs no other
    test."""
    settings = base_settings.changed(
        **{
            "kafka_port": free_port(),
            "kafka_controller_port": free_port(),
            "kafka_ready_timeout": 120.0,
        }
    )
    broker = LocalKafka(settings, run_dir=tmp_path / "broker")
    broker.up()
    try:
        yield broker
    finally:
        broker.down()


@pytest.fixture
def topics(kafka: Settings, request: pytest.FixtureRequest) -> Iterator[TopicFactory]:
    """Unique topic names for one test; its topics (and those named under them) are deleted
    afterwards."""
    with TopicFactory(kafka, request.node.name) as factory:
        yield factory


@pytest.fixture(scope="module")
def module_topics(kafka: Settings, request: pytest.FixtureRequest) -> Iterator[TopicFactory]:
    """`topics` for the fixtures of one test module; deleted after its last test."""
    with TopicFactory(kafka, request.module.__name__.rpartition(".")[2]) as factory:
        yield factory


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
