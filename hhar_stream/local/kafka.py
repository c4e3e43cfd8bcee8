"""A real Apache Kafka broker (KRaft, combined broker + controller) run from Maven Central jars.

No Docker: `make setup` resolves Kafka's jars with Maven into ``<home>/kafka/libs`` and this
module starts ``kafka.Kafka`` from them on 127.0.0.1, with its storage, config, logs and pid
under ``<home>/kafka/run``. The same jars run Kafka's console tools (`run_kafka_tool`).
"""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import SecretStr

from ..daemons import PidFile, java_executable, kill_now, launch, port_is_free, stop_gracefully
from ..errors import BrokerError, ConfigError
from ..kafka_client import broker_answers
from ..settings import Settings

logger = logging.getLogger(__name__)

# A fixed id keeps re-formatting idempotent; every broker folder is its own cluster anyway.
CLUSTER_ID = "aGhhci1zdHJlYW0tbG9jYQ"

# `hhar kafka up --secure`: SCRAM users, one per client role, each with least privilege.
SCRAM_MECHANISM = "SCRAM-SHA-256"
ADMIN_USER = "admin"
PRODUCER_USER = "hhar-producer"
PROCESSOR_USER = "hhar-processor"
WATCH_USER = "hhar-watch"
CLIENT_USERS = (PRODUCER_USER, PROCESSOR_USER, WATCH_USER)

_LOG4J2_BROKER = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""

_LOG4J2_TOOLS = """\
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
"""


def _with_overrides(lines: list[str], overrides: Mapping[str, str]) -> str:
    """Server properties: `lines` (key=value) with the values of `overrides` replaced or
    appended."""
    lines = list(lines)
    keys = [line.partition("=")[0] for line in lines]
    for key, value in overrides.items():
        if key in keys:
            lines[keys.index(key)] = f"{key}={value}"
        else:
            lines.append(f"{key}={value}")
    return "\n".join([*lines, ""])


def check_kafka_libs(libs: Path) -> Path:
    """Return the jar folder, or fail with how to fill it."""
    if not libs.is_dir() or not any(libs.glob("kafka_2.13-*.jar")):
        msg = f"Kafka jars not found in {libs}: run `make setup` (needs Maven)"
        raise ConfigError(msg)
    return libs.resolve()


@dataclass(frozen=True)
class BrokerNode:
    """One KRaft node (broker and controller) of the local cluster."""

    node_id: int
    port: int
    controller_port: int
    run_dir: Path

    @property
    def bootstrap(self) -> str:
        """The node's client address."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> PidFile:
        """Where the running broker's pid is kept."""
        return PidFile(self.run_dir / "broker.pid")

    @property
    def log_file(self) -> Path:
        """The broker's log (server.log), written by Log4j."""
        return self.run_dir / "logs" / "server.log"

    @property
    def out_file(self) -> Path:
        """The JVM's own stdout/stderr (start-up failures land here)."""
        return self.run_dir / "logs" / "broker.out"

    def pid(self) -> int | None:
        """The pid of this node's running broker, if any."""
        return self.pid_file.pid()


class LocalKafka:
    """The project's local KRaft cluster: one node by default, or several (`kafka_brokers`).

    Node ``i`` (from 1) listens for clients on ``kafka_port + 10*(i-1)`` and for the controller
    quorum on ``kafka_controller_port + 10*(i-1)``; every node is broker and controller, with
    one static voter set, and keeps its config, data, logs and pid in ``<run_dir>/node-<i>``.
    """

    PORT_STEP = 10
    INTERNAL_PORT_OFFSET = 5

    def __init__(
        self,
        settings: Settings,
        run_dir: Path | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        """Describe the local cluster of `settings` (state under `run_dir` if given).

        `properties` replace or extend every node's generated server properties, for example
        a broker configuration read from docker-compose.yml (tests/compose).
        """
        self.settings = settings
        self.properties = dict(properties or {})
        self.secure = settings.kafka_secure
        self.run_dir = (run_dir or settings.kafka_run_dir).resolve()
        self.nodes = [
            BrokerNode(
                node_id=node_id,
                port=settings.kafka_port + self.PORT_STEP * (node_id - 1),
                controller_port=settings.kafka_controller_port + self.PORT_STEP * (node_id - 1),
                run_dir=self.run_dir / f"node-{node_id}",
            )
            for node_id in range(1, settings.kafka_brokers + 1)
        ]

    @property
    def credentials_file(self) -> Path:
        """Where `--secure` keeps the generated SCRAM users and passwords (mode 0600)."""
        return self.run_dir / "credentials.json"

    def credentials(self) -> dict[str, str]:
        """The SCRAM users of a secure cluster and their passwords, created on first use."""
        if self.credentials_file.exists():
            stored: dict[str, str] = json.loads(self.credentials_file.read_text())
            return stored
        users = {user: secrets.token_urlsafe(18) for user in (ADMIN_USER, *CLIENT_USERS)}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.credentials_file.touch(mode=0o600)
        self.credentials_file.write_text(json.dumps(users, indent=2))
        return users

    def client_settings(self, user: str) -> Settings:
        """`settings` with the bootstrap and, when secure, the SASL login of `user`."""
        update: dict[str, object] = {"bootstrap": self.bootstrap}
        if self.secure:
            update |= {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": SCRAM_MECHANISM,
                "sasl_username": user,
                "sasl_password": SecretStr(self.credentials()[user]),
            }
        return self.settings.model_copy(update=update)

    def _admin_config(self) -> dict[str, Any]:
        return self.client_settings(ADMIN_USER).kafka_client_config()

    @property
    def bootstrap(self) -> str:
        """Client addresses of every node, comma-separated."""
        return ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int) -> BrokerNode:
        """One node by its id (from 1)."""
        return self.nodes[node_id - 1]

    # -- configuration ------------------------------------------------------------------------
    def server_properties(self, node: BrokerNode) -> str:
        """The server.properties of one node."""
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        replicas = len(self.nodes)
        min_isr = min(2, replicas)
        return _with_overrides(
            [
                "process.roles=broker,controller",
                f"node.id={node.node_id}",
                f"controller.quorum.voters={voters}",
                *self._listener_properties(node),
                f"log.dirs={node.run_dir / 'data'}",
                f"num.partitions={self.settings.partitions}",
                f"default.replication.factor={replicas}",
                f"offsets.topic.replication.factor={replicas}",
                "offsets.topic.num.partitions=4",
                f"transaction.state.log.replication.factor={replicas}",
                f"transaction.state.log.min.isr={min_isr}",
                "transaction.state.log.num.partitions=4",
                f"share.coordinator.state.topic.replication.factor={replicas}",
                f"share.coordinator.state.topic.min.isr={min_isr}",
                "group.initial.rebalance.delay.ms=0",
                # A misspelt topic should fail loudly, not appear silently.
                "auto.create.topics.enable=false",
                "log.retention.hours=168",
                "log.cleaner.backoff.ms=2000",
            ],
            self.properties,
        )

    def _listener_properties(self, node: BrokerNode) -> list[str]:
        if not self.secure:
            return [
                f"listeners=PLAINTEXT://127.0.0.1:{node.port},"
                f"CONTROLLER://127.0.0.1:{node.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}",
                "inter.broker.listener.name=PLAINTEXT",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ]
        # Clients authenticate with SASL/SCRAM on the client port; brokers and controllers
        # talk over loopback-only plaintext listeners that are never advertised to clients.
        internal = node.port + self.INTERNAL_PORT_OFFSET
        return [
            f"listeners=CLIENT://127.0.0.1:{node.port},INTERNAL://127.0.0.1:{internal},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            f"advertised.listeners=CLIENT://127.0.0.1:{node.port},INTERNAL://127.0.0.1:{internal}",
            "inter.broker.listener.name=INTERNAL",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map="
            "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,CLIENT:SASL_PLAINTEXT",
            f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            f"listener.name.client.{SCRAM_MECHANISM.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{ADMIN_USER};User:ANONYMOUS",
            "allow.everyone.if.no.acl.found=false",
        ]

    def _write_config(self, node: BrokerNode) -> Path:
        (node.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        (node.run_dir / "data").mkdir(parents=True, exist_ok=True)
        config = node.run_dir / "server.properties"
        config.write_text(self.server_properties(node))
        (node.run_dir / "log4j2.properties").write_text(
            _LOG4J2_BROKER.format(log_file=node.log_file)
        )
        return config

    def _tools_log_config(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "tools-log4j2.properties"
        path.write_text(_LOG4J2_TOOLS)
        return path

    def tool_command(self, main_class: str, *args: str, heap: str = "256m") -> list[str]:
        """The java command line of one of Kafka's tools (`main_class`) from the jars."""
        libs = check_kafka_libs(self.settings.kafka_libs)
        return [
            java_executable(),
            f"-Xmx{heap}",
            f"-Dlog4j2.configurationFile={self._tools_log_config()}",
            "-cp",
            f"{libs}/*",
            main_class,
            *args,
        ]

    def _format_storage(self, node: BrokerNode, config: Path) -> None:
        if (node.run_dir / "data" / "meta.properties").exists():
            return
        scram = []
        if self.secure:
            for user, password in self.credentials().items():
                scram += ["--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={password}]"]
        command = self.tool_command(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={CLUSTER_ID}",
            "-c",
            str(config),
            "--ignore-formatted",
            *scram,
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            msg = f"formatting the Kafka storage of node {node.node_id} failed: {detail[0]}"
            raise BrokerError(msg)

    # -- lifecycle ----------------------------------------------------------------------------
    def up(self) -> str:
        """Start every node that is not running; wait until the cluster answers.

        Returns:
            A one-line description of what happened.
        """
        self._check_mode()
        started = [node for node in self.nodes if node.pid() is None]
        if not started and broker_answers(self.bootstrap, client_config=self._admin_config()):
            return f"Kafka already running at {self.bootstrap}"
        java_executable()
        check_kafka_libs(self.settings.kafka_libs)
        for node in started:
            for port in (node.port, node.controller_port):
                if not port_is_free(port):
                    msg = (
                        f"port {port} on 127.0.0.1 is already in use: stop what listens there "
                        f"or choose other ports (HHAR_KAFKA_PORT, HHAR_KAFKA_CONTROLLER_PORT)"
                    )
                    raise BrokerError(msg)
        processes = {node.node_id: self._launch(node) for node in started}
        self._wait_ready(processes)
        logs = self.nodes[0].log_file if len(self.nodes) == 1 else self.run_dir
        verb = "started" if started else "running"
        if self.secure:
            return (
                f"Kafka {verb} with SASL/SCRAM at {self.bootstrap} (logs in {logs}); users "
                f"{', '.join(CLIENT_USERS)} and their passwords are in {self.credentials_file}"
            )
        return f"Kafka {verb} at {self.bootstrap} (logs in {logs})"

    def _check_mode(self) -> None:
        """Refuse to start secure storage without --secure, or plain storage with it."""
        formatted = [n for n in self.nodes if (n.run_dir / "data" / "meta.properties").exists()]
        if formatted and self.credentials_file.exists() != self.secure:
            was = "with" if self.credentials_file.exists() else "without"
            msg = (
                f"the broker's storage in {self.run_dir} was formatted {was} --secure: "
                f"start it the same way, or remove that folder (make clean) to start over"
            )
            raise ConfigError(msg)

    def _grant_client_acls(self) -> None:
        """Least privilege for each client user (idempotent: creating an ACL twice is fine)."""
        from confluent_kafka.admin import (
            AclBinding,
            AclOperation,
            AclPermissionType,
            AdminClient,
            ResourcePatternType,
            ResourceType,
        )

        settings = self.settings
        literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
        topic, group = ResourceType.TOPIC, ResourceType.GROUP
        read, write, describe, create = (
            AclOperation.READ,
            AclOperation.WRITE,
            AclOperation.DESCRIBE,
            AclOperation.CREATE,
        )
        grants = {
            # The producer writes the events and dead-letter topics and its resume state.
            PRODUCER_USER: [
                (topic, settings.topic, literal, [write, describe, create]),
                (topic, settings.dead_letter_topic, literal, [write, describe, create]),
                (topic, settings.state_topic, literal, [read, write, describe, create]),
                (ResourceType.TRANSACTIONAL_ID, "hhar-produce", prefixed, [write, describe]),
                (group, "hhar", prefixed, [read]),
            ],
            # The processor reads the events and writes (and creates) the result topics.
            PROCESSOR_USER: [
                (topic, settings.topic, literal, [read, describe]),
                (
                    topic,
                    settings.results_prefix,
                    prefixed,
                    [read, write, describe, create, AclOperation.DESCRIBE_CONFIGS],
                ),
                # Spark's Kafka source names its consumer groups spark-kafka-source-<uuid>...
                (group, "spark-kafka-", prefixed, [read]),
            ],
            # The watcher reads results and looks at the size of the events topic.
            WATCH_USER: [
                (topic, settings.results_prefix, prefixed, [read, describe]),
                (topic, settings.topic, literal, [describe]),
                (group, "hhar-watch", literal, [read]),
            ],
        }
        bindings = [
            AclBinding(kind, name, pattern, f"User:{user}", "*", operation, AclPermissionType.ALLOW)
            for user, resources in grants.items()
            for kind, name, pattern, operations in resources
            for operation in operations
        ]
        admin = AdminClient(self._admin_config())
        for future in admin.create_acls(bindings).values():
            future.result(timeout=30)

    def start_node(self, node_id: int) -> None:
        """Start one node (for example after `kill_node`) and wait until the cluster answers."""
        node = self.node(node_id)
        if node.pid() is None:
            self._wait_ready({node_id: self._launch(node)})

    def _launch(self, node: BrokerNode) -> subprocess.Popen[bytes]:
        config = self._write_config(node)
        self._format_storage(node, config)
        heap = self.settings.kafka_heap
        command = [
            java_executable(),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-server",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            f"-Dkafka.logs.dir={node.run_dir / 'logs'}",
            f"-Dlog4j2.configurationFile={node.run_dir / 'log4j2.properties'}",
            "-cp",
            f"{check_kafka_libs(self.settings.kafka_libs)}/*",
            "kafka.Kafka",
            str(config),
        ]
        process = launch(command, node.out_file, node.pid_file, cwd=node.run_dir)
        logger.info(
            "starting Kafka node %d at %s (pid %d)", node.node_id, node.bootstrap, process.pid
        )
        return process

    def _wait_ready(self, processes: dict[int, subprocess.Popen[bytes]]) -> None:
        deadline = time.monotonic() + self.settings.kafka_ready_timeout
        while time.monotonic() < deadline:
            for node_id, process in processes.items():
                if process.poll() is not None:
                    node = self.node(node_id)
                    node.pid_file.forget()
                    msg = (
                        f"Kafka node {node_id} exited during start-up; last log lines:\n"
                        f"{self.log_tail(node)}"
                    )
                    raise BrokerError(msg)
            if all(
                broker_answers(self.node(i).bootstrap, 2.0, self._admin_config()) for i in processes
            ):
                if self.secure:
                    self._grant_client_acls()
                return
            time.sleep(0.5)
        node = self.node(next(iter(processes))) if processes else self.nodes[0]
        msg = (
            f"Kafka did not answer at {self.bootstrap} within "
            f"{self.settings.kafka_ready_timeout:.0f} s; last log lines:\n{self.log_tail(node)}"
        )
        raise BrokerError(msg)

    def down(self, timeout: float = 30.0) -> str:
        """Stop every node by its pid (SIGTERM, then SIGKILL after `timeout` seconds)."""
        running = {
            f"Kafka node {node.node_id}": pid
            for node in self.nodes
            if (pid := node.pid()) is not None
        }
        if running:
            stop_gracefully(running, timeout)
        for node in self.nodes:
            node.pid_file.forget()
        if not running:
            return "Kafka is not running"
        return f"Kafka stopped (pid {', '.join(str(pid) for pid in running.values())})"

    def kill_node(self, node_id: int = 1) -> None:
        """Kill one node at once (SIGKILL), as a crash would; for fault tests."""
        node = self.node(node_id)
        pid = node.pid()
        if pid is not None:
            kill_now(pid)
        node.pid_file.forget()

    def status(self) -> tuple[bool, str]:
        """Whether every node answers, and one line per node."""
        lines, healthy = [], True
        for node in self.nodes:
            pid = node.pid()
            answers = broker_answers(node.bootstrap, client_config=self._admin_config())
            healthy = healthy and answers
            if pid is None and not answers:
                lines.append(f"Kafka is not running (expected at {node.bootstrap})")
            elif pid is None:
                lines.append(f"a Kafka broker not started by hhar answers at {node.bootstrap}")
            elif not answers:
                lines.append(f"Kafka process {pid} runs but does not answer at {node.bootstrap}")
            else:
                lines.append(f"Kafka answers at {node.bootstrap} (pid {pid})")
        if len(self.nodes) > 1:
            lines = [f"node {n.node_id}: {line}" for n, line in zip(self.nodes, lines, strict=True)]
        return healthy, "\n".join(lines)

    def log_tail(self, node: BrokerNode, lines: int = 15) -> str:
        """The last lines of one node's logs, for error messages."""
        text = []
        for path in (node.out_file, node.log_file):
            if path.exists():
                text.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(text[-lines:]) or "(no log output)"

    def run_tool(
        self,
        main_class: str,
        args: Sequence[str],
        stdout: int | IO[str] | None = None,
        stderr: int | IO[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run one of Kafka's console tools from the project's jars; its output is text.

        Args:
            main_class: the tool's Java class.
            args: its arguments.
            stdout: where its output goes (``subprocess.PIPE``: into the result); ours by default.
            stderr: where its errors go, as `stdout`.
        """
        command = self.tool_command(main_class, *args)
        return subprocess.run(command, check=False, stdout=stdout, stderr=stderr, text=True)
