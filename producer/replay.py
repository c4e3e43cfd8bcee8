"""`replay`: read a source, validate every row, pace it and deliver it to Kafka exactly once.

The loop: rows come from `sources.read_rows` (validated, in merged or file order); a valid row
becomes one event per virtual device on the events topic (key ``Device``, record timestamp
``Arrival_Time``, headers naming the source file, line and schema version); an invalid row goes
with its original bytes and the reason to the dead-letter topic (a line longer than
`sources.MAX_LINE_BYTES` cut there, so that its dead letter fits in a Kafka message), and so
does a valid row whose record timestamp is further ahead of now than the broker takes. Every
``commit_interval`` seconds the transaction is committed together with the replay's position
(lines consumed per file), which is what ``--resume`` continues from.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException

from hhar_stream import kafka_client
from hhar_stream.errors import BrokerError, InputDataError
from hhar_stream.settings import SCHEMA_VERSION, Settings

from . import delivery
from .pacing import Pacer
from .sources import MAX_LINE_BYTES, FilePosition, Row, SourceFile, read_rows, resolve_source
from .transform import rewrite_event, virtual_devices

logger = logging.getLogger(__name__)

HEADER_SOURCE_FILE = "source_file"
HEADER_SOURCE_LINE = "source_line"
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_RUN_ID = "run_id"
HEADER_ERROR_REASON = "error_reason"
HEADER_TRUNCATED = "value_truncated"
"""``true`` on a dead letter that holds only the first `MAX_LINE_BYTES` of its line."""
HEADER_ORIGINAL_LENGTH = "original_length"
"""The length in bytes of a truncated dead letter's line."""

POSITION_VERSION = 1
_CHECK_EVERY = 4096
"""Rows between checks of the clock (commit, progress, stop requests): about 40 ms at full speed."""
_PROGRESS_EVERY = 0.2
_QUEUE_FULL_TIMEOUT = 60.0
_COMMIT_TIMEOUT = 60.0
_CALL_SLICE = 1.0
MAX_AHEAD_MS = 55 * 60_000
"""How far ahead of this machine's clock a record timestamp may be. Kafka 4 brokers refuse a
whole produce request holding one more than message.timestamp.after.max.ms (1 h by default)
ahead of their clock; 5 minutes less leaves room for the clocks to differ."""
_MAX_REASON = 4096
"""Characters of an error reason kept in a dead letter's header (a line with thousands of
unknown fields has a reason as long)."""
_ANY_PARTITION = -1
"""librdkafka's RD_KAFKA_PARTITION_UA: the partitioner picks the partition (by key)."""
_PURGED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})
_FENCED = frozenset({
    KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH,
})


@dataclass
class ReplayStats:
    """What a replay did so far; the last one is its summary."""

    topic: str
    dead_letter_topic: str
    rows_read: int = 0
    """Rows read in this run (valid and invalid)."""
    invalid: int = 0
    events_sent: int = 0
    """Events handed to the producer (valid rows times virtual devices)."""
    delivered: int = 0
    """Events in committed transactions."""
    dead_lettered: int = 0
    """Invalid rows in committed transactions."""
    failed: int = 0
    """Events and dead letters lost with a failed transaction."""
    passes: int = 0
    """Passes over the source completed (``--loop``)."""
    elapsed: float = 0.0
    drift: float = 0.0
    """How far behind its schedule the replay runs now, seconds."""
    max_drift: float = 0.0
    resumed_rows: int = 0
    """Rows that an earlier, resumed run had already replayed."""
    stopped_by: str = "end"
    """Why the replay ended: end, limit, signal, invalid row, empty source or failure."""
    failure: str | None = None
    """The delivery failure, when there was one."""

    @property
    def valid(self) -> int:
        """Rows that passed validation."""
        return self.rows_read - self.invalid

    @property
    def events_per_second(self) -> float:
        """Delivered events per second of the run."""
        return self.delivered / self.elapsed if self.elapsed > 0 else 0.0


class ProgressReporter(Protocol):
    """Where a replay shows its progress (a bar on a terminal, log lines otherwise)."""

    def update(self, stats: ReplayStats) -> None:
        """Show the current figures."""

    def close(self, stats: ReplayStats) -> None:
        """The replay ended."""


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
    """Where the replay is: pass, time shift and lines consumed per file."""

    pass_number: int
    shift_ms: int
    pass_first_ms: int | None
    lines: list[int]
    keys: list[int]
    rows: int
    done: bool = False


def _too_far_ahead(timestamp: int) -> str:
    """The dead-letter reason of a row whose record timestamp the broker would refuse."""
    when = dt.datetime.fromtimestamp(timestamp / 1000, tz=dt.UTC).isoformat(timespec="seconds")
    return (
        f"Arrival_Time {timestamp} ({when}) is in the future beyond the broker's limit: Kafka "
        f"refuses record timestamps more than message.timestamp.after.max.ms (1 h) ahead"
    )


class _DeliveryFailedError(Exception):
    """A transaction could not be committed; the message says why."""


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
        settings: source, topic, pacing, extras and Kafka settings.
        stop: set it to stop reading; what was read is committed before returning.
        progress: shown every 0.2 s and at the end.
        clock, sleep: monotonic time and waiting (injected for tests).
        wall_clock: epoch seconds, for ``rebase_now``.

    Returns:
        The summary; ``failed`` > 0 (with ``failure``) when a transaction could not be committed.

    Raises:
        InputDataError: for a missing or empty source, an unreadable file, or with
            ``fail_on_invalid`` the first invalid row (after committing the rows before it).
        BrokerError: when Kafka cannot be reached or used.
    """
    return _Replay(settings, stop or threading.Event(), progress, clock, sleep, wall_clock).run()


class _Replay:
    """One run of `replay`: the source, the producer, the position and the figures."""

    def __init__(
        self,
        settings: Settings,
        stop: threading.Event,
        progress: ProgressReporter | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        wall_clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        source = settings.source if settings.source is not None else settings.data
        if settings.source is None and not settings.data.exists():
            msg = (
                f"no --source given and the data folder {settings.data} does not exist: "
                f"generate one with `hhar data synth` or pass --source"
            )
            raise InputDataError(msg)
        self.source = source
        self.files: list[SourceFile] = resolve_source(source)
        self.replay_id = delivery.replay_identity(
            settings.topic, [file.name for file in self.files],
            os.path.abspath(os.path.expanduser(source)), settings.order,
        )
        self.stop = stop
        self.progress = progress
        self.clock = clock
        self.wall_clock = wall_clock
        self.stats = ReplayStats(topic=settings.topic, dead_letter_topic=settings.dead_letter_topic)
        self.pacer: Pacer | None = None
        if not settings.max_speed and settings.rate is not None:
            self.pacer = Pacer(rate=settings.rate, clock=clock, sleep=sleep)
        elif not settings.max_speed:
            self.pacer = Pacer(
                speedup=settings.speedup or 1.0, max_gap=settings.max_gap, clock=clock, sleep=sleep
            )
        self.delivery_errors: Counter[str] = Counter()
        self.counters = _Counters()
        self.committed = _Counters()
        count = len(self.files)
        self.position = _Position(0, 0, None, [0] * count, [0] * count, 0)
        self.run_tag = f"{int(wall_clock() * 1000):x}"
        self.device_names: dict[str, tuple[str, ...]] = {}
        self.rebase_ms: int | None = None
        self.started = self.next_commit = self.next_progress = 0.0
        self.stop_reason: str | None = None
        self.input_error: str | None = None
        """Why the input ends the replay (raised after committing what came before)."""

    # -- setup ---------------------------------------------------------------------------------
    def run(self) -> ReplayStats:
        try:
            self._run()
        except KafkaException as error:
            msg = f"Kafka at {self.settings.bootstrap} failed: {error.args[0].str()}"
            raise BrokerError(msg) from None
        finally:
            if self.progress is not None:
                self.progress.close(self.stats)
        if self.input_error is not None:
            raise InputDataError(self.input_error)
        return self.stats

    def _run(self) -> None:
        settings = self.settings
        kafka_client.check_broker(settings)
        kafka_client.ensure_topics(settings, kafka_client.topic_specs(settings))
        self.producer = delivery.transactional_producer(
            settings, self.replay_id, self._on_delivery_error
        )
        try:
            self._call(self.producer.init_transactions, _COMMIT_TIMEOUT)
        except KafkaException as error:
            msg = f"cannot start a Kafka transaction: {error.args[0].str()}"
            raise BrokerError(msg) from None
        if settings.resume:
            self._resume()
        self.started = self.clock()
        try:
            self._replay_all()
        finally:
            self.stats.elapsed = self.clock() - self.started
            self._update_stats()

    def _resume(self) -> None:
        stored = delivery.load_position(self.settings, self.replay_id)
        if stored is None:
            logger.warning(
                "no stored position for this topic and source: replaying from the beginning"
            )
            return
        names = [file.name for file in self.files]
        if stored.get("version") != POSITION_VERSION or stored.get("files") != names:
            msg = (
                "the stored position belongs to other files than this source's: "
                "replay without --resume to start again"
            )
            raise InputDataError(msg)
        self.position = _Position(
            pass_number=stored["pass"], shift_ms=stored["shift_ms"],
            pass_first_ms=stored["pass_first_ms"], lines=stored["lines"], keys=stored["keys"],
            rows=stored["rows"], done=stored["done"],
        )
        self.stats.resumed_rows = self.position.rows
        self.counters.rows = self.committed.rows = self.position.rows
        logger.info(
            "resuming after %d rows (pass %d)%s", self.position.rows,
            self.position.pass_number + 1, ": the replay had ended" if stored["done"] else "",
        )

    # -- the replay ----------------------------------------------------------------------------
    def _replay_all(self) -> None:
        settings = self.settings
        position = self.position
        if position.done:
            if not settings.loop:
                return
            self._next_pass()
        self.next_commit = self.started + settings.commit_interval
        self.next_progress = self.started
        self.producer.begin_transaction()
        try:
            while True:
                starts = [FilePosition(*pair) for pair in zip(position.lines, position.keys,
                                                              strict=True)]
                rows = read_rows(self.files, settings.order, starts)
                self.stop_reason = self._replay_pass(rows)
                if self.stop_reason is not None:
                    break
                if self.counters.rows == 0:
                    self.input_error = (
                        f"the source {self.source} holds no rows: its data files are empty"
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
            self._commit()
        except _DeliveryFailedError as error:
            self.stats.failure = str(error)
            self.stop_reason = "failure"
        except BaseException:
            # A second Ctrl+C or an unexpected error: leave the open transaction to be aborted.
            self.stop_reason = "abort"
            raise
        finally:
            self.stats.stopped_by = self.stop_reason or "end"

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

    def _replay_pass(self, rows: Iterator[Row]) -> str | None:
        """Send rows until they end (None) or the replay must stop (the reason)."""
        settings = self.settings
        position = self.position
        produce = self.producer.produce
        topic = settings.topic
        file_headers = [(HEADER_SOURCE_FILE, file.name) for file in self.files]
        schema_header = (HEADER_SCHEMA_VERSION, SCHEMA_VERSION)
        pass_headers: tuple[tuple[str, str], ...] = ()
        if settings.loop:
            pass_headers = ((HEADER_RUN_ID, f"{self.run_tag}.{position.pass_number}"),)
        lines, keys = position.lines, position.keys
        counters = self.counters
        pacer = self.pacer
        on_idle = self._housekeeping
        fanout = settings.devices
        shift = position.shift_ms + (self.rebase_ms or 0)
        plain = shift == 0 and fanout == 1
        first_event = True
        limit = settings.limit if settings.limit is not None else float("inf")
        read = counters.rows  # a local in the loop; counters.rows is set before any callback
        check_at = min(read + _CHECK_EVERY, limit)
        if read >= limit:
            return "limit"
        horizon = self._horizon()
        try:
            for key, file_no, line_no, payload, event, reason in rows:
                if event is not None:
                    if first_event:
                        first_event = False
                        if position.pass_first_ms is None:
                            position.pass_first_ms = key
                        if settings.rebase_now and self.rebase_ms is None:
                            self.rebase_ms = int(self.wall_clock() * 1000) - key - position.shift_ms
                        shift = position.shift_ms + (self.rebase_ms or 0)
                        plain = shift == 0 and fanout == 1
                    timestamp = key + shift
                    if pacer is not None:
                        counters.rows = read
                        if not pacer.wait(timestamp, fanout, on_idle):
                            return self.stop_reason
                    if timestamp > horizon:
                        horizon = self._horizon()
                        if timestamp > horizon:
                            event, reason = None, _too_far_ahead(timestamp)
                if event is None:
                    if settings.fail_on_invalid:
                        name = self.files[file_no].name
                        self.input_error = f"invalid row at {name}:{line_no}: {reason}"
                        return "invalid row"
                    self._dead_letter(payload, reason, [
                        file_headers[file_no], (HEADER_SOURCE_LINE, str(line_no)), schema_header,
                    ])
                    counters.invalid += 1
                else:
                    headers = [file_headers[file_no], (HEADER_SOURCE_LINE, str(line_no)),
                               schema_header, *pass_headers]
                    if plain:
                        try:
                            # Positional: (topic, value, key, partition, on_delivery, callback,
                            # timestamp, headers); parsing keywords costs a sixth of the call.
                            produce(topic, payload, event["device"], _ANY_PARTITION, None, None,
                                    timestamp, headers)
                        except BufferError:
                            self._send(topic, payload, event["device"], timestamp, headers)
                    else:
                        devices = self.device_names.get(event["device"])
                        if devices is None:
                            devices = virtual_devices(event["device"], fanout)
                            self.device_names[event["device"]] = devices
                        values = rewrite_event(payload, event, shift, devices)
                        for device, value in zip(devices, values, strict=True):
                            self._send(topic, value, device, timestamp, headers)
                lines[file_no] = line_no
                keys[file_no] = key
                read += 1
                if read >= check_at:
                    counters.rows = read
                    if not self._housekeeping():
                        return self.stop_reason
                    if read >= limit:
                        return "limit"
                    check_at = min(read + _CHECK_EVERY, limit)
        finally:
            counters.rows = read
        return None

    def _horizon(self) -> int:
        """The latest record timestamp the broker takes now (epoch ms, see `MAX_AHEAD_MS`)."""
        return int(self.wall_clock() * 1000) + MAX_AHEAD_MS

    def _dead_letter(self, line: bytes, reason: str, headers: list[tuple[str, str]]) -> None:
        """Send an invalid row's line and reason to the dead-letter topic, cut to fit."""
        headers = [(HEADER_ERROR_REASON, reason[:_MAX_REASON]), *headers]
        if len(line) > MAX_LINE_BYTES:
            headers += [(HEADER_TRUNCATED, "true"), (HEADER_ORIGINAL_LENGTH, str(len(line)))]
            line = line[:MAX_LINE_BYTES]
        self._send(self.settings.dead_letter_topic, line, None, None, headers)

    def _send(
        self, topic: str, value: bytes, key: str | None, timestamp: int | None,
        headers: list[tuple[str, str]],
    ) -> None:
        """Produce one record, serving the queue while it is full."""
        deadline = None
        while True:
            try:
                self.producer.produce(topic, value, key, timestamp=timestamp or 0, headers=headers)
                return
            except BufferError:
                now = self.clock()
                deadline = deadline or now + _QUEUE_FULL_TIMEOUT
                if now >= deadline:
                    msg = (
                        f"the producer's queue stayed full for {_QUEUE_FULL_TIMEOUT:.0f} s: "
                        f"Kafka at {self.settings.bootstrap} does not take the events"
                    )
                    raise BrokerError(msg) from None
                self.producer.poll(0.1)

    # -- housekeeping: commits, progress, stop requests ----------------------------------------
    def _housekeeping(self) -> bool:
        """Serve the producer, commit and report when due; False when the replay must stop.

        Called every few thousand rows, and while the pacer waits.
        """
        self.producer.poll(0)
        if self.stop.is_set():
            self.stop_reason = "signal"
            return False
        now = self.clock()
        if now >= self.next_commit:
            if self._commit():
                self.producer.begin_transaction()
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
        if self.pacer is not None:
            stats.drift = self.pacer.drift
            stats.max_drift = self.pacer.max_drift

    def _commit(self) -> bool:
        """Commit the open transaction with the replay's position.

        Returns:
            False when there was nothing to commit (the transaction stays open).
        """
        counters, committed, position = self.counters, self.committed, self.position
        if counters.rows == committed.rows and not position.done:
            return False
        record = {
            "version": POSITION_VERSION,
            "files": [file.name for file in self.files],
            "order": self.settings.order,
            "pass": position.pass_number,
            "shift_ms": position.shift_ms,
            "pass_first_ms": position.pass_first_ms,
            "rows": counters.rows,
            "lines": position.lines,
            "keys": position.keys,
            "done": position.done,
        }
        self._send(self.settings.state_topic, json.dumps(record).encode(), self.replay_id,
                   None, [])
        try:
            self._call(self.producer.commit_transaction, _COMMIT_TIMEOUT)
        except KafkaException as error:
            kafka_error: KafkaError = error.args[0]
            self.producer.poll(0)  # serve the failed deliveries' reports: they name the cause
            detail = (self.delivery_errors.most_common(1)[0][0] if self.delivery_errors
                      else kafka_error.str())
            if kafka_error.code() in _FENCED:
                detail += " (another hhar produce of the same topic and source took over)"
            outcome = "could not be committed"
            if kafka_error.txn_requires_abort():
                outcome = "failed and was aborted"
                try:
                    self._call(self.producer.abort_transaction, _COMMIT_TIMEOUT)
                except KafkaException as abort_error:
                    # The broker aborts it when it times out, and so does the next run.
                    logger.warning("could not abort the transaction: %s", abort_error.args[0].str())
                    outcome = "failed"
            self.stats.failed = (self._events(counters) - self._events(committed)) + (
                counters.invalid - committed.invalid)
            msg = f"a transaction {outcome}: {detail}"
            raise _DeliveryFailedError(msg) from None
        committed.rows, committed.invalid = counters.rows, counters.invalid
        return True

    @staticmethod
    def _call(method: Callable[[float], None], timeout: float) -> None:
        """Call a transaction method, retrying retriable errors for up to `timeout` seconds.

        Each call waits at most a second (a timed-out call resumes where it was), so signal
        handlers, which run between calls, keep a second Ctrl+C effective.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                method(_CALL_SLICE)
                return
            except KafkaException as error:
                kafka_error: KafkaError = error.args[0]
                if not kafka_error.retriable() or time.monotonic() >= deadline:
                    raise
                if kafka_error.code() != KafkaError._TIMED_OUT:
                    logger.warning("%s: %s; retrying", method.__name__, kafka_error.str())

    def _on_delivery_error(self, error: KafkaError, message: Any) -> None:
        """Delivery report of a failed record (successes are confirmed by the commit).

        Each distinct error is logged once; records purged by an abort are its consequence.
        """
        if error.code() in _PURGED:
            return
        text = error.str()
        if not self.delivery_errors[text]:
            logger.error(
                "delivery to %s[%s] failed: %s", message.topic(), message.partition(), text
            )
        self.delivery_errors[text] += 1
