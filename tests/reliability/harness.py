"""Real processes for the reliability tests: `hhar` commands that can be killed with SIGKILL,
an independent reader of topics, and a deadline-bounded poll.

Every `hhar` command runs in its own session (process group), so a crash kills the whole
command at once: the Python driver, and for ``hhar process`` its Spark JVM and Python workers.
Output goes to files, so a chatty process never blocks on a full pipe.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from hhar_stream.settings import Settings

HHAR = [sys.executable, "-m", "hhar_stream.cli"]

ROW_IDENTITY = ("User", "Device", "Index", "Arrival_Time")
"""The fields that identify one HHAR row (the issue's uniqueness check)."""

_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: ")
"""A log record in the format of `hhar_stream.cli.configure_logging`."""


def poll_until(condition: Callable[[], Any], timeout: float, what: str | Callable[[], str],
               interval: float = 0.05) -> Any:
    """Call `condition` until it returns something truthy (returned) or `timeout` passes.

    `what` names what is waited for in the failure message (a callable: computed then).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            msg = f"not within {timeout:.0f} s: {text}"
            raise AssertionError(msg)
        time.sleep(interval)


def hhar_env(settings: Settings | None = None, fields: Iterable[str] = (),
             **extra: str) -> dict[str, str]:
    """The environment of a user: no inherited HHAR_* variable, then `fields` of `settings`
    as HHAR_* variables (secrets revealed: the variables are how a user passes them), then
    `extra` (HHAR_ names or others)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("HHAR_")}
    if settings is not None:
        env |= settings.environment(*fields)
    return env | extra


class HharProcess:
    """One `hhar` command in its own process group, its output in files under `workdir`."""

    def __init__(self, args: Iterable[str], env: dict[str, str], workdir: Path,
                 name: str) -> None:
        """Start ``hhar <args>`` now."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.args = list(args)
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self.started = time.monotonic()
        self.ended: float | None = None
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                [*HHAR, *self.args], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env=env, cwd=workdir, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The command's pid, also its process group id."""
        return self.process.pid

    def running(self) -> bool:
        """True until the command has exited."""
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for the command to exit by itself; its exit code."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.crash()
            msg = f"{self.name} did not end within {timeout:.0f} s:\n{self.stderr[-3000:]}"
            raise AssertionError(msg) from None
        self.ended = self.ended or time.monotonic()
        return code

    @property
    def seconds(self) -> float:
        """How long the command ran (so far)."""
        return (self.ended or time.monotonic()) - self.started

    def crash(self, timeout: float = 30.0) -> None:
        """SIGKILL the whole process group at once and wait until none of it is left."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=timeout)
        self.ended = self.ended or time.monotonic()
        poll_until(lambda: not group_members(self.pid), timeout,
                   f"every process of {self.name} gone")

    @property
    def stdout(self) -> str:
        """What the command wrote to stdout so far."""
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        """What the command wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes of process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def error_line(stderr: str) -> str:
    """The one ``error:`` line `hhar` ends with; fails unless stderr holds exactly that line
    plus, before it, log records of hhar's format (no traceback, no usage text)."""
    lines = stderr.splitlines()
    assert lines, "nothing on stderr"
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [lines[-1]], stderr[-3000:]
    others = [line for line in lines[:-1] if not _LOG_LINE.match(line)]
    assert not others, others[:10]
    return lines[-1]


@dataclass(frozen=True)
class Message:
    """A record read back from Kafka."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


def read_messages(settings: Settings, topic: str, isolation: str = "read_committed",
                  timeout: float = 30.0) -> list[Message]:
    """Every record of `topic`, from the beginning to the end of each partition, read by a
    consumer of its own (a fresh group that commits nothing)."""
    consumer = Consumer(settings.kafka_client_config() | {
        "group.id": f"reliability-check-{uuid.uuid4().hex[:8]}",
        "isolation.level": isolation,
        "enable.partition.eof": True,
        "enable.auto.commit": False,
        "fetch.message.max.bytes": 4_000_000,
    })
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        assert metadata.error is None, f"{topic}: {metadata.error}"
        consumer.assign([TopicPartition(topic, number, -2) for number in metadata.partitions])
        messages: list[Message] = []
        at_end: set[int] = set()
        while len(at_end) < len(metadata.partitions):
            message = consumer.poll(timeout)
            assert message is not None, f"{topic}: no end of partition within {timeout} s"
            if message.error():
                at_end.add(message.partition())
                continue
            messages.append(Message(
                partition=message.partition(), offset=message.offset(), key=message.key(),
                value=message.value(),
                headers={name: value.decode() for name, value in message.headers() or []},
            ))
        return messages
    finally:
        consumer.close()


def row_identities(values: Iterable[bytes | str]) -> Counter[tuple]:
    """How often each (User, Device, Index, Arrival_Time) occurs among JSON events (message
    values or source lines)."""
    seen: Counter[tuple] = Counter()
    for value in values:
        event = json.loads(value)
        seen[tuple(event[name] for name in ROW_IDENTITY)] += 1
    return seen


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The end (high watermark) of every partition of `topic`."""
    consumer = Consumer(settings.kafka_client_config() | {
        "group.id": f"reliability-ends-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            number: consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=10,
                                                   cached=False)[1]
            for number in partitions
        }
    finally:
        consumer.close()


def count_exactness(expected: set, seen: Counter) -> tuple[int, int, int]:
    """(lost, duplicated, unexpected): expected items never seen, extra copies of seen items,
    and seen items that were not expected."""
    lost = len(expected - seen.keys())
    duplicated = sum(count - 1 for count in seen.values() if count > 1)
    unexpected = len(seen.keys() - expected)
    return lost, duplicated, unexpected
