"""``--workers N``: N processes share one replay, each with its own producer and position.

One Python process validates and produces on one core; more cores need more processes. The
source is shared out (`plan_shares`): with at least `FILES_PER_WORKER` files per worker each
worker takes whole files, dealt by size so that the shares are about equal; with fewer files
every worker reads every file and takes every N-th line. Each worker is a replay of its own
(`replay.ShareReplay` in a child process): its own transactional id and its own resume
position in the state topic, so a worker killed at any point costs only its open transaction,
and ``--resume`` continues every share where it was committed. A worker that fails (a file it
cannot read, a delivery refused) ends alone: the others finish their shares.

The parent starts the workers, waits until each has its producer ready and its first rows
read, then starts them together on one schedule: with ``--speedup`` the same start and origin
in event time, with ``--rate`` each a part of the rate in proportion to its share (the rate is
the total). It shows one progress display and returns one summary, and passes a first Ctrl+C
or SIGTERM on as a stop request (a second one kills the workers). A worker notices when the
parent is gone and stops as if asked to.

Within a share a device's events keep their order; across workers they do not when the
replay runs unpaced (``--max``), and keep it to within the pacing's drift when it is paced.

The workers are forked, not spawned: a fork starts at once, without a second interpreter's
imports, and the parent holds no Kafka client (no librdkafka thread) when it forks.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any

from hhar_stream.errors import HharError
from hhar_stream.settings import Settings

from .progress import ProgressReporter, ReplayStats, combine

logger = logging.getLogger(__name__)

FILES_PER_WORKER = 4
"""Fewer files than this per worker: every worker takes every N-th line of every file."""
_PROGRESS_EVERY = 0.2
_JOIN_TIMEOUT = 30.0


@dataclass(frozen=True)
class Share:
    """The part of a source one worker replays: some of its files, every `stride`-th line."""

    files: tuple[int, ...]
    """Indices of the source's files."""
    stride: int = 1
    offset: int = 0
    """The share's lines are ``offset + 1``, ``offset + 1 + stride``... of each file."""
    worker: int = 0
    workers: int = 1
    rate_fraction: float = 1.0
    """This share's part of the rows, and so of ``--rate``."""
    limit: int | None = None
    """This share's part of ``--limit`` (the limit is the total)."""

    @property
    def suffix(self) -> str:
        """What the worker adds to the replay's id (its transactional id, its state key)."""
        return "" if self.workers == 1 else f".worker-{self.worker + 1}-of-{self.workers}"

    @property
    def label(self) -> str:
        """How the worker's log lines start."""
        return "" if self.workers == 1 else f"worker {self.worker + 1}/{self.workers}: "


def plan_shares(sizes: Sequence[int], workers: int, limit: int | None = None) -> list[Share]:
    """Share out a source's files (their sizes in bytes, in name order) among `workers`, and
    the rows of `limit` in proportion to the shares."""
    count = len(sizes)
    if workers == 1:
        return [Share(tuple(range(count)), limit=limit)]
    if count < FILES_PER_WORKER * workers:
        shares = [
            Share(
                tuple(range(count)),
                stride=workers,
                offset=worker,
                worker=worker,
                workers=workers,
                rate_fraction=1 / workers,
            )
            for worker in range(workers)
        ]
    else:
        loads = [0] * workers
        dealt: list[list[int]] = [[] for _ in range(workers)]
        for number in sorted(range(count), key=lambda number: -sizes[number]):
            lightest = loads.index(min(loads))
            dealt[lightest].append(number)
            loads[lightest] += sizes[number]
        total = sum(loads)
        shares = [
            Share(
                tuple(sorted(files)),
                worker=worker,
                workers=workers,
                rate_fraction=loads[worker] / total if total else 1 / workers,
            )
            for worker, files in enumerate(dealt)
        ]
    if limit is None:
        return shares
    parts = [int(limit * share.rate_fraction) for share in shares]
    for worker in range(limit - sum(parts)):  # what the rounding left, one each from the first
        parts[worker % workers] += 1
    return [replace(share, limit=part) for share, part in zip(shares, parts, strict=True)]


RunShare = Callable[
    [Share, "ParentLink | None", threading.Event, "ProgressReporter | None"], ReplayStats
]
"""Replays one share in this process: ``(share, link, stop, progress) -> summary``."""


class ParentLink:
    """A worker's side of its pipe to the parent: the common start, progress, stop requests.

    It is the worker's progress reporter: each update (every 0.2 s) goes to the parent, and
    reads the parent's stop request, if any.
    """

    def __init__(self, connection: Connection, stop: threading.Event) -> None:
        """Talk to the parent over `connection`; set `stop` when it asks or is gone."""
        self._connection = connection
        self._stop = stop
        self._parent = os.getppid()

    def ready(self, first_key: int | None) -> tuple[float | None, int | None]:
        """Say the worker is ready (`first_key`: its first event's time), then wait for the
        parent's start: the schedule's start (monotonic clock) and origin (event time)."""
        self._send(("ready", first_key))
        while not self._stop.is_set():
            if not self._connection.poll(0.1):
                self._check_parent()
                continue
            message = self._receive()
            if message and message[0] == "go":
                return message[1], message[2]
        return None, None

    def update(self, stats: ReplayStats) -> None:
        """Send the figures; take in a stop request."""
        self._send(("stats", asdict(stats)))
        while not self._stop.is_set() and self._connection.poll():
            self._receive()
        self._check_parent()

    def close(self, stats: ReplayStats) -> None:
        """Send the final figures."""
        self._send(("stats", asdict(stats)))

    def done(self, error: str | None) -> None:
        """Tell the parent the worker ended (and why, if it failed)."""
        self._send(("done", error))

    def _receive(self) -> tuple[Any, ...] | None:
        try:
            message: tuple[Any, ...] = self._connection.recv()
        except (EOFError, OSError):
            self._stop.set()
            return None
        if message[0] == "stop":
            self._stop.set()
        return message

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._connection.send(message)
        except OSError:  # the parent is gone
            self._stop.set()

    def _check_parent(self) -> None:
        if os.getppid() != self._parent:
            self._stop.set()


@dataclass
class _Worker:
    """The parent's view of one worker."""

    share: Share
    process: multiprocessing.process.BaseProcess
    connection: Connection
    stats: ReplayStats
    first_key: int | None = None
    ready: bool = False
    done: bool = False
    """It said it ended."""
    connected: bool = True
    """Its end of the pipe is open."""
    ended: bool = False
    """Its process exited."""
    errors: list[str] = field(default_factory=list)


def run_workers(
    settings: Settings,
    shares: Sequence[Share],
    run_share: RunShare,
    stop: threading.Event,
    progress: ProgressReporter | None,
) -> ReplayStats:
    """Replay each share in a worker process; one progress display, one summary.

    Returns:
        The workers' figures combined; ``errors`` names each worker that failed or was killed.
    """
    context = multiprocessing.get_context("fork")
    workers: list[_Worker] = []
    try:
        for share in shares:
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_work, args=(run_share, share, theirs), name=f"hhar-produce{share.suffix}"
            )
            process.start()
            theirs.close()
            workers.append(
                _Worker(
                    share,
                    process,
                    ours,
                    ReplayStats(topic=settings.topic, dead_letter_topic=settings.dead_letter_topic),
                )
            )
        return _Supervisor(workers, stop, progress).run()
    except BaseException:
        for worker in workers:
            if worker.process.is_alive():
                worker.process.kill()  # a second Ctrl+C: their open transactions are aborted
        raise
    finally:
        for worker in workers:
            worker.process.join(_JOIN_TIMEOUT)
            worker.connection.close()


class _Supervisor:
    """The parent's loop: messages and exits of the workers, the start, stops and progress."""

    def __init__(
        self, workers: list[_Worker], stop: threading.Event, progress: ProgressReporter | None
    ) -> None:
        self.workers = workers
        self.stop = stop
        self.progress = progress
        self.start: tuple[float, int | None] | None = None
        self.started = time.monotonic()
        self.stop_sent = False

    def run(self) -> ReplayStats:
        next_progress = time.monotonic()
        try:
            while not all(worker.ended for worker in self.workers):
                waiting: list[Connection | int] = [
                    worker.connection for worker in self.workers if worker.connected
                ]
                waiting += [worker.process.sentinel for worker in self.workers if not worker.ended]
                wait(waiting, timeout=_PROGRESS_EVERY)
                for worker in self.workers:
                    if not worker.ended:
                        self._serve(worker)
                self._start_when_ready()
                if self.stop.is_set() and not self.stop_sent:
                    self.stop_sent = True
                    self._tell(("stop",))
                now = time.monotonic()
                if self.progress is not None and now >= next_progress:
                    self.progress.update(self._combined())
                    next_progress = now + _PROGRESS_EVERY
        finally:
            summary = self._combined()
            if self.progress is not None:
                self.progress.close(summary)
        return summary

    def _combined(self) -> ReplayStats:
        summary = combine(
            [worker.stats for worker in self.workers], time.monotonic() - self.started
        )
        summary.errors = [
            f"{worker.share.label}{error}" for worker in self.workers for error in worker.errors
        ]
        return summary

    def _serve(self, worker: _Worker) -> None:
        """Read what the worker sent; notice when it ended."""
        try:
            while worker.connected and worker.connection.poll():
                self._handle(worker, worker.connection.recv())
        except (EOFError, OSError):
            worker.connected = False
        if worker.process.is_alive():
            return
        worker.process.join()
        worker.ended = True
        if not worker.done:
            code = worker.process.exitcode or 0
            how = (
                f"was killed by {signal.Signals(-code).name}"
                if code < 0
                else f"exited with code {code}"
            )
            error = (
                f"{how} before it finished: run again with --resume to replay the rest of its share"
            )
            worker.errors.append(error)
            logger.error("%s%s", worker.share.label, error)

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready, worker.first_key = True, message[1]
            if self.start is not None:
                self._tell(("go", *self.start), [worker])
        elif kind == "stats":
            figures = message[1]
            worker.stats = ReplayStats(**figures)
        elif kind == "done":
            worker.done = True
            if message[1] is not None:
                worker.errors.append(message[1])
                logger.error("%s%s (the other workers go on)", worker.share.label, message[1])

    def _start_when_ready(self) -> None:
        """Start every worker at once when all that are still running are ready."""
        if self.start is not None or not all(
            worker.ready or worker.done or worker.ended for worker in self.workers
        ):
            return
        keys = [worker.first_key for worker in self.workers if worker.first_key is not None]
        self.start = (time.monotonic(), min(keys) if keys else None)
        self.started = self.start[0]
        self._tell(("go", *self.start), [worker for worker in self.workers if worker.ready])

    def _tell(self, message: tuple[Any, ...], workers: list[_Worker] | None = None) -> None:
        for worker in self.workers if workers is None else workers:
            if worker.ended:
                continue
            try:
                worker.connection.send(message)
            except OSError:
                pass  # it is ending; its sentinel says so


def _work(run_share: RunShare, share: Share, connection: Connection) -> None:
    """A worker process: replay the share, then say how it ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the parent, which decides
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    for handler in logging.getLogger().handlers:
        handler.addFilter(_Labelled(share.label))
    link = ParentLink(connection, stop)
    error = None
    try:
        run_share(share, link, stop, link)
    except HharError as failure:
        error = str(failure)
    except Exception as failure:  # noqa: BLE001 - reported to the parent as one line
        logger.debug("worker failed", exc_info=True)
        error = f"unexpected {type(failure).__name__}: {failure}"
    link.done(error)
    connection.close()


class _Labelled(logging.Filter):
    """Starts a worker's log lines with its label (``worker 2/4: ``)."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self._label = label

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = f"{self._label}{record.msg}"
        return True
