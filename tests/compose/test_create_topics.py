"""`hhar kafka create-topics` (compose's kafka-init) on the real broker: the producer's topics
with the code's configs, created or, when they exist, given those configs."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from support.cli import HharProcess, error_line, hhar_env

from hhar_stream.kafka_client import full_config, topic_configs, topic_specs, wait_for_leaders
from hhar_stream.settings import Settings

pytestmark = [pytest.mark.kafka]


@pytest.fixture
def names(kafka: Settings, topics) -> Settings:
    """Settings whose events, dead-letter and state topics are new (deleted afterwards)."""
    prefix = topics.name("create-topics")
    return kafka.changed(**{"topic": f"{prefix}.events", "state_topic": f"{prefix}.state"})


def create_topics(settings: Settings, workdir) -> HharProcess:
    process = HharProcess(
        ["kafka", "create-topics"],
        hhar_env(settings, ["bootstrap", "topic", "state_topic"]),
        workdir,
        "create-topics",
    )
    process.wait(60)
    return process


def test_creates_the_producers_topics_with_their_configs(names: Settings, tmp_path) -> None:
    process = create_topics(names, tmp_path)
    assert process.process.returncode == 0, process.stderr
    specs = topic_specs(names)
    configs = topic_configs(names, specs)
    for name, spec in specs.items():
        wanted = full_config(names, spec)
        assert {key: configs[name][key] for key in wanted} == wanted
        assert f"created topic {name}: {spec.partitions} partitions" in process.stdout
    assert configs[names.topic]["retention.ms"] == "-1"


def test_gives_an_existing_topic_the_codes_configs(names: Settings, tmp_path) -> None:
    """The events topic as the old kafka-init made it: Kafka's 7-day retention."""
    admin = AdminClient(names.kafka_client_config())
    admin.create_topics([NewTopic(names.topic, 1, 1)])[names.topic].result(timeout=30)
    wait_for_leaders(admin, [names.topic])  # describable only once the broker knows it
    assert topic_configs(names, [names.topic])[names.topic]["retention.ms"] == "604800000"

    process = create_topics(names, tmp_path)
    assert process.process.returncode == 0, process.stderr
    assert topic_configs(names, [names.topic])[names.topic]["retention.ms"] == "-1"
    assert f"topic {names.topic} exists: set retention.ms=-1 (was 604800000)" in process.stdout
    assert f"topic {names.topic} has 1 partitions, not 3: left as is" in process.stdout

    again = create_topics(names, tmp_path / "again")
    assert f"topic {names.topic} exists with min.insync.replicas=1, retention.ms=-1" in (
        again.stdout
    )


def test_an_unreachable_broker_is_one_error_line(tmp_path) -> None:
    settings = Settings(bootstrap="127.0.0.1:1", kafka_ready_timeout=2)
    process = HharProcess(
        ["kafka", "create-topics"],
        hhar_env(settings, ["bootstrap", "kafka_ready_timeout"]),
        tmp_path,
        "create-topics",
    )
    assert process.wait(60) == 1
    assert error_line(process.stderr).startswith("error: cannot reach Kafka at 127.0.0.1:1")
