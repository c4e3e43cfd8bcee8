"""`docker compose up` rehearsed without a Docker engine: every service a local process.

A `Rehearsal` plans each service of a `ComposeProject` as a container would run it, then starts
them in the compose file's dependency order, honouring the ``depends_on`` conditions
(``service_started``, ``service_healthy`` by the service's own healthcheck,
``service_completed_successfully``):

- an image built from one of the project's Dockerfiles runs the service's ``command`` (or the
  image's CMD) after the image's ENTRYPOINT, in the image's WORKDIR, with the service's
  ``environment``; its programs are ``hhar`` (this checkout's, on the PATH as in the image) and
  the shell. Its ``HHAR_*`` variables must be settings (a misspelt one would be ignored).
- ``apache/kafka`` without a command is the broker: the project's own (`LocalKafka`) with the
  service's ``KAFKA_*`` settings (the image's env-to-property rule; listeners and node identity
  are the local broker's own) and a 1-second retention check, so that a topic whose 2015
  events are not protected from time-based retention loses them within the test. Its
  ``/opt/kafka/bin/*.sh`` tools (healthcheck, ``docker compose exec``, a command) run the same
  tools' main classes from the project's jars.
- any other image, or another program, fails the rehearsal with its name: nothing is skipped.

Inside a container, host names of services and their ports become the local addresses
(``kafka:19092`` -> ``127.0.0.1:<port>``; ``localhost:9092`` in the broker's own container),
and absolute paths become host folders: a volume's target its volume (named volumes and the
project's relative bind mounts live in the rehearsal's folder, as on a fresh clone), an
image folder its stand-in, any other path the container's own folder. System paths (``/bin``,
``/dev``, ``/usr``...) stay as they are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from support.cli import group_members

from hhar_stream.daemons import free_port, launch, pid_alive
from hhar_stream.local.kafka import LocalKafka
from hhar_stream.settings import Settings

from .project import ComposeError, ComposeProject, Dockerfile, Service

logger = logging.getLogger(__name__)

RETENTION_CHECK_MS = 1000
"""The rehearsal broker's log.retention.check.interval.ms (Kafka's default: 5 minutes)."""

KAFKA_IMAGE = "apache/kafka"
KAFKA_TOOLS = {
    "kafka-topics.sh": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs.sh": "kafka.admin.ConfigCommand",
    "kafka-broker-api-versions.sh": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-console-consumer.sh": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-console-producer.sh": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-consumer-groups.sh": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-get-offsets.sh": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-storage.sh": "kafka.tools.StorageTool",
}
"""The tools of the apache/kafka image's /opt/kafka/bin and their main classes (as its scripts
name them, Kafka 4.3)."""
KAFKA_TOOLS_DIR = "/opt/kafka/bin"

_BROKER_IDENTITY = frozenset(
    {
        "node.id",
        "process.roles",
        "controller.quorum.voters",
        "listeners",
        "advertised.listeners",
        "listener.security.protocol.map",
        "inter.broker.listener.name",
        "controller.listener.names",
    }
)
"""Broker properties the local broker sets itself (its own ports on 127.0.0.1)."""
_IMAGE_DEFAULTS = {"num.partitions": "1"}
"""Kafka's defaults, which the image keeps and the local broker changes."""
_KAFKA_LOG_DIR = "/tmp/kafka-logs"
"""Kafka's default log.dirs."""
_JVM_VARIABLES = frozenset(
    {
        "KAFKA_HEAP_OPTS",
        "KAFKA_OPTS",
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_LOG4J_OPTS",
        "KAFKA_JMX_OPTS",
        "KAFKA_GC_LOG_OPTS",
    }
)

PROJECT_PROGRAMS = frozenset({"hhar", "sh", "bash", "/bin/sh", "/bin/bash"})
SHELLS = frozenset({"sh", "bash", "/bin/sh", "/bin/bash"})
SYSTEM_FOLDERS = frozenset({"bin", "dev", "etc", "lib", "lib64", "proc", "sbin", "sys", "usr"})

_PATH = re.compile(r"(?<![\w./:-])/[\w.@+-]+(?:/[\w.@+-]*)*")
_ENDPOINT = re.compile(r"(?<![\w.-])([A-Za-z][\w.-]*):(\d+)(?!\d)")


class RehearsalError(Exception):
    """A service failed, or the compose file asks for something the rehearsal cannot run."""


def kafka_property(variable: str) -> str:
    """The broker property of an apache/kafka ``KAFKA_*`` variable (the image's rule:
    ``___`` -> ``-``, ``__`` -> ``_``, ``_`` -> ``.``, lower case)."""
    name = variable.removeprefix("KAFKA_").lower()
    return ".".join(
        part.replace("\0", "_") for part in name.replace("___", "-").replace("__", "\0").split("_")
    )


def _clone_tracked(repository: Path, source: str, target: Path) -> None:
    """Copy the files git tracks under `source` (relative to `repository`) to `target`
    (none when `repository` is no git checkout: a compose file copied elsewhere)."""
    listing = subprocess.run(
        ["git", "-C", str(repository), "ls-files", "-z", "--", source],  # noqa: S607
        capture_output=True,
        check=False,
    )
    listed = listing.stdout.decode() if listing.returncode == 0 else ""
    base = (repository / source).resolve()
    for name in filter(None, listed.split("\0")):
        path = (repository / name).resolve()
        copy = target / path.relative_to(base)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())


# --- a service's container ----------------------------------------------------------------------
@dataclass
class Container:
    """What one service sees: its folders and the addresses of the others."""

    service: Service
    root: Path
    """The container's own filesystem (what no volume covers)."""
    folders: dict[str, Path]
    """Container folder -> host folder: volumes and the image's stand-ins, longest first."""
    endpoints: dict[tuple[str, str], str]
    """(host name, port) -> local address."""
    workdir: str = "/"

    def host_path(self, path: str) -> str:
        """The host path of an absolute container path."""
        posix = PurePosixPath(path)
        for target, folder in self.folders.items():
            if posix == PurePosixPath(target) or PurePosixPath(target) in posix.parents:
                return str(folder / posix.relative_to(target))
        if posix.parts[1:2] and posix.parts[1] in SYSTEM_FOLDERS:
            return path
        return str(self.root / posix.relative_to("/"))

    def translate(self, text: str) -> str:
        """`text` (an argument, a script, a variable) with container addresses and paths
        replaced by this machine's."""
        text = _ENDPOINT.sub(lambda m: self.endpoints.get((m[1], m[2]), m[0]), text)
        return _PATH.sub(lambda m: self.host_path(m[0]), text)

    def volume_of(self, host_path: Path) -> str | None:
        """The volume (or host folder) of the service that holds `host_path`, if any."""
        for mount in self.service.volumes:
            folder = self.folders[mount.target]
            if host_path == folder or folder in host_path.parents:
                return mount.source
        return None

    @property
    def cwd(self) -> Path:
        """The host folder of the container's working directory."""
        folder = Path(self.host_path(self.workdir))
        folder.mkdir(parents=True, exist_ok=True)
        return folder


# --- what runs a service's processes ------------------------------------------------------------
class ProjectImage:
    """An image built from one of the project's Dockerfiles: hhar and the shell."""

    def __init__(self, dockerfile: Dockerfile, shims: Path) -> None:
        """`shims` holds the ``hhar`` that stands for the image's console script."""
        self.dockerfile = dockerfile
        self.shims = shims

    def workdir(self, service: Service) -> str:
        """The working directory: the service's ``working_dir`` or the image's WORKDIR."""
        return service.working_dir or self.dockerfile.workdir

    def folders(self) -> dict[str, Path]:
        """Image folders that stand for something on this machine (none: hhar is on PATH)."""
        return {}

    def argv(self, service: Service) -> list[str]:
        """Entrypoint + command, as Docker combines them."""
        entrypoint = (
            service.entrypoint
            if service.entrypoint is not None
            else self.dockerfile.entrypoint or []
        )
        if service.command is not None:
            command = service.command
        else:
            command = (self.dockerfile.cmd or []) if service.entrypoint is None else []
        return [*entrypoint, *command]

    def check(self, service: Service, argv: Sequence[str]) -> None:
        """Refuse programs the image would not run as the project's, and unknown settings."""
        if not argv or argv[0] not in PROJECT_PROGRAMS:
            msg = (
                f"service {service.name} runs {argv[:1]}: the rehearsal runs hhar and shell "
                f"scripts in the project's images ({self.dockerfile.path.name})"
            )
            raise RehearsalError(msg)
        fields = {f"HHAR_{name.upper()}" for name in Settings.model_fields}
        unknown = sorted(
            name for name in service.environment if name.startswith("HHAR_") and name not in fields
        )
        if unknown:
            msg = (
                f"service {service.name} sets {', '.join(unknown)}, which no hhar setting "
                f"reads (hhar ignores unknown HHAR_* variables)"
            )
            raise RehearsalError(msg)

    def path(self) -> str:
        """The PATH of the container's processes."""
        return f"{self.shims}{os.pathsep}{os.environ['PATH']}"


class KafkaImage:
    """apache/kafka: the broker without a command; its tools from the project's jars."""

    def __init__(self, tools: Path) -> None:
        """`tools` holds the stand-ins of /opt/kafka/bin/*.sh."""
        self.tools = tools

    @staticmethod
    def is_broker(service: Service) -> bool:
        """The image's own start-up: no command, no entrypoint."""
        return service.command is None and service.entrypoint is None

    def workdir(self, service: Service) -> str:
        """The image's working directory."""
        return service.working_dir or "/"

    def folders(self) -> dict[str, Path]:
        """/opt/kafka/bin stands for the tools of the project's jars."""
        return {KAFKA_TOOLS_DIR: self.tools}

    def argv(self, service: Service) -> list[str]:
        """Entrypoint + command of a service that runs a tool or a script."""
        return [*(service.entrypoint or []), *(service.command or [])]

    def check(self, service: Service, argv: Sequence[str]) -> None:
        """Refuse programs other than the image's tools and the shell."""
        if not argv or not (argv[0] in SHELLS or argv[0].startswith(f"{KAFKA_TOOLS_DIR}/")):
            msg = (
                f"service {service.name} runs {argv[:1]}: in {KAFKA_IMAGE} the rehearsal "
                f"runs {KAFKA_TOOLS_DIR} tools and shell scripts"
            )
            raise RehearsalError(msg)

    def path(self) -> str:
        """The PATH of the container's processes."""
        return os.environ["PATH"]


# --- running processes --------------------------------------------------------------------------
class ServiceProcess:
    """One service's main process, in a process group of its own."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path, log: Path
    ) -> None:
        """Start `argv` now, its output appended to `log`."""
        self.name = name
        self.log = log
        self.popen = launch(argv, log, cwd=cwd, env=env)

    @property
    def groups(self) -> list[int]:
        """The process groups it started."""
        return [self.popen.pid]

    def returncode(self) -> int | None:
        """None while it runs, then its exit code."""
        return self.popen.poll()

    def stop(self, grace: float) -> None:
        """As `docker compose stop`: SIGTERM to the main process, `grace` seconds, then
        SIGKILL to everything left in its group."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within %.0f s: killing it", self.name, grace)
        with contextlib.suppress(ProcessLookupError):
            if group_members(self.popen.pid):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()


class BrokerProcess:
    """The broker service: the project's `LocalKafka`, started in a thread (it waits until
    the broker answers)."""

    def __init__(self, name: str, local: LocalKafka) -> None:
        """Start the broker now."""
        self.name = name
        self.local = local
        self.log = local.nodes[0].log_file
        self.error: Exception | None = None
        self.pid: int | None = None
        self.stopped = False
        self.thread = threading.Thread(target=self._up, name=f"rehearsal-{name}", daemon=True)
        self.thread.start()

    def _up(self) -> None:
        try:
            self.local.up()
        except Exception as error:  # noqa: BLE001 - reported as the service's failure
            self.error = error
        self.pid = self.local.nodes[0].pid()

    @property
    def groups(self) -> list[int]:
        """The broker's process group (its pid, a session leader), once it started."""
        return [self.pid] if not self.thread.is_alive() and self.pid is not None else []

    def returncode(self) -> int | None:
        """None while it starts or runs; 1 once it failed or died, 0 once stopped."""
        if self.thread.is_alive():
            return None
        if self.error is not None:
            return 1
        if self.local.nodes[0].pid() is None:
            return 0 if self.stopped else 1
        return None

    def stop(self, grace: float) -> None:
        """SIGTERM, `grace` seconds, then SIGKILL (`LocalKafka.down`)."""
        self.thread.join()
        self.stopped = True
        self.local.down(timeout=grace)


@dataclass
class Running:
    """A started service."""

    container: Container
    process: ServiceProcess | BrokerProcess
    healthy: bool = False
    next_check: float = 0.0
    started: float = field(default_factory=time.monotonic)


# --- the rehearsal ------------------------------------------------------------------------------
class Rehearsal:
    """`docker compose up`, `run`, `exec`, `stop` and `down` of one project, on this machine."""

    def __init__(
        self,
        project: ComposeProject,
        workdir: Path,
        home: Path,
        profiles: tuple[str, ...] = (),
        kept_volumes: Mapping[str, Path] | None = None,
        broker_heap: str = "384m",
    ) -> None:
        """Plan the services of `project` that `profiles` activate, state under `workdir`.

        Args:
            project: the compose file, read with the user's variables.
            workdir: an empty folder for volumes, container folders, logs and the broker.
            home: the project's home with Kafka's jars (``.hhar``).
            profiles: the active profiles (``docker compose --profile P``).
            kept_volumes: named volumes kept in other folders, as Docker keeps volumes from
                one ``up`` to the next (a cache); the others are new.
            broker_heap: the heap of a broker service.
        """
        self.project = project
        self.profiles = profiles
        self.kept_volumes = dict(kept_volumes or {})
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.broker_heap = broker_heap
        self.running: dict[str, Running] = {}
        self.exited: dict[str, int] = {}
        self.stopped: set[str] = set()
        self._tools = LocalKafka(Settings(home=home), run_dir=workdir / "kafka-tools")
        self._images = self._plan_images()
        self.endpoints: dict[tuple[str, str], str] = {}
        self._brokers: dict[str, tuple[LocalKafka, dict[tuple[str, str], str]]] = {}
        for service in project.active(profiles):
            if isinstance(self._images[service.name], KafkaImage) and KafkaImage.is_broker(service):
                self._brokers[service.name] = self._plan_broker(service)
        self.endpoints = {
            key: address
            for _, endpoints in self._brokers.values()
            for key, address in endpoints.items()
        }

    # -- planning ----------------------------------------------------------------------------
    def _plan_images(self) -> dict[str, ProjectImage | KafkaImage | None]:
        shims = self.workdir / "images" / "project-bin"
        shims.mkdir(parents=True, exist_ok=True)
        hhar = shims / "hhar"
        hhar.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m hhar_stream.cli "$@"\n')
        hhar.chmod(0o755)
        tools = self.workdir / "images" / "kafka-bin"
        tools.mkdir(parents=True, exist_ok=True)
        for script, main_class in KAFKA_TOOLS.items():
            command = shlex.join(self._tools.tool_command(main_class))
            (tools / script).write_text(f'#!/bin/sh\nexec {command} "$@"\n')
            (tools / script).chmod(0o755)
        built = {
            image: Dockerfile.parse(path) for image, path in self.project.built_images().items()
        }
        images: dict[str, ProjectImage | KafkaImage | None] = {}
        for name, service in self.project.services.items():
            if service.image in built:
                images[name] = ProjectImage(built[service.image], shims)
            elif service.image.split(":")[0] == KAFKA_IMAGE:
                images[name] = KafkaImage(tools)
            else:
                images[name] = None  # refused when the service is started
        return images

    def _plan_broker(self, service: Service) -> tuple[LocalKafka, dict[tuple[str, str], str]]:
        environment = service.environment
        properties = dict(_IMAGE_DEFAULTS)
        for variable, value in environment.items():
            if variable.startswith("KAFKA_") and variable not in _JVM_VARIABLES:
                properties[kafka_property(variable)] = value
        listeners = properties.get("listeners", "")
        controllers = set(properties.get("controller.listener.names", "").split(","))
        # Where the image's broker keeps its data: log.dirs, else log.dir, else Kafka's default.
        log_dirs = properties.pop("log.dirs", None) or properties.pop("log.dir", _KAFKA_LOG_DIR)
        properties.pop("log.dir", None)
        properties["log.dirs"] = log_dirs
        container = self.container(service)
        settings = Settings(
            home=self.home,
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            kafka_heap=self.broker_heap,
        )
        local = LocalKafka(
            settings,
            run_dir=self.workdir / "brokers" / service.name,
            properties={
                key: container.translate(value)
                for key, value in properties.items()
                if key not in _BROKER_IDENTITY
            }
            | {"log.retention.check.interval.ms": str(RETENTION_CHECK_MS)},
        )
        node = local.nodes[0]
        endpoints = {}
        for listener in filter(None, listeners.split(",")):
            name, _, address = listener.partition("://")
            port = address.rpartition(":")[2]
            local_port = node.controller_port if name in controllers else node.port
            for host in {service.name, service.hostname}:
                endpoints[(host, port)] = f"127.0.0.1:{local_port}"
        return local, endpoints

    def container(self, service: Service) -> Container:
        """The container `service` runs in: its folders and the addresses it sees."""
        image = self._images[service.name]
        if image is None:
            msg = (
                f"service {service.name} uses image {service.image}, which the rehearsal "
                f"does not know: it runs the project's images and {KAFKA_IMAGE}"
            )
            raise RehearsalError(msg)
        folders = dict(image.folders())
        for mount in service.volumes:
            if mount.named:
                folders[mount.target] = self.kept_volumes.get(
                    mount.source, self.workdir / "volumes" / mount.source
                )
            elif Path(mount.source).is_absolute():
                folders[mount.target] = Path(mount.source)
            else:
                # The project's relative bind mounts, as on a fresh clone of the project: what
                # the repository holds there (./queries), or nothing (./data, generated).
                folders[mount.target] = self.workdir / "project" / mount.source
                if not folders[mount.target].exists():
                    _clone_tracked(self.project.path.parent, mount.source, folders[mount.target])
            folders[mount.target].mkdir(parents=True, exist_ok=True)
        endpoints = dict(self.endpoints)
        if service.name in self._brokers:
            # In the broker's own container, localhost is the broker.
            for (_, port), address in self._brokers[service.name][1].items():
                endpoints |= {("localhost", port): address, ("127.0.0.1", port): address}
        ordered = dict(sorted(folders.items(), key=lambda item: -len(item[0])))
        return Container(
            service,
            self.workdir / "containers" / service.name,
            ordered,
            endpoints,
            image.workdir(service),
        )

    def environment(self, container: Container) -> dict[str, str]:
        """The environment of a container's processes: this machine's (without HHAR_*),
        the image's PATH, the service's variables translated."""
        image = self._images[container.service.name]
        base = {key: value for key, value in os.environ.items() if not key.startswith("HHAR_")}
        return (
            base
            | {"PATH": image.path()}
            | {
                key: container.translate(value)
                for key, value in container.service.environment.items()
            }
        )

    # -- compose commands --------------------------------------------------------------------
    def up(self, timeout: float = 300.0) -> None:
        """`docker compose [--profile P] up`: start the active services in dependency order;
        return once each has started and the conditions of those that wait are met.

        Raises:
            RehearsalError: when a service fails, a condition cannot be met in `timeout`
                seconds, or a service cannot be rehearsed.
        """
        self._start([service.name for service in self.project.active(self.profiles)], timeout)

    def run(self, name: str, timeout: float = 300.0) -> None:
        """`docker compose run NAME` (detached): its dependencies first, then the service."""
        self._start([name], timeout)

    def _start(self, names: list[str], timeout: float) -> None:
        wanted: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in path:
                msg = f"dependency cycle: {' -> '.join((*path, name))}"
                raise ComposeError(msg)
            for dependency in self.project.services[name].depends_on:
                visit(dependency, (*path, name))
            if name not in wanted:
                wanted.append(name)

        for name in names:
            visit(name, ())
        pending = [name for name in wanted if name not in self.running]
        deadline = time.monotonic() + timeout
        while pending:
            self.check()
            for name in list(pending):
                if self._ready_to_start(self.project.services[name]):
                    self._launch(self.project.services[name])
                    pending.remove(name)
            if time.monotonic() > deadline:
                waits = {name: self.project.services[name].depends_on for name in pending}
                msg = f"not started within {timeout:.0f} s: {waits}"
                raise RehearsalError(msg)
            time.sleep(0.2)

    def _ready_to_start(self, service: Service) -> bool:
        for dependency, condition in service.depends_on.items():
            if dependency not in self.running:
                return False
            code = self._returncode(dependency)
            if condition == "service_completed_successfully":
                if code is None:
                    return False
                if code != 0:
                    msg = (
                        f"{service.name}: dependency {dependency} did not complete "
                        f"successfully (exit {code}):\n{self.log_tail(dependency)}"
                    )
                    raise RehearsalError(msg)
            elif condition == "service_healthy" and not self._healthy(dependency):
                return False
        return True

    def _healthy(self, name: str) -> bool:
        running = self.running[name]
        healthcheck = running.container.service.healthcheck
        if healthcheck is None:
            msg = f"a service waits for {name} to be healthy, but {name} has no healthcheck"
            raise RehearsalError(msg)
        if running.healthy or time.monotonic() < running.next_check:
            return running.healthy
        if self._returncode(name) is not None:
            msg = f"{name} exited before it was healthy:\n{self.log_tail(name)}"
            raise RehearsalError(msg)
        try:
            result = self._exec(running.container, healthcheck.command, healthcheck.timeout)
            running.healthy = result.returncode == 0
        except subprocess.TimeoutExpired:
            running.healthy = False
        # Checks come faster than every `interval`: only the time to healthy differs.
        running.next_check = time.monotonic() + min(healthcheck.interval, 2.0)
        if not running.healthy and time.monotonic() - running.started > healthcheck.patience:
            msg = (
                f"{name} is unhealthy: its healthcheck failed for "
                f"{healthcheck.patience:.0f} s:\n{self.log_tail(name)}"
            )
            raise RehearsalError(msg)
        return running.healthy

    def _launch(self, service: Service) -> None:
        container = self.container(service)
        if service.name in self._brokers:
            process: ServiceProcess | BrokerProcess = BrokerProcess(
                service.name, self._brokers[service.name][0]
            )
        else:
            image = self._images[service.name]
            argv = image.argv(service)
            image.check(service, argv)
            argv = [container.translate(arg) for arg in argv]
            self._check_tools(service, argv)
            process = ServiceProcess(
                service.name,
                argv,
                self.environment(container),
                container.cwd,
                self.logs / f"{service.name}.log",
            )
        logger.info("rehearsal: started %s", service.name)
        healthcheck = service.healthcheck
        first_check = time.monotonic() + (min(healthcheck.interval, 5.0) if healthcheck else 0)
        self.running[service.name] = Running(container, process, next_check=first_check)

    def _check_tools(self, service: Service, argv: Sequence[str]) -> None:
        image = self._images[service.name]
        for stand_in in image.folders().values():
            for word in re.findall(rf"{re.escape(str(stand_in))}/[\w.-]+", " ".join(argv)):
                if not Path(word).exists():
                    msg = (
                        f"service {service.name} runs {Path(word).name}, which is not among "
                        f"the image tools the rehearsal maps: {sorted(KAFKA_TOOLS)}"
                    )
                    raise RehearsalError(msg)

    def exec(
        self, name: str, argv: Sequence[str], timeout: float = 120.0
    ) -> subprocess.CompletedProcess:
        """`docker compose exec NAME ARGV...`: a command in a running service's container."""
        if name not in self.running or self._returncode(name) is not None:
            msg = f"service {name} is not running"
            raise RehearsalError(msg)
        container = self.running[name].container
        self._images[name].check(container.service, argv)
        self._check_tools(container.service, [container.translate(arg) for arg in argv])
        return self._exec(container, argv, timeout)

    def _exec(
        self, container: Container, argv: Sequence[str], timeout: float
    ) -> subprocess.CompletedProcess:
        """Run `argv` in `container` in a process group of its own; after `timeout` seconds
        the whole group is killed (a tool's JVM too) and TimeoutExpired raised."""
        argv = [container.translate(arg) for arg in argv]
        process = subprocess.Popen(  # noqa: S603 - the compose file's own command
            argv,
            env=self.environment(container),
            cwd=container.cwd,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        finally:
            with contextlib.suppress(ProcessLookupError):
                if group_members(process.pid):
                    os.killpg(process.pid, signal.SIGKILL)
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)

    def settings_of(self, name: str) -> Settings:
        """The settings the hhar of service `name` runs with (`hhar config --json` in its
        container), paths as this machine sees them."""
        result = self.exec(name, ["hhar", "config", "--json"])
        if result.returncode != 0:
            msg = f"hhar config in {name} failed: {result.stderr}"
            raise RehearsalError(msg)
        cwd = self.running[name].container.cwd
        values = {
            key: value
            for key, value in json.loads(result.stdout).items()
            if value is not None and key != "sasl_password"
        }
        settings = Settings(**values)
        paths = {
            key: cwd / value
            for key, value in settings.model_dump().items()
            if isinstance(value, Path) and not value.is_absolute()
        }
        return settings.changed(**paths)

    def stop(self, name: str) -> int | None:
        """`docker compose stop NAME`; the service's exit code."""
        running = self.running[name]
        self.stopped.add(name)
        running.process.stop(running.container.service.stop_grace_period)
        return self._returncode(name)

    def down(self) -> None:
        """`docker compose down`: stop every service, those started last first."""
        errors = []
        for name in reversed(list(self.running)):
            try:
                self.stop(name)
            except Exception as error:  # noqa: BLE001 - stop the others, then report
                errors.append(f"{name}: {error}")
        if errors:
            raise RehearsalError("; ".join(errors))

    # -- observing ---------------------------------------------------------------------------
    def _returncode(self, name: str) -> int | None:
        if name in self.exited:
            return self.exited[name]
        code = self.running[name].process.returncode()
        if code is not None:
            self.exited[name] = code
        return code

    @property
    def brokers(self) -> list[str]:
        """The services that are Kafka brokers."""
        return list(self._brokers)

    def broker_data(self, name: str) -> list[Path]:
        """The folders where broker service `name` keeps its topics (its log.dirs)."""
        local, _ = self._brokers[name]
        return [Path(folder) for folder in local.properties["log.dirs"].split(",")]

    def returncode(self, name: str) -> int | None:
        """The exit code of a started service, None while it runs."""
        return self._returncode(name)

    def check(self) -> None:
        """Fail when a started service has exited with an error.

        Raises:
            RehearsalError: naming the service, its exit code and the end of its log.
        """
        for name in self.running:
            code = self._returncode(name)
            if code not in (None, 0) and name not in self.stopped:
                msg = f"service {name} exited with code {code}:\n{self.log_tail(name)}"
                raise RehearsalError(msg)

    def log(self, name: str) -> str:
        """Everything service `name` has written so far."""
        path = self.running[name].process.log
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, name: str, lines: int = 25) -> str:
        """The end of a service's log, for failure messages."""
        return "\n".join(self.log(name).splitlines()[-lines:]) or "(no output)"

    def leftovers(self) -> list[int]:
        """Live processes of every process group the rehearsal started."""
        return [
            pid
            for running in self.running.values()
            for group in running.process.groups
            for pid in group_members(group)
            if pid_alive(pid)
        ]
