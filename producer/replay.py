"""`replay`: read a source, validate every row, pace it and deliver it to Kafka exactly once.

The steps, each its own module: `sources` reads the rows in blocks, validated, in merged or file
order; `routing` decides where each row goes (events, dead letter, or too far ahead of the
clock), without I/O; `pacing` holds the replay to its schedule; `delivery.Sender` produces and
commits the transactions. This module runs them for one share of the source (`ShareReplay`)
and, with ``workers`` > 1, lets `workers` run one share per process.

A valid row becomes one event per virtual device on the events topic: the line as read (or
rewritten when its times move), key ``Device``, record timestamp ``Arrival_Time``, one header
``schema_version`` (and ``run_id`` with ``--loop``). An invalid row goes with its original bytes,
the reason and its source file and line to the dead-letter topic. Every ``commit_interval``
seconds the transaction is committed together with the share's position (lines consumed per
file), which is what ``--resume`` continues from. Events name no source line: a row is known by
its fields (``User``, ``Device``, ``Index``, ``Arrival_Time``) and the value is the line itself.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException

from hhar_stream import kafka_client
from hhar_stream.dataset.check import describe_source
from hhar_stream.errors import BrokerError, InputDataError
from hhar_stream.settings import SCHEMA_VERSION, Settings

from .delivery import Sender, TransactionFailedError, load_positions, replay_identity
from .pacing import Pacer
from .progress import ProgressReporter, ReplayStats
from .routing import (
    HEADER_SCHEMA_VERSION,
    MAX_AHEAD_MS,
    DeadLetter,
    Headers,
    Routed,
    Router,
    reason_kind,
)
from .sources import FilePosition, RowBlock, SourceFile, read_blocks, resolve_source
from .workers import ParentLink, Share, plan_shares, run_workers

logger = logging.getLogger(__name__)

HEADER_RUN_ID = "run_id"
POSITION_VERSION = 1
_CHECK_EVERY = 4096
"""Events between checks of the clock (commit, progress, stop requests) when the replay does not
wait, about 15 ms at full speed: as many rows divided by the fan-out (`--devices`)."""
_PROGRESS_EVERY = 0.2


@dataclass(slots=True)
class _Counters:
    """Rows read (with those of resumed runs) and invalid rows (this run) so far.

    Every valid row becomes ``devices`` events and every invalid one a dead letter, so these
    two numbers say what was sent.
    """

    rows: int = 0
    invalid: int = 0


@dataclass
class _Position:
    """Where a share's replay is: pass, time shift and lines consumed per file."""

    pass_number: int
    shift_ms: int
    pass_first_ms: int | None
    lines: list[int]
    keys: list[int]
    rows: int
    done: bool = False


@dataclass(frozen=True)
class _Plan:
    """What every share of one replay has in common."""

    source: str
    files: list[SourceFile]
    replay_id: str
    shares: list[Share]
    stored: dict[str, Any]
    """The committed positions by share id (empty without ``--resume``)."""


def replay(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    progress: ProgressReporter | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], float] = time.time,
) -> ReplayStats:
    """Replay ``settings.source`` into ``settings.topic`` as ``hhar produce`` does.

    Args:
        settings: source, topic, pacing, extras, workers and Kafka settings.
        stop: set it to stop reading; what was read is committed before returning.
        progress: shown every 0.2 s and at the end.
        clock, sleep: monotonic time and waiting (injected for tests).
        wall_clock: epoch seconds, for ``rebase_now`` and the broker's horizon.

    Returns:
        The summary; ``failed`` > 0 (with ``failure``) when a transaction could not be
        committed; with workers, ``errors`` says what ended any of them early.

    Raises:
        InputDataError: for a missing or empty source, an unreadable file, or with
            ``fail_on_invalid`` the first invalid row (after committing the rows before it);
            with workers only when no worker could start.
        BrokerError: when Kafka cannot be reached or used.
    """
    stop = stop or threading.Event()
    try:
        plan = _plan(settings)
    except KafkaException as error:
        msg = f"Kafka at {settings.bootstrap} failed: {error.args[0].str()}"
        raise BrokerError(msg) from None
    run_share = functools.partial(
        _run_share, settings, plan, clock=clock, sleep=sleep, wall_clock=wall_clock
    )
    if len(plan.shares) == 1:
        return run_share(plan.shares[0], None, stop, progress)
    stats = run_workers(settings, plan.shares, run_share, stop, progress)
    if stats.rows_read == 0 and stats.resumed_rows == 0 and not stats.errors:
        msg = f"the source {plan.source} holds no rows: its data files are empty"
        raise InputDataError(msg)
    return stats


def _plan(settings: Settings) -> _Plan:
    """Resolve the source, check the broker and topics, share the files among the workers and,
    with ``resume``, read where each share stopped."""
    source = settings.source if settings.source is not None else settings.data
    if settings.source is None and not settings.data.exists():
        msg = (
            f"no --source given and the data folder {settings.data} does not exist: "
            f"fetch the real set with `hhar data fetch`, generate one with `hhar data synth` "
            f"or pass --source"
        )
        raise InputDataError(msg)
    files = resolve_source(source)
    replay_id = replay_identity(
        settings.topic,
        [file.name for file in files],
        os.path.abspath(os.path.expanduser(source)),
        settings.order,
    )
    kafka_client.check_broker(settings)
    logger.info("replaying %s", describe_source(source))  # the first line of a replay
    kafka_client.ensure_topics(settings, kafka_client.topic_specs(settings))
    shares = plan_shares(
        [file.path.stat().st_size for file in files], settings.workers, settings.limit
    )
    stored: dict[str, Any] = {}
    if settings.resume:
        stored = load_positions(settings, replay_id)
        _check_layout(stored, replay_id, settings.workers)
    return _Plan(str(source), files, replay_id, shares, stored)


def _check_layout(stored: dict[str, Any], replay_id: str, workers: int) -> None:
    """Refuse to resume with another number of workers than the replay last ran with: their
    shares and positions differ."""
    if not stored:
        logger.warning("no stored position for this topic and source: replaying from the beginning")
        return
    latest = max(stored.values(), key=lambda record: record.get("written_ms", 0))
    if latest.get("workers", 1) != workers:
        msg = (
            f"the stopped replay of this topic and source ran with --workers "
            f"{latest.get('workers', 1)}: resume it with as many, or replay without --resume "
            f"to start again"
        )
        raise InputDataError(msg)


def _run_share(
    settings: Settings,
    plan: _Plan,
    share: Share,
    link: ParentLink | None,
    stop: threading.Event,
    progress: ProgressReporter | None,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    wall_clock: Callable[[], float],
) -> ReplayStats:
    """Replay one share in this process (`replay`'s, or a worker's)."""
    replay_id = plan.replay_id + share.suffix
    return ShareReplay(
        settings,
        [plan.files[number] for number in share.files],
        share,
        replay_id,
        plan.stored.get(replay_id),
        stop,
        progress,
        link,
        clock,
        sleep,
        wall_clock,
    ).run()


def _pieces(block: RowBlock, rows: int) -> Iterator[RowBlock]:
    """`block` in pieces of `rows` rows (the last one shorter)."""
    return (block.slice(start, start + rows) for start in range(0, len(block), rows))


class ShareReplay:
    """The replay of one share of a source: its rows, its producer, its position and figures."""

    def __init__(
        self,
        settings: Settings,
        files: Sequence[SourceFile],
        share: Share,
        replay_id: str,
        stored: dict[str, Any] | None,
        stop: threading.Event,
        progress: ProgressReporter | None,
        link: ParentLink | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        wall_clock: Callable[[], float],
    ) -> None:
        """The replay of `files` (the share's) as `replay_id`, from `stored` if resumed."""
        self.settings = settings
        self.files = list(files)
        self.share = share
        self.replay_id = replay_id
        self.stop = stop
        self.progress = progress
        self.link = link
        self.clock = clock
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.stats = ReplayStats(topic=settings.topic, dead_letter_topic=settings.dead_letter_topic)
        self.router = Router(settings.devices, settings.fail_on_invalid)
        self.pacer: Pacer | None = None
        self.counters = _Counters()
        self.committed = _Counters()
        self.letter_kinds: Counter[str] = Counter()
        """Dead letters since the last commit, by the kind of their reason."""
        self.committed_kinds: Counter[str] = Counter()
        count = len(self.files)
        self.position = _Position(0, 0, None, [0] * count, [0] * count, 0)
        if stored is not None:
            self._resume(stored)
        self.run_tag = f"{int(wall_clock() * 1000):x}"
        self.started = self.next_commit = self.next_progress = 0.0
        self.wall_offset = 0.0
        """Epoch seconds minus monotonic seconds: turns a due time into a timestamp."""
        self.stop_reason: str | None = None
        self.input_error: str | None = None
        """Why the input ends the replay (raised after committing what came before)."""

    def _resume(self, stored: dict[str, Any]) -> None:
        names = [file.name for file in self.files]
        if stored.get("version") != POSITION_VERSION or stored.get("files") != names:
            msg = (
                "the stored position belongs to other files than this source's: "
                "replay without --resume to start again"
            )
            raise InputDataError(msg)
        self.position = _Position(
            pass_number=stored["pass"],
            shift_ms=stored["shift_ms"],
            pass_first_ms=stored["pass_first_ms"],
            lines=stored["lines"],
            keys=stored["keys"],
            rows=stored["rows"],
            done=stored["done"],
        )
        self.stats.resumed_rows = self.position.rows
        self.counters.rows = self.committed.rows = self.position.rows
        logger.info(
            "resuming after %d rows (pass %d)%s",
            self.position.rows,
            self.position.pass_number + 1,
            ": the replay had ended" if stored["done"] else "",
        )

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> ReplayStats:
        """Replay the share to its end, a limit, a stop request or a failure.

        Raises:
            InputDataError: see `replay`.
            BrokerError: when Kafka cannot be reached or used.
        """
        sender: Sender | None = None
        try:
            self.sender = sender = Sender(self.settings, self.replay_id, self.clock)
            sender.start()
            self._replay_all()
        except KafkaException as error:
            said = error.args[0].str() if sender is None else sender.explain(error.args[0])
            msg = f"Kafka at {self.settings.bootstrap} failed: {said}"
            raise BrokerError(msg) from None
        finally:
            if self.progress is not None:
                self.progress.close(self.stats)
        if self.input_error is not None:
            raise InputDataError(self.input_error)
        return self.stats

    def _replay_all(self) -> None:
        settings = self.settings
        position = self.position
        if position.done and not settings.loop:
            if self.link is not None:
                self.link.ready(None)
            return
        if position.done:
            self._next_pass()
        blocks = self._scheduled(self._read_pass())
        self.started = self.clock()
        self.wall_offset = self.wall_clock() - self.started
        self.next_commit = self.started + settings.commit_interval
        self.next_progress = self.started
        try:
            while True:
                try:
                    self.stop_reason = self._replay_pass(blocks)
                except InputDataError as error:  # a file that cannot be read: commit the rest
                    self.input_error, self.stop_reason = str(error), "unreadable file"
                if self.stop_reason is not None:
                    break
                if self.counters.rows == 0:
                    if self.link is None:
                        self.input_error = (
                            f"the source {settings.source or settings.data} holds no rows: "
                            f"its data files are empty"
                        )
                        self.stop_reason = "empty source"
                    break
                self.stats.passes += 1
                if not settings.loop:
                    position.done = True
                    break
                if position.pass_first_ms is None:
                    self.input_error = "nothing to loop over: the source holds no valid row"
                    self.stop_reason = "invalid row"
                    break
                self._next_pass()
                blocks = self._read_pass()
            self._commit()
        except TransactionFailedError as error:
            self.stats.failure = str(error)
            self.stop_reason = "failure"
        except BaseException:
            # A second Ctrl+C or an unexpected error: leave the open transaction to be aborted.
            self.stop_reason = "abort"
            raise
        finally:
            self.stats.stopped_by = self.stop_reason or "end"
            self.stats.elapsed = self.clock() - self.started
            self._update_stats()

    def _read_pass(self) -> Iterator[RowBlock]:
        starts = [
            FilePosition(*pair)
            for pair in zip(self.position.lines, self.position.keys, strict=True)
        ]
        return read_blocks(
            self.files,
            self.settings.order,
            starts,
            stride=self.share.stride,
            offset=self.share.offset,
        )

    def _scheduled(self, blocks: Iterator[RowBlock]) -> Iterator[RowBlock]:
        """Set up the pacing (the schedule the workers share, through the parent), before the
        first row is sent; the same blocks."""
        first = next(blocks, None)
        first_key = first.first_valid_key() if first is not None else None
        start, origin = self.link.ready(first_key) if self.link is not None else (None, None)
        settings = self.settings
        if settings.rate is not None:
            self.pacer = Pacer(
                rate=settings.rate * self.share.rate_fraction,
                clock=self.clock,
                sleep=self.sleep,
                start=start,
            )
        elif not settings.max_speed:
            shifted = None if origin is None else origin + self.position.shift_ms
            self.pacer = Pacer(
                speedup=settings.speedup or 1.0,
                max_gap=settings.max_gap,
                clock=self.clock,
                sleep=self.sleep,
                start=start,
                origin_ms=shifted,
            )
        return blocks if first is None else itertools.chain([first], blocks)

    def _next_pass(self) -> None:
        position = self.position
        last = max(position.keys)
        first = position.pass_first_ms if position.pass_first_ms is not None else last
        position.shift_ms += last - first + 1
        position.pass_number += 1
        position.pass_first_ms = None
        position.done = False
        position.lines = [0] * len(self.files)
        position.keys = [0] * len(self.files)

    def _headers(self) -> Headers:
        headers: Headers = [(HEADER_SCHEMA_VERSION, SCHEMA_VERSION)]
        if self.settings.loop:
            headers.append((HEADER_RUN_ID, f"{self.run_tag}.{self.position.pass_number}"))
        return headers

    def _replay_pass(self, blocks: Iterator[RowBlock]) -> str | None:
        """Send blocks until they end (None) or the replay must stop (the reason)."""
        limit = self.share.limit
        headers = self._headers()
        # Every row is `devices` events: check as often in events whatever the fan-out, so a
        # fleet's transactions commit on time (a broker aborts one older than its timeout).
        step = max(1, _CHECK_EVERY // self.router.devices)
        check_at = self.counters.rows + step
        for block in blocks:
            if limit is not None:
                if self.counters.rows >= limit:
                    return "limit"
                block = block.head(limit - self.counters.rows)
            if self.position.pass_first_ms is None:
                self.position.pass_first_ms = block.first_valid_key()
            pieces = (
                [block] if len(block) <= step or self.pacer is not None else _pieces(block, step)
            )
            for piece in pieces:
                if self.pacer is None:
                    reason = self._send_block(piece, headers)
                else:
                    reason = self._send_paced(piece, headers, self.pacer)
                if reason is not None:
                    return reason
                if self.counters.rows >= check_at:
                    check_at = self.counters.rows + step
                    if not self._housekeeping():
                        return self.stop_reason
        if limit is not None and self.counters.rows >= limit:
            return "limit"
        return None

    def _send_block(self, block: RowBlock, headers: Headers) -> str | None:
        """Route and send a whole block at once (``--max``)."""
        stamp = int(self.wall_clock() * 1000) if self.settings.rebase_now else None
        routed = self.router.route(
            block, self._horizon(), shift=self.position.shift_ms, stamp=stamp
        )
        self._send(routed, headers)
        sent = block.head(routed.rows)
        for file_no, place in sent.positions().items():
            self.position.lines[file_no], self.position.keys[file_no] = place.lines, place.key
        self.counters.rows += routed.rows
        self.counters.invalid += len(routed.letters)
        return self._stopped_by(routed.stop)

    def _send_paced(self, block: RowBlock, headers: Headers, pacer: Pacer) -> str | None:
        """Send a block row by row, each event when the pacer says it is due."""
        router, counters, position = self.router, self.counters, self.position
        shift, fanout, now = self.position.shift_ms, self.settings.devices, self.settings.rebase_now
        horizon = self._horizon()
        check_at = counters.rows + _CHECK_EVERY
        for row in block.rows():
            key, file_no, line_no, _, event, _ = row
            timestamp = key + shift
            if event is not None:
                if not pacer.wait(timestamp, fanout, self._housekeeping):
                    return self.stop_reason
                if now:
                    timestamp = int((pacer.last_due + self.wall_offset) * 1000)
                if timestamp > horizon:
                    horizon = self._horizon()
            routed = Routed()
            router.add(routed, row, timestamp, horizon)
            self._send(routed, headers)
            if routed.stop is not None:
                return self._stopped_by(routed.stop)
            position.lines[file_no], position.keys[file_no] = line_no, key
            counters.rows += 1
            counters.invalid += len(routed.letters)
            if counters.rows >= check_at:
                check_at = counters.rows + _CHECK_EVERY
                if not self._housekeeping():
                    return self.stop_reason
        return None

    def _send(self, routed: Routed, headers: Headers) -> None:
        topic = self.settings.topic
        self.sender.send_events(topic, routed.values, routed.keys, routed.timestamps, headers)
        for letter in routed.letters:
            value, letter_headers = letter.record(self.files[letter.file_no].name)
            self.sender.send(self.settings.dead_letter_topic, value, None, 0, letter_headers)
            self.letter_kinds[reason_kind(letter.reason)] += 1

    def _stopped_by(self, letter: DeadLetter | None) -> str | None:
        """The stop reason when an invalid row stops the replay (``fail_on_invalid``)."""
        if letter is None:
            return None
        name = self.files[letter.file_no].name
        self.input_error = f"invalid row at {name}:{letter.line_no}: {letter.reason}"
        return "invalid row"

    def _horizon(self) -> int:
        """The latest record timestamp the broker takes now (epoch ms, see `MAX_AHEAD_MS`)."""
        return int(self.wall_clock() * 1000) + MAX_AHEAD_MS

    # -- housekeeping: commits, progress, stop requests ----------------------------------------
    def _housekeeping(self) -> bool:
        """Serve the producer, commit and report when due; False when the replay must stop.

        Called every `_CHECK_EVERY` rows and while the pacer waits.
        """
        self.sender.serve()
        if self.stop.is_set():
            self.stop_reason = "signal"
            return False
        now = self.clock()
        if now >= self.next_commit:
            self._commit()
            self.next_commit = now + self.settings.commit_interval
        if now >= self.next_progress and self.progress is not None:
            self.stats.elapsed = now - self.started
            self._update_stats()
            self.progress.update(self.stats)
            self.next_progress = now + _PROGRESS_EVERY
        return True

    def _events(self, counters: _Counters) -> int:
        return (counters.rows - self.stats.resumed_rows - counters.invalid) * self.settings.devices

    def _update_stats(self) -> None:
        stats, counters, committed = self.stats, self.counters, self.committed
        stats.rows_read = counters.rows - stats.resumed_rows
        stats.invalid = counters.invalid
        stats.events_sent = self._events(counters)
        stats.delivered = self._events(committed)
        stats.dead_lettered = committed.invalid
        stats.dead_letters_by_reason = dict(self.committed_kinds)
        stats.send_errors = self.sender.delivery_errors.total()
        if self.pacer is not None:
            stats.drift = self.pacer.drift
            stats.max_drift = self.pacer.max_drift

    def _commit(self) -> None:
        """Commit the open transaction with the share's position, if it holds anything.

        Raises:
            TransactionFailedError: after counting what the transaction held as failed.
        """
        counters, committed, position = self.counters, self.committed, self.position
        if counters.rows == committed.rows and not position.done:
            return
        record = {
            "version": POSITION_VERSION,
            "files": [file.name for file in self.files],
            "order": self.settings.order,
            "workers": self.share.workers,
            "worker": self.share.worker,
            "written_ms": int(self.wall_clock() * 1000),
            "pass": position.pass_number,
            "shift_ms": position.shift_ms,
            "pass_first_ms": position.pass_first_ms,
            "rows": counters.rows,
            "lines": position.lines,
            "keys": position.keys,
            "done": position.done,
        }
        try:
            self.sender.commit(record)
        except TransactionFailedError:
            self.stats.failed = (self._events(counters) - self._events(committed)) + (
                counters.invalid - committed.invalid
            )
            raise
        committed.rows, committed.invalid = counters.rows, counters.invalid
        self.committed_kinds.update(self.letter_kinds)
        self.letter_kinds.clear()
        self.stats.transactions_committed += 1
