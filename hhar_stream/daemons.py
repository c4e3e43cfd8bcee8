"""Local daemons and child processes: java, ports, pid files, graceful stops and signals.

One home for what the local broker (`hhar kafka`), the local Spark cluster (`hhar spark`),
`hhar demo` and the long-running commands (`hhar produce`, `hhar process`) share: finding
``java``, free ports on 127.0.0.1, a pid file per daemon, "SIGTERM, wait, then SIGKILL", and
the two-step Ctrl+C (the first stops cleanly, the second aborts).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from .errors import BrokerError, ConfigError

logger = logging.getLogger(__name__)


def java_executable() -> str:
    """The ``java`` to run Kafka and Spark with (``JAVA_HOME`` first, then ``PATH``)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        msg = "java not found: install a Java 17+ runtime (e.g. apt-get install openjdk-17-jre)"
        raise ConfigError(msg)
    return found


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_base(*offsets: int) -> int:
    """A base port such that base + offset is free on 127.0.0.1 for every offset."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 60_000)
        if all(port_is_free(base + offset) for offset in offsets):
            return base
    msg = "no free block of ports on 127.0.0.1"
    raise BrokerError(msg)


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@dataclass(frozen=True)
class PidFile:
    """The pid file of one daemon started in its own session (process group)."""

    path: Path

    def pid(self) -> int | None:
        """The pid of the running daemon, if any."""
        try:
            pid = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def record(self, pid: int) -> None:
        """Remember the daemon's pid."""
        self.path.write_text(f"{pid}\n")

    def forget(self) -> None:
        """Remove the pid file."""
        self.path.unlink(missing_ok=True)


def launch(
    command: Sequence[str],
    log_file: Path,
    pid_file: PidFile | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command` in a session of its own (it outlives us and our Ctrl+C misses it).

    Its stdout and stderr are appended to `log_file`; its pid goes to `pid_file`.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=cwd,
            env=env,
        )
    if pid_file is not None:
        pid_file.record(process.pid)
    return process


def _signal(pid: int, number: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, number)
        else:
            os.kill(pid, number)


def stop_gracefully(pids: dict[str, int], timeout: float, group: bool = False) -> None:
    """SIGTERM every process of `pids` (name -> pid), wait up to `timeout` seconds for all of
    them, then SIGKILL what is left; returns once none is alive.

    With `group`, each signal goes to the process's whole group (its children too).
    """
    for pid in pids.values():
        _signal(pid, signal.SIGTERM, group)
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    for name, pid in pids.items():
        if pid_alive(pid):
            logger.warning("%s (pid %d) did not stop in %.0f s: killing it", name, pid, timeout)
            kill_now(pid, group)


def kill_now(pid: int, group: bool = False) -> None:
    """SIGKILL a process (or its whole group) at once, as a crash would; wait until it is gone."""
    _signal(pid, signal.SIGKILL, group)
    while pid_alive(pid):
        time.sleep(0.05)


def stop_child(process: subprocess.Popen[bytes], name: str, timeout: float = 30.0) -> None:
    """Stop a child started by `launch` and everything in its process group.

    SIGTERM to the group, up to `timeout` seconds for the child to exit, then SIGKILL to the
    group (a JVM the child started lives there too): nothing is left behind.
    """
    if process.poll() is None:
        _signal(process.pid, signal.SIGTERM, group=True)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0f s: killing it", name, timeout)
    _signal(process.pid, signal.SIGKILL, group=True)
    process.wait()


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, what: str) -> Iterator[None]:
    """Within the block, the first SIGINT or SIGTERM sets `stop`, a second one aborts.

    A handler must not raise inside a call into a library (a Py4J call to Spark's JVM, a
    librdkafka flush): the first signal only asks the running loop to stop (it logs
    "<SIGNAL>: <what> (again to abort)"); the second raises KeyboardInterrupt.
    """

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        logger.warning("%s: %s (again to abort)", signal.Signals(signum).name, what)

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
