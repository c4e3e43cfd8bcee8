"""The rehearsal's own rules, on altered copies of docker-compose.yml (no broker started): what
a container sees, and the services it refuses loudly instead of skipping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support.polling import poll_until

from .project import COMPOSE_FILE, REPO_ROOT, ComposeProject
from .rehearsal import Rehearsal, RehearsalError, kafka_property


def altered(tmp_path: Path, change: Callable[[dict], None]) -> Rehearsal:
    """A rehearsal of docker-compose.yml after `change` of its services."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    for service in document["services"].values():
        if "build" in service:
            service["build"]["context"] = str(REPO_ROOT)
    change(document["services"])
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(document))
    project = ComposeProject.load(path, {"SYNTH_ROWS": "50"})
    return Rehearsal(project, tmp_path / "rehearsal", home=REPO_ROOT / ".hhar")


def test_kafka_variables_become_broker_properties_as_in_the_image() -> None:
    assert kafka_property("KAFKA_LOG_DIRS") == "log.dirs"
    assert kafka_property("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "auto.create.topics.enable"
    assert kafka_property("KAFKA_LISTENER_NAME_CLIENT_SCRAM___SHA___256_SASL__X") == (
        "listener.name.client.scram-sha-256.sasl_x"
    )


def test_a_container_sees_services_and_volumes_at_local_addresses(tmp_path: Path) -> None:
    rehearsal = altered(tmp_path, lambda services: None)
    kafka = rehearsal.container(rehearsal.project.services["kafka"])
    processor = rehearsal.container(rehearsal.project.services["processor"])
    broker = rehearsal.endpoints[("kafka", "19092")]
    assert broker.startswith("127.0.0.1:")
    assert processor.translate("kafka:19092") == broker
    assert processor.translate("localhost:9092") == "localhost:9092"  # itself, not the broker
    assert kafka.translate("--bootstrap-server localhost:9092") == f"--bootstrap-server {broker}"
    volumes = tmp_path / "rehearsal" / "volumes"
    assert processor.translate("/state/checkpoints") == f"{volumes}/processor-state/checkpoints"
    assert processor.translate("--source=/data/activity-data") == (
        f"--source={tmp_path}/rehearsal/project/data/activity-data"
    )
    assert processor.translate(">/dev/null spark://spark-master:7077") == (
        ">/dev/null spark://spark-master:7077"
    )
    own = tmp_path / "rehearsal" / "containers" / "processor"
    assert processor.translate("/var/lib/x") == f"{own}/var/lib/x"
    assert kafka.translate("/opt/kafka/bin/kafka-topics.sh").endswith("kafka-bin/kafka-topics.sh")


def test_a_service_of_an_unknown_image_fails(tmp_path: Path) -> None:
    rehearsal = altered(
        tmp_path,
        lambda services: services.update(dashboard={"image": "nginx:1.27", "ports": ["8050:80"]}),
    )
    with pytest.raises(RehearsalError, match="image nginx:1.27, which the rehearsal does not"):
        rehearsal.run("dashboard")


def test_a_program_other_than_hhar_or_the_shell_fails(tmp_path: Path) -> None:
    rehearsal = altered(
        tmp_path,
        lambda services: services["data-init"].update(command=["python", "-m", "http.server"]),
    )
    with pytest.raises(RehearsalError, match=r"data-init runs \['python'\]"):
        rehearsal.run("data-init")


def test_a_misspelt_setting_fails(tmp_path: Path) -> None:
    def misspell(services: dict) -> None:
        services["data-init"]["environment"]["HHAR_SEEDS"] = "7"

    rehearsal = altered(tmp_path, misspell)
    with pytest.raises(RehearsalError, match="HHAR_SEEDS, which no hhar setting reads"):
        rehearsal.run("data-init")


def test_a_kafka_tool_the_rehearsal_does_not_map_fails(tmp_path: Path) -> None:
    rehearsal = altered(
        tmp_path,
        lambda services: services.update(
            mirror={
                "image": "apache/kafka:4.3.0",
                "command": ["/opt/kafka/bin/kafka-mirror-maker.sh"],
            }
        ),
    )
    with pytest.raises(RehearsalError, match="kafka-mirror-maker.sh, which is not among"):
        rehearsal.run("mirror")


def test_a_command_with_a_missing_option_fails_with_its_error_line(tmp_path: Path) -> None:
    def break_command(services: dict) -> None:
        command = services["data-init"]["command"]
        command[-1] = command[-1].replace("--out ", "--output-folder ")

    rehearsal = altered(tmp_path, break_command)
    try:
        rehearsal.run("data-init")
        with pytest.raises(RehearsalError) as failure:
            poll_until(
                lambda: rehearsal.check() or rehearsal.returncode("data-init") is not None,
                60,
                "data-init ended",
            )
            rehearsal.check()
    finally:
        rehearsal.down()
    assert "service data-init exited with code 2" in str(failure.value)
    assert "error: unrecognized arguments: --output-folder" in str(failure.value)
    assert rehearsal.leftovers() == []
