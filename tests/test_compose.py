"""docker-compose.yml: valid (checked statically: no Docker engine here) and in agreement with
the project's settings (topics, ports, HHAR_* variables)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pyspark
import pytest
import yaml

from hhar_stream.settings import Settings

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_validates_with_docker_compose() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose not installed: .ci/run installs Debian's docker-compose")
    for profile in ([], ["--profile", "tools"], ["--profile", "cluster"]):
        result = subprocess.run(
            [tool, "-f", str(COMPOSE), *profile, "config", "-q"],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stderr


def test_every_hhar_variable_is_a_setting() -> None:
    named = set(re.findall(r"\bHHAR_([A-Z0-9_]+)", COMPOSE.read_text()))
    fields = {name.upper() for name in Settings.model_fields}
    # HHAR_DATA_HOST is compose's own: the host folder mounted as the container's data folder.
    assert named - fields == {"DATA_HOST"}


def test_topic_defaults_agree_with_settings(compose: dict) -> None:
    defaults = Settings()
    text = COMPOSE.read_text()
    assert f"${{HHAR_TOPIC:-{defaults.topic}}}" in text
    assert f"${{HHAR_PARTITIONS:-{defaults.partitions}}}" in text
    init = "\n".join(compose["services"]["kafka-init"]["command"])
    # The init service creates the events topic and its dead-letter topic <topic>.dlq.
    assert defaults.dead_letter_topic == f"{defaults.topic}.dlq"
    assert '"$${HHAR_TOPIC}" "$${HHAR_TOPIC}.dlq"' in init


def test_host_listener_is_the_default_bootstrap(compose: dict) -> None:
    defaults = Settings()
    kafka = compose["services"]["kafka"]
    host, port = defaults.bootstrap.rsplit(":", 1)
    assert f"{port}:{port}" in kafka["ports"]
    assert int(port) == defaults.kafka_port
    advertised = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT_HOST://localhost:{port}" in advertised
    inside = re.search(r"PLAINTEXT://([\w.-]+:\d+)", advertised).group(1)
    for name in ("producer", "processor", "watch", "data-init"):
        service = compose["services"][name]
        env = service["environment"]
        assert env["HHAR_BOOTSTRAP"] == f"${{KAFKA_INSIDE:-{inside}}}", name


def test_cluster_profile_has_three_brokers_and_two_workers(compose: dict) -> None:
    services = compose["services"]
    brokers = [n for n, s in services.items() if "cluster" in s.get("profiles", [])
               and s["image"].startswith("apache/kafka")]
    workers = [n for n, s in services.items() if "cluster" in s.get("profiles", [])
               and "Worker" in " ".join(s.get("command", []))]
    assert sorted(brokers) == ["kafka-1", "kafka-2", "kafka-3"]
    assert len(workers) == 2
    voters = services["kafka-1"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    for broker in brokers:
        env = services[broker]["environment"]
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert f"{env['KAFKA_NODE_ID']}@{broker}:29093" in voters
    assert services["spark-master"]["image"].endswith(f":{pyspark.__version__}")


def test_processor_gets_the_connector_by_packages_with_a_cache(compose: dict) -> None:
    processor = compose["services"]["processor"]
    ivy = processor["environment"]["HHAR_SPARK_IVY_DIR"]
    assert any(volume.endswith(f":{ivy}") for volume in processor["volumes"])
    dockerfile = (COMPOSE.parent / processor["build"]["dockerfile"]).read_text()
    assert "openjdk-17" in dockerfile
