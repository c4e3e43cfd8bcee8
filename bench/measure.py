"""Run a command and measure it: wall time, exit code, output, peak memory of its process tree.

Peak memory comes from /proc (no psutil): a sampler thread walks the command's process tree
every `SAMPLE_SECONDS` and keeps, per process, the largest ``VmHWM`` it saw (the kernel's own
peak resident set of that process, so a peak between two samples is not missed as long as the
process is sampled once after it), and the largest sum of ``VmRSS`` over the tree at one
sample; processes younger than one sampling interval are left out. Processes are told apart by
their executable: ``java`` (Spark's JVM, started by pyspark as a child of the Python driver),
``python`` and anything else. `os.wait4` adds the direct child's own ``ru_maxrss`` as a
cross-check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_SECONDS = 0.2
_KB = 1024


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue
        fields = text.rsplit(b")", 1)[-1].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """`root` and every descendant of it alive now."""
    children = _children_map()
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def _memory_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a process in kB, or None when it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, amount = line.split(":", 1)
            values[name] = int(amount.split()[0])
    if "VmRSS" not in values:
        return None
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (its own threads, not its children)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[-1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _kind(pid: int) -> str:
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return "other"
    if exe.startswith("java"):
        return "java"
    if exe.startswith("python"):
        return "python"
    return "other"


@dataclass
class TreeMemory:
    """Peak memory of a process tree, in MB."""

    peak_by_pid: dict[int, float] = field(default_factory=dict)
    kind_by_pid: dict[int, str] = field(default_factory=dict)
    peak_sum: float = 0.0
    """Largest sum of the tree's resident sets at one sample."""
    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    """CPU seconds of each process at its last sample."""

    @property
    def cpu_seconds(self) -> float:
        """CPU time of the whole tree (up to the last sample of each process)."""
        return sum(self.cpu_by_pid.values())

    def peak(self, kind: str) -> float:
        """The largest peak RSS of one process of `kind` (java, python, other)."""
        return max(
            (mb for pid, mb in self.peak_by_pid.items() if self.kind_by_pid.get(pid) == kind),
            default=0.0,
        )


class MemorySampler:
    """Samples the memory of a process tree in a background thread until stopped."""

    def __init__(self, root: int, interval: float = SAMPLE_SECONDS) -> None:
        """Watch `root` and its descendants every `interval` seconds."""
        self.root = root
        self.interval = interval
        self.memory = TreeMemory()
        self._seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        """Take one sample now.

        Only processes already seen by the previous sample count: a JVM starts commands
        (Hadoop's file system shells out when its native library is absent) through vfork,
        and until the child's exec, /proc shows the parent's whole memory under its pid too.
        """
        total = 0.0
        tree = process_tree(self.root)
        seen, self._seen = self._seen, set(tree)
        for pid in tree:
            found = _memory_kb(pid) if pid in seen or pid == self.root else None
            if found is None:
                continue
            rss, hwm = found
            cpu = _cpu_seconds(pid)
            if cpu is not None:
                self.memory.cpu_by_pid[pid] = cpu
            total += rss / _KB
            # Read every time: spark-submit is a shell script that execs the JVM later.
            self.memory.kind_by_pid[pid] = _kind(pid)
            self.memory.peak_by_pid[pid] = max(self.memory.peak_by_pid.get(pid, 0.0), hwm / _KB)
        self.memory.peak_sum = max(self.memory.peak_sum, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


@dataclass
class Measured:
    """One measured run of a command."""

    command: list[str]
    returncode: int
    wall: float
    """Seconds from the start of the process to its exit."""
    stdout: str
    stderr: str
    memory: TreeMemory
    own_maxrss: float
    """The direct child's peak RSS from wait4 (MB): itself and the descendants it reaped."""

    def check(self) -> Measured:
        """Self, or raise with the end of stderr when the command failed."""
        if self.returncode != 0:
            msg = (
                f"{' '.join(self.command[:6])} ... exited {self.returncode}:\n{self.stderr[-3000:]}"
            )
            raise RuntimeError(msg)
        return self


class Running:
    """A started command whose memory is being sampled; `finish` waits for it."""

    def __init__(
        self,
        command: Sequence[str],
        work: Path,
        name: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Start `command` with stdout and stderr in ``work/<name>.out|.err``."""
        self.command = list(command)
        self.out_path, self.err_path = work / f"{name}.out", work / f"{name}.err"
        self._out, self._err = self.out_path.open("wb"), self.err_path.open("wb")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(  # noqa: S603 - our own commands
            self.command,
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
        )
        self.sampler = MemorySampler(self.process.pid).__enter__()

    @property
    def pid(self) -> int:
        """The process id of the command."""
        return self.process.pid

    def alive(self) -> bool:
        """True while the command runs (it is not reaped here: `finish` reads its rusage)."""
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.process.pid, flags) is None

    def stop(self, grace: float = 60.0) -> None:
        """SIGTERM the command (our own child, by pid); SIGKILL its tree after `grace` s."""
        if not self.alive():
            return
        os.kill(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.alive():
            for pid in reversed(process_tree(self.process.pid)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def finish(self, timeout: float | None = None) -> Measured:
        """Wait for the command (killing it after `timeout` seconds) and return the figures."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.alive():
            if deadline is not None and time.monotonic() > deadline:
                self.stop(grace=10.0)
                break
            time.sleep(0.05)
        self.sampler.sample()
        _, status, usage = os.wait4(self.process.pid, 0)
        wall = time.perf_counter() - self.started
        self.sampler.__exit__()
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self._out.close()
        self._err.close()
        return Measured(
            command=self.command,
            returncode=self.process.returncode,
            wall=wall,
            stdout=self.out_path.read_text(errors="replace"),
            stderr=self.err_path.read_text(errors="replace"),
            memory=self.sampler.memory,
            own_maxrss=usage.ru_maxrss / _KB,
        )


def run(
    command: Sequence[str],
    work: Path,
    name: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    while_running: Callable[[Running], None] | None = None,
) -> Measured:
    """Run `command` to its end and measure it (see `Running`)."""
    running = Running(command, work, name, env=env, cwd=cwd)
    if while_running is not None:
        while_running(running)
    return running.finish(timeout)


def rss_by_kind(root: int) -> dict[str, float]:
    """Resident memory now (MB) of `root`'s process tree, summed per kind (java, python,
    other): one point of a memory-over-time series."""
    totals = {"java": 0.0, "python": 0.0, "other": 0.0}
    for pid in process_tree(root):
        found = _memory_kb(pid)
        if found is not None:
            totals[_kind(pid)] += found[0] / _KB
    return totals


def load_average() -> float:
    """The 1-minute load average now."""
    return os.getloadavg()[0]
