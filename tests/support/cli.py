"""The one way tests run the real `hhar` command: a child process in a session of its own, its
output in files (a chatty command never blocks on a full pipe), and the environment of a user.

A command's whole process group goes when it is crashed or stopped: the Python driver, and for
``hhar process`` its Spark JVM and Python workers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from hhar_stream.settings import Settings

from .polling import poll_until

HHAR = [sys.executable, "-m", "hhar_stream.cli"]

LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: ")
"""A log record in the format of `hhar_stream.cli.configure_logging`."""


def hhar_env(
    settings: Settings | None = None, fields: Iterable[str] = (), **extra: str
) -> dict[str, str]:
    """The environment of a user: no inherited HHAR_* variable, then `fields` of `settings`
    as HHAR_* variables (secrets revealed: the variables are how a user passes them), then
    `extra` (HHAR_ names or others)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("HHAR_")}
    if settings is not None:
        env |= settings.environment(*fields)
    return env | extra


class HharProcess:
    """One `hhar` command in its own process group, its output in files under `workdir` (also
    its working folder)."""

    def __init__(
        self, args: Iterable[str], env: dict[str, str], workdir: Path, name: str = "hhar"
    ) -> None:
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
                [*HHAR, *self.args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=workdir,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The command's pid, also its process group id."""
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: the signal that ended it); None while it runs."""
        return self.process.poll()

    def running(self) -> bool:
        """True until the command has exited."""
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for the command to exit by itself; its exit code (fails after `timeout`)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.crash()
            msg = f"{self.name} did not end within {timeout:.0f} s:\n{self.stderr[-3000:]}"
            raise AssertionError(msg) from None
        self.ended = self.ended or time.monotonic()
        return code

    def send_signal(self, sig: int) -> None:
        """Send `sig` to the command itself (as a user's kill does), not to its group."""
        self.process.send_signal(sig)

    def stop(self, timeout: float) -> int:
        """SIGTERM to the whole process group (a clean stop); wait for the command's exit code."""
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        return self.wait(timeout)

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
        poll_until(
            lambda: not group_members(self.pid), timeout, f"every process of {self.name} gone"
        )

    @property
    def stdout(self) -> str:
        """What the command wrote to stdout so far."""
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        """What the command wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")


def run_hhar(
    args: Iterable[str],
    env: dict[str, str],
    workdir: Path,
    name: str = "hhar",
    timeout: float = 600.0,
) -> HharProcess:
    """Run ``hhar <args>`` to its end (fails after `timeout`); the ended command, with its
    ``returncode``, ``stdout`` and ``stderr``."""
    process = HharProcess(args, env, workdir, name)
    process.wait(timeout)
    return process


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
    others = [line for line in lines[:-1] if not LOG_LINE.match(line)]
    assert not others, others[:10]
    return lines[-1]
