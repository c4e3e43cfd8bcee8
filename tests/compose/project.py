"""docker-compose.yml and the Dockerfiles read as Docker would read them, without an engine.

`ComposeProject.load` applies compose's interpolation (``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?error}``, ``${VAR:+alternative}``, ``$VAR``, ``$$``) to every value
with the variables a user would export, resolves YAML anchors and merge keys, and gives each
service in one normal form (`Service`): command and entrypoint as argument lists, environment
as a mapping, volumes, ``depends_on`` conditions, the healthcheck as a command line.
`Dockerfile` reads the instructions the rehearsal needs (FROM, WORKDIR, ENTRYPOINT, CMD, COPY,
RUN, USER).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


class ComposeError(Exception):
    """docker-compose.yml says something compose would refuse, or the rehearsal cannot do."""


# --- interpolation ----------------------------------------------------------------------------
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(
    rf"\$(?:(?P<escaped>\$)|(?P<bare>{_NAME})|\{{(?P<braced>{_NAME})"
    r"(?:(?P<op>:?[-?+])(?P<arg>(?:[^{}]|\{[^{}]*\})*))?\})"
)


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """`text` with compose's variable references replaced from `variables`.

    Raises:
        ComposeError: for ``${VAR:?message}`` (or ``?``) when VAR is missing, and for a ``$``
            that starts no reference (compose refuses both).
    """
    out, position = [], 0
    for match in _TOKEN.finditer(text):
        out.append(_plain(text[position : match.start()]))
        position = match.end()
        if match["escaped"]:
            out.append("$")
            continue
        name = match["bare"] or match["braced"]
        value, op, arg = variables.get(name), match["op"], match["arg"]
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-"):
            out.append(interpolate(arg, variables) if unset else value)
        elif op in ("?", ":?"):
            if unset:
                msg = f"required variable {name} is missing a value: {arg}"
                raise ComposeError(msg)
            out.append(value)
        elif op in ("+", ":+"):
            out.append("" if unset else interpolate(arg, variables))
        else:
            out.append(value or "")
    out.append(_plain(text[position:]))
    return "".join(out)


def _plain(text: str) -> str:
    if "$" in text:
        msg = f"invalid interpolation format in {text!r}: write $$ for a literal $"
        raise ComposeError(msg)
    return text


def _interpolate_values(value: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, variables)
    if isinstance(value, list):
        return [_interpolate_values(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: _interpolate_values(item, variables) for key, item in value.items()}
    return value


# --- services -----------------------------------------------------------------------------------
def parse_duration(text: str | int | float) -> float:
    """Seconds of a compose duration (``10s``, ``1m30s``, ``500ms``, ``2h``)."""
    if isinstance(text, int | float):
        return float(text)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        msg = f"invalid duration {text!r}"
        raise ComposeError(msg)
    return sum(float(number) * units[unit] for number, unit in parts)


def _argv(value: str | list | None) -> list[str] | None:
    """A command or entrypoint as an argument list (a string is split as compose splits it)."""
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(item) for item in value]


@dataclass(frozen=True)
class Mount:
    """One volume of a service: a named volume or a host folder, at `target`."""

    source: str
    target: str
    read_only: bool
    named: bool


@dataclass(frozen=True)
class Healthcheck:
    """A service's healthcheck: the command and compose's timing."""

    command: list[str]
    interval: float
    timeout: float
    retries: int
    start_period: float

    @property
    def patience(self) -> float:
        """How long compose waits before it calls the service unhealthy."""
        return self.start_period + self.retries * (self.interval + self.timeout)


@dataclass(frozen=True)
class Service:
    """One service of the compose file, interpolated and in one normal form."""

    name: str
    raw: dict[str, Any]
    image: str
    command: list[str] | None
    entrypoint: list[str] | None
    environment: dict[str, str]
    volumes: list[Mount]
    depends_on: dict[str, str]
    healthcheck: Healthcheck | None
    profiles: tuple[str, ...]
    hostname: str
    working_dir: str | None
    stop_grace_period: float
    dockerfile: Path | None = field(default=None)

    @classmethod
    def parse(
        cls,
        name: str,
        raw: dict[str, Any],
        project: Path,
        named_volumes: set[str],
        variables: Mapping[str, str],
    ) -> Service:
        """Read one interpolated service definition of the project in folder `project`."""
        image = raw.get("image")
        build = raw.get("build")
        if image is None and build is None:
            msg = f"service {name} has neither image nor build"
            raise ComposeError(msg)
        dockerfile = None
        if build is not None:
            build = {"context": build} if isinstance(build, str) else build
            context = project / build.get("context", ".")
            dockerfile = context / build.get("dockerfile", "Dockerfile")
        depends = raw.get("depends_on", {})
        if isinstance(depends, list):
            depends = {dependency: {} for dependency in depends}
        depends_on = {
            dep: (spec or {}).get("condition", "service_started") for dep, spec in depends.items()
        }
        for dep, condition in depends_on.items():
            if condition not in CONDITIONS:
                msg = f"service {name}: unknown depends_on condition {condition!r} of {dep}"
                raise ComposeError(msg)
        return cls(
            name=name,
            raw=raw,
            image=image or f"{project.name}-{name}",
            command=_argv(raw.get("command")),
            entrypoint=_argv(raw.get("entrypoint")),
            environment=_environment(raw.get("environment", {}), variables),
            volumes=[_mount(item, named_volumes, name) for item in raw.get("volumes", [])],
            depends_on=depends_on,
            healthcheck=_healthcheck(raw.get("healthcheck")),
            profiles=tuple(raw.get("profiles", ())),
            hostname=raw.get("hostname", name),
            working_dir=raw.get("working_dir"),
            stop_grace_period=parse_duration(raw.get("stop_grace_period", "10s")),
            dockerfile=dockerfile,
        )


def _environment(raw: dict | list, variables: Mapping[str, str]) -> dict[str, str]:
    """Compose's two forms of `environment`; a name without a value takes the user's."""
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    environment = {}
    for key, value in raw.items():
        if value is None:
            if key in variables:
                environment[key] = variables[key]
        elif isinstance(value, bool):
            msg = f"environment {key}: {value} must be quoted (compose refuses booleans)"
            raise ComposeError(msg)
        else:
            environment[key] = str(value)
    return environment


def _mount(item: str | dict, named_volumes: set[str], service: str) -> Mount:
    if isinstance(item, dict):
        source, target = item.get("source", ""), item["target"]
        read_only = bool(item.get("read_only", False))
    else:
        parts = item.split(":")
        if len(parts) not in (2, 3):
            msg = f"service {service}: volume {item!r} is not source:target[:mode]"
            raise ComposeError(msg)
        source, target = parts[0], parts[1]
        read_only = len(parts) == 3 and "ro" in parts[2].split(",")
    named = not source.startswith((".", "/", "~"))
    if named and source not in named_volumes:
        msg = f"service {service} mounts volume {source!r}, which the file does not declare"
        raise ComposeError(msg)
    return Mount(source, target, read_only, named)


def _healthcheck(raw: dict | None) -> Healthcheck | None:
    if not raw or raw.get("disable"):
        return None
    test = raw["test"]
    if isinstance(test, str):
        command = ["/bin/sh", "-c", test]
    elif test[0] == "CMD-SHELL":
        command = ["/bin/sh", "-c", test[1]]
    elif test[0] == "CMD":
        command = list(test[1:])
    elif test[0] == "NONE":
        return None
    else:
        msg = f"healthcheck test {test!r} starts with neither CMD nor CMD-SHELL"
        raise ComposeError(msg)
    return Healthcheck(
        command=command,
        interval=parse_duration(raw.get("interval", "30s")),
        timeout=parse_duration(raw.get("timeout", "30s")),
        retries=int(raw.get("retries", 3)),
        start_period=parse_duration(raw.get("start_period", "0s")),
    )


@dataclass(frozen=True)
class ComposeProject:
    """The services of a compose file, read with a user's variables."""

    path: Path
    services: dict[str, Service]

    @classmethod
    def load(
        cls, path: Path = COMPOSE_FILE, variables: Mapping[str, str] | None = None
    ) -> ComposeProject:
        """Read `path` as compose reads it with `variables` (the user's exported variables)."""
        variables = dict(variables or {})
        document = yaml.safe_load(path.read_text())
        volumes = set(document.get("volumes") or {})
        services = {
            name: Service.parse(
                name, _interpolate_values(raw, variables), path.parent, volumes, variables
            )
            for name, raw in document["services"].items()
        }
        for service in services.values():
            for dependency in service.depends_on:
                if dependency not in services:
                    msg = f"service {service.name} depends on undefined service {dependency}"
                    raise ComposeError(msg)
        return cls(path, services)

    def active(self, profiles: tuple[str, ...] = ()) -> list[Service]:
        """The services `docker compose [--profile P...] up` starts (no profile, or one of
        `profiles`), in the file's order."""
        return [
            service
            for service in self.services.values()
            if not service.profiles or set(service.profiles) & set(profiles)
        ]

    def built_images(self) -> dict[str, Path]:
        """Image name -> the project Dockerfile a service builds it from."""
        return {
            service.image: service.dockerfile
            for service in self.services.values()
            if service.dockerfile is not None
        }


# --- Dockerfiles --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dockerfile:
    """The instructions of a Dockerfile that say what runs, where and from which files."""

    path: Path
    base: str
    workdir: str
    entrypoint: list[str] | None
    cmd: list[str] | None
    copies: list[tuple[list[str], str]]
    runs: list[str]
    user: str | None

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        """Read `path` (comments and line continuations as Docker reads them)."""
        logical, pending = [], ""
        for line in path.read_text().splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            logical.append(pending + line)
            pending = ""
        base, workdir, entrypoint, cmd, user = "", "/", None, None, None
        copies, runs = [], []
        for line in logical:
            instruction, _, rest = line.strip().partition(" ")
            instruction, rest = instruction.upper(), rest.strip()
            if instruction == "FROM":
                base = rest.split()[0]
            elif instruction == "WORKDIR":
                workdir = rest if rest.startswith("/") else f"{workdir.rstrip('/')}/{rest}"
            elif instruction == "ENTRYPOINT":
                entrypoint = _exec_form(rest)
            elif instruction == "CMD":
                cmd = _exec_form(rest)
            elif instruction == "COPY":
                *sources, destination = shlex.split(rest)
                copies.append((sources, destination))
            elif instruction == "RUN":
                runs.append(rest)
            elif instruction == "USER":
                user = rest
        return cls(path, base, workdir, entrypoint, cmd, copies, runs, user)


def _exec_form(text: str) -> list[str]:
    """ENTRYPOINT/CMD: the JSON form as is, the shell form as ``/bin/sh -c``."""
    if text.startswith("["):
        return [str(item) for item in json.loads(text)]
    return ["/bin/sh", "-c", text]
