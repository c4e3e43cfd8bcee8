"""docker-compose.yml read without a Docker engine: valid for docker-compose, read by the
rehearsal as compose reads it, and in agreement with the project's settings; the `cluster`
profile wired together (brokers, Spark, the variables README.md gives)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

import pyspark
import pytest
import yaml

from hhar_stream.settings import Settings

from .project import (
    COMPOSE_FILE,
    REPO_ROOT,
    ComposeError,
    ComposeProject,
    Dockerfile,
    interpolate,
)

USER_VARIABLES = {"SYNTH_ROWS": "7", "HHAR_SPEEDUP": "3", "HHAR_TOPIC": "my.events"}
COMPOSE_OWN_DEFAULTS = {"SPEEDUP"}
"""HHAR_* variables whose compose default is a choice of the compose file, not the setting's
(the setting has none: `hhar produce` paces only when told)."""


def readme_cluster_variables() -> dict[str, str]:
    """The variables of README.md's `docker compose --profile cluster up` command."""
    line = next(
        line
        for line in (REPO_ROOT / "README.md").read_text().splitlines()
        if line.endswith("docker compose --profile cluster up")
    )
    words = shlex.split(line)
    return dict(word.split("=", 1) for word in words[: words.index("docker")])


def docker_compose_config(variables: dict[str, str], *profiles: str) -> dict:
    """`docker-compose config` of the file with `variables` exported."""
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose not installed: .ci/run installs Debian's docker-compose")
    flags = [flag for profile in profiles for flag in ("--profile", profile)]
    result = subprocess.run(
        [tool, "-f", str(COMPOSE_FILE), *flags, "config"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"]} | variables,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_validates_with_docker_compose() -> None:
    for profiles in ((), ("tools",), ("cluster",), ("monitoring",)):
        docker_compose_config({}, *profiles)


@pytest.mark.parametrize(
    "variables", [USER_VARIABLES, readme_cluster_variables()], ids=["user", "cluster"]
)
def test_the_rehearsal_reads_the_file_as_docker_compose_does(variables) -> None:
    """Interpolation, anchors and merge keys: each service's command, entrypoint, environment
    and healthcheck as `docker-compose config` prints them (its output keeps $$ escaped)."""
    ours = ComposeProject.load(COMPOSE_FILE, variables).services
    theirs = docker_compose_config(variables)["services"]
    assert set(ours) == set(theirs)

    def unescape(value):
        if isinstance(value, list):
            return [unescape(item) for item in value]
        return None if value is None else str(value).replace("$$", "$")

    for name, service in theirs.items():
        assert ours[name].environment == {
            key: unescape(value) for key, value in service.get("environment", {}).items()
        }
        assert ours[name].command == unescape(service.get("command"))
        assert ours[name].entrypoint == unescape(service.get("entrypoint"))
        if "healthcheck" in service:
            assert ours[name].healthcheck.command[-1] == unescape(service["healthcheck"]["test"][1])


def test_the_readmes_docker_commands_name_services_of_the_file() -> None:
    services = set(ComposeProject.load().services)
    section = (REPO_ROOT / "README.md").read_text().split("\n## Docker\n", 1)[1]
    named = []
    for line in section.split("\n## ", 1)[0].splitlines():
        if not line.startswith("docker compose "):
            continue
        words = [word for word in shlex.split(line, comments=True)[2:] if not word.startswith("-")]
        verb, rest = words[0], words[1:]
        if verb == "logs":
            named += rest
        elif verb in ("run", "exec", "start", "stop", "restart"):
            named += rest[:1]
    assert named and set(named) <= services, set(named) - services


def test_interpolation_follows_compose() -> None:
    variables = {"SET": "x", "EMPTY": ""}
    assert interpolate("$$SET $${SET} ${SET} $SET", variables) == "$SET ${SET} x x"
    assert interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET:-${SET}}", variables) == "d  d x"
    assert interpolate("${SET:+alt} ${EMPTY:+alt} ${EMPTY+alt}", variables) == "alt  alt"
    with pytest.raises(ComposeError, match="UNSET is missing a value: needed"):
        interpolate("${UNSET:?needed}", variables)
    with pytest.raises(ComposeError, match=r"write \$\$"):
        interpolate("cost $5", variables)


def test_every_hhar_variable_is_a_setting() -> None:
    named = set(re.findall(r"\bHHAR_([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    fields = {name.upper() for name in Settings.model_fields}
    # HHAR_DATA_HOST is compose's own: the host folder mounted as the container's data folder.
    assert named - fields == {"DATA_HOST"}


def test_defaults_are_the_settings_defaults() -> None:
    defaults = Settings()
    found = re.findall(r"\$\{HHAR_([A-Z0-9_]+):-([^}]*)\}", COMPOSE_FILE.read_text())
    assert found
    for name, default in found:
        if name in COMPOSE_OWN_DEFAULTS or name == "DATA_HOST":
            continue
        assert default == str(getattr(defaults, name.lower())), name


def test_host_listener_is_the_default_bootstrap() -> None:
    defaults = Settings()
    services = ComposeProject.load().services
    kafka = services["kafka"]
    _, port = defaults.bootstrap.rsplit(":", 1)
    assert f"{port}:{port}" in kafka.raw["ports"]
    assert int(port) == defaults.kafka_port
    advertised = kafka.environment["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT_HOST://localhost:{port}" in advertised
    inside = re.search(r"PLAINTEXT://([\w.-]+:\d+)", advertised).group(1)
    for service in services.values():
        if "HHAR_BOOTSTRAP" in service.environment:
            assert service.environment["HHAR_BOOTSTRAP"] == inside, service.name


# --- the cluster profile -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> ComposeProject:
    """The file as README's cluster command reads it."""
    return ComposeProject.load(COMPOSE_FILE, readme_cluster_variables())


def cluster_brokers(project: ComposeProject) -> dict:
    return {
        service.name: service
        for service in project.active(("cluster",))
        if "cluster" in service.profiles and service.image.startswith("apache/kafka:")
    }


def test_cluster_brokers_form_one_quorum(cluster: ComposeProject) -> None:
    brokers = cluster_brokers(cluster)
    assert sorted(brokers) == ["kafka-1", "kafka-2", "kafka-3"]
    voters = {service.environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] for service in brokers.values()}
    assert len(voters) == 1
    assert sorted(voters.pop().split(",")) == sorted(
        f"{s.environment['KAFKA_NODE_ID']}@{s.hostname}:29093" for s in brokers.values()
    )
    for name, service in brokers.items():
        env = service.environment
        assert service.hostname == name
        assert f"PLAINTEXT://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
        host_port = re.search(
            r"PLAINTEXT_HOST://localhost:(\d+)", env["KAFKA_ADVERTISED_LISTENERS"]
        ).group(1)
        assert service.raw["ports"] == [f"{host_port}:{host_port}"]
        assert service.volumes[0].named and service.volumes[0].target == env["KAFKA_LOG_DIRS"]
        for key, value in env.items():
            if key.endswith(("REPLICATION_FACTOR", "MIN_ISR", "MIN_INSYNC_REPLICAS")):
                assert 1 <= int(value) <= len(brokers), key
    assert len({s.volumes[0].source for s in brokers.values()}) == len(brokers)


def test_readme_cluster_command_points_the_pipeline_at_the_cluster(
    cluster: ComposeProject,
) -> None:
    brokers = cluster_brokers(cluster)
    inside = ",".join(f"{name}:19092" for name in sorted(brokers))
    master = cluster.services["spark-master"]
    args = master.command
    master_url = f"spark://{args[args.index('--host') + 1]}:{args[args.index('--port') + 1]}"
    workers = [s for s in cluster.active(("cluster",)) if "Worker" in " ".join(s.command or [])]
    assert len(workers) == 2
    for worker in workers:
        assert worker.command[-1] == master_url
    for service in cluster.services.values():
        env = service.environment
        if "HHAR_BOOTSTRAP" in env:
            assert env["HHAR_BOOTSTRAP"] == inside, service.name
            assert env["HHAR_MASTER"] == master_url, service.name
            replication = int(env["HHAR_REPLICATION_FACTOR"])
            assert 1 <= int(env["HHAR_MIN_INSYNC_REPLICAS"]) < replication <= len(brokers)
    # The Spark image runs the executors of the processor's driver: same Spark version.
    assert master.image == f"apache/spark:{pyspark.__version__}"
    assert {worker.image for worker in workers} == {master.image}


def test_spark_workers_see_the_processors_folders(cluster: ComposeProject) -> None:
    """Executors read the history (the data folder) and write the streaming state under the
    checkpoint: the volumes holding them are the workers' too, at the same paths, and the
    workers write as the processor does (root; apache/spark runs as uid 185 by default)."""
    processor = cluster.services["processor"]
    env = processor.environment
    shared = {
        mount.target: mount.source
        for mount in processor.volumes
        if any(
            env[name] == mount.target or env[name].startswith(f"{mount.target}/")
            for name in ("HHAR_DATA", "HHAR_CHECKPOINT")
        )
    }
    assert len(shared) == 2
    assert Dockerfile.parse(processor.dockerfile).user in (None, "root")
    for worker in (
        s
        for s in cluster.active(("cluster",))
        if s.image == f"apache/spark:{pyspark.__version__}" and "Worker" in " ".join(s.command)
    ):
        assert shared.items() <= {m.target: m.source for m in worker.volumes}.items(), worker
        assert worker.raw.get("user") == "root", worker.name
