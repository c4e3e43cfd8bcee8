"""A local Spark standalone cluster (one master, N workers) started from the installed pyspark.

`hhar spark up --workers 2` runs ``spark-class`` with Spark's Master and Worker classes on
127.0.0.1; `hhar process --master spark://127.0.0.1:7077` then runs the processor on it.
State, logs and pids live under ``<home>/spark/run``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..daemons import PidFile, java_executable, kill_now, launch, port_is_free, stop_gracefully
from ..errors import BrokerError
from ..settings import Settings

logger = logging.getLogger(__name__)


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark package."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


@dataclass(frozen=True)
class SparkDaemon:
    """One daemon of the standalone cluster: the master or a worker."""

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> PidFile:
        """Where the daemon's pid is kept."""
        return PidFile(self.run_dir / f"{self.name}.pid")

    @property
    def log_file(self) -> Path:
        """The daemon's log."""
        return self.run_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of the running daemon, if any."""
        return self.pid_file.pid()


class LocalSpark:
    """The project's local Spark standalone cluster: `up`, `down`, `status`."""

    def __init__(self, settings: Settings, run_dir: Path | None = None) -> None:
        """Describe the cluster of `settings` (state under `run_dir` if given)."""
        self.settings = settings
        self.run_dir = (run_dir or settings.home / "spark" / "run").resolve()
        self.master = SparkDaemon("master", self.run_dir)
        self.workers = [
            SparkDaemon(f"worker-{number}", self.run_dir)
            for number in range(1, settings.spark_workers + 1)
        ]

    @property
    def master_url(self) -> str:
        """The ``spark://`` URL to give ``--master``."""
        return f"spark://127.0.0.1:{self.settings.spark_master_port}"

    @property
    def ui_url(self) -> str:
        """The master's web UI (its /json view tells which workers are alive)."""
        return f"http://127.0.0.1:{self.settings.spark_master_ui_port}"

    def _launch(self, daemon: SparkDaemon, main_class: str, *args: str) -> None:
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        work = self.run_dir / "work"
        work.mkdir(exist_ok=True)
        env = os.environ | {
            "SPARK_HOME": str(spark_home()),
            "JAVA_HOME": str(Path(java_executable()).resolve().parent.parent),
            "SPARK_LOG_DIR": str(self.run_dir / "logs"),
            "SPARK_WORKER_DIR": str(work),
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_DAEMON_MEMORY": "256m",
            "SPARK_LOCAL_IP": "127.0.0.1",
        }
        command = [str(spark_home() / "bin" / "spark-class"), main_class, *args]
        process = launch(command, daemon.log_file, daemon.pid_file, cwd=self.run_dir, env=env)
        logger.info("started Spark %s (pid %d)", daemon.name, process.pid)

    def alive_workers(self) -> int:
        """How many workers the master counts as ALIVE (0 when it does not answer)."""
        try:
            with urllib.request.urlopen(f"{self.ui_url}/json", timeout=2) as response:
                state = json.load(response)
        except (OSError, ValueError):
            return 0
        return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")

    def up(self) -> str:
        """Start the master and the workers that are not running; wait until all registered."""
        settings = self.settings
        if self.master.pid() is None:
            for port in (settings.spark_master_port, settings.spark_master_ui_port):
                if not port_is_free(port):
                    msg = f"port {port} on 127.0.0.1 is already in use (HHAR_SPARK_MASTER_PORT)"
                    raise BrokerError(msg)
            self._launch(
                self.master,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.spark_master_port),
                "--webui-port",
                str(settings.spark_master_ui_port),
            )
        for number, worker in enumerate(self.workers, start=1):
            if worker.pid() is None:
                self.start_worker(number, wait=False)
        self._wait_for_workers(len(self.workers))
        return f"Spark master {self.master_url} with {len(self.workers)} worker(s) ({self.ui_url})"

    def start_worker(self, number: int, wait: bool = True) -> None:
        """Start worker `number` (from 1), e.g. again after `kill_worker`."""
        worker = self.workers[number - 1]
        self._launch(
            worker,
            "org.apache.spark.deploy.worker.Worker",
            "--host",
            "127.0.0.1",
            "--cores",
            str(self.settings.spark_worker_cores),
            "--memory",
            self.settings.spark_worker_memory,
            "--webui-port",
            str(self.settings.spark_master_ui_port + number),
            self.master_url,
        )
        if wait:
            self._wait_for_workers(sum(1 for w in self.workers if w.pid() is not None))

    def _wait_for_workers(self, expected: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.master.pid() is None:
                msg = f"the Spark master exited; see {self.master.log_file}"
                raise BrokerError(msg)
            if self.alive_workers() >= expected:
                return
            time.sleep(0.5)
        msg = (
            f"only {self.alive_workers()} of {expected} Spark workers registered within "
            f"{timeout:.0f} s; see the logs in {self.run_dir / 'logs'}"
        )
        raise BrokerError(msg)

    def kill_worker(self, number: int) -> None:
        """Kill one worker and its executors at once (SIGKILL), as a crash would."""
        worker = self.workers[number - 1]
        pid = worker.pid()
        if pid is not None:
            kill_now(pid, group=True)
        worker.pid_file.forget()

    def down(self, timeout: float = 20.0) -> str:
        """Stop the workers and the master (with their executors)."""
        daemons = [*self.workers, self.master]
        running = {daemon.name: pid for daemon in daemons if (pid := daemon.pid()) is not None}
        if running:
            stop_gracefully(running, timeout, group=True)
        for daemon in daemons:
            daemon.pid_file.forget()
        if not running:
            return "Spark cluster is not running"
        return f"Spark cluster stopped ({len(running)} process(es))"

    def status(self) -> tuple[bool, str]:
        """Whether the master runs with every worker alive, and a one-line description."""
        if self.master.pid() is None:
            return False, "Spark master is not running"
        alive = self.alive_workers()
        healthy = alive >= len(self.workers)
        return healthy, f"Spark master {self.master_url}: {alive} worker(s) alive ({self.ui_url})"
