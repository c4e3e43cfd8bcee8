"""The replay's routing step: where each row goes, decided without I/O or a clock.

A valid row becomes one event per virtual device for the events topic (its value, key
``Device`` and record timestamp); an invalid row goes to the dead-letter topic with its reason,
and so does a valid row whose timestamp is further ahead of now than the broker takes
(`MAX_AHEAD_MS`). With ``fail_on_invalid`` the first of those stops the replay instead.

The timestamps come in: the recorded ``Arrival_Time`` moved by a shift (the passes of
``--loop``), or a stamp (``--now``: the time the event is sent); a shifted or stamped event's
times are rewritten in its value (`transform.rewrite_event`). So is the horizon, the latest
timestamp the broker takes now. A block of plain rows (all valid, not moved, one device each,
none too far ahead) is routed without a Python step per row: its lists are the events.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import cast

from hhar_stream.settings import SCHEMA_VERSION

from .sources import MAX_LINE_BYTES, EventFields, Row, RowBlock
from .transform import rewrite_event, virtual_devices

MAX_AHEAD_MS = 55 * 60_000
"""How far ahead of this machine's clock a record timestamp may be. Kafka 4 brokers refuse a
whole produce request holding one more than message.timestamp.after.max.ms (1 h by default)
ahead of their clock; 5 minutes less leaves room for the clocks to differ."""

HEADER_SOURCE_FILE = "source_file"
HEADER_SOURCE_LINE = "source_line"
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_ERROR_REASON = "error_reason"
HEADER_TRUNCATED = "value_truncated"
"""``true`` on a dead letter that holds only the first `MAX_LINE_BYTES` of its line."""
HEADER_ORIGINAL_LENGTH = "original_length"
"""The length in bytes of a truncated dead letter's line."""
MAX_REASON = 4096
"""Characters of an error reason kept in a dead letter's header (a line with thousands of
unknown fields has a reason as long)."""

Headers = list[tuple[str, str | bytes | None]]
"""A record's headers as confluent-kafka takes them (ours are text)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A row for the dead-letter topic: its bytes as read, why, and where it was."""

    payload: bytes
    reason: str
    file_no: int
    line_no: int

    def record(self, file_name: str) -> tuple[bytes, Headers]:
        """The dead letter's value and headers: the line (cut to `MAX_LINE_BYTES`), the
        reason, the source file and line, the schema version."""
        headers: Headers = [
            (HEADER_ERROR_REASON, self.reason[:MAX_REASON]),
            (HEADER_SOURCE_FILE, file_name),
            (HEADER_SOURCE_LINE, str(self.line_no)),
            (HEADER_SCHEMA_VERSION, SCHEMA_VERSION),
        ]
        value = self.payload
        if len(value) > MAX_LINE_BYTES:
            headers += [(HEADER_TRUNCATED, "true"), (HEADER_ORIGINAL_LENGTH, str(len(value)))]
            value = value[:MAX_LINE_BYTES]
        return value, headers


@dataclass(slots=True)
class Routed:
    """Where rows go: the events (values, keys and timestamps side by side), the dead
    letters, how many rows were routed, and the row that stops the replay, if one does."""

    values: list[bytes] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    rows: int = 0
    """Rows routed: all that were given, or those before `stop`."""
    stop: DeadLetter | None = None
    """With ``fail_on_invalid``: the first row that cannot be an event."""


DEAD_LETTER_KINDS = ("invalid_json", "invalid_fields", "not_utf8", "line_too_long", "too_far_ahead")
"""What a dead letter's reason says, in a word (the producer's metrics count dead letters by
these): a line that is not JSON, one that does not fit `SensorEvent` (or a CSV row that does
not fit the UCI layout), CSV text that is not UTF-8, a line longer than `MAX_LINE_BYTES`, an
event the broker would refuse (`too_far_ahead`)."""
_TOO_FAR_AHEAD = "is in the future beyond the broker's limit"
_LINE_TOO_LONG = re.compile(r"^line of [\d,]+ bytes: longer than ")


def reason_kind(reason: str) -> str:
    """The kind of a dead letter's reason, one of `DEAD_LETTER_KINDS`."""
    if reason.startswith("row: Invalid JSON"):
        return "invalid_json"
    if reason.startswith("not UTF-8"):
        return "not_utf8"
    if _LINE_TOO_LONG.match(reason):
        return "line_too_long"
    if _TOO_FAR_AHEAD in reason:
        return "too_far_ahead"
    return "invalid_fields"


def too_far_ahead(timestamp: int) -> str:
    """The dead-letter reason of a row whose record timestamp the broker would refuse."""
    when = dt.datetime.fromtimestamp(timestamp / 1000, tz=dt.UTC).isoformat(timespec="seconds")
    return (
        f"Arrival_Time {timestamp} ({when}) {_TOO_FAR_AHEAD}: Kafka "
        f"refuses record timestamps more than message.timestamp.after.max.ms (1 h) ahead"
    )


class Router:
    """Routes rows to events and dead letters (see the module doc)."""

    def __init__(self, devices: int = 1, fail_on_invalid: bool = False) -> None:
        """Fan each recorded device out into `devices` virtual ones; with `fail_on_invalid`
        an invalid row stops the replay instead of becoming a dead letter."""
        self.devices = devices
        self.fail_on_invalid = fail_on_invalid
        self._names: dict[str, tuple[str, ...]] = {}

    def route(
        self, block: RowBlock, horizon: int, *, shift: int = 0, stamp: int | None = None
    ) -> Routed:
        """Route a block: each row's timestamp is its key plus `shift`, or `stamp`.

        Args:
            block: the rows.
            horizon: the latest record timestamp the broker takes now (epoch ms).
            shift: milliseconds added to every recorded time.
            stamp: the timestamp of every event instead (epoch ms).
        """
        if (
            stamp is None
            and not shift
            and self.devices == 1
            and not block.invalid
            and max(block.keys) <= horizon
        ):
            events = cast(list[EventFields], block.events)
            return Routed(
                block.payloads, [event["device"] for event in events], block.keys, [], len(block)
            )
        routed = Routed()
        for row in block.rows():
            if not self.add(routed, row, row[0] + shift if stamp is None else stamp, horizon):
                break
        return routed

    def add(self, routed: Routed, row: Row, timestamp: int, horizon: int) -> bool:
        """Route one row into `routed` with the given timestamp (epoch ms).

        Returns:
            False when the row stops the replay (then it is `routed.stop`).
        """
        key, file_no, line_no, payload, event, reason = row
        if event is not None and timestamp > horizon:
            event, reason = None, too_far_ahead(timestamp)
        if event is None:
            letter = DeadLetter(payload, reason or "", file_no, line_no)
            if self.fail_on_invalid:
                routed.stop = letter
                return False
            routed.letters.append(letter)
        else:
            device = event["device"]
            names = self._names.get(device)
            if names is None:
                names = self._names[device] = virtual_devices(device, self.devices)
            shift = timestamp - event["arrival_time"]
            values = (
                [payload]
                if not shift and self.devices == 1
                else rewrite_event(payload, event, shift, names)
            )
            routed.values += values
            routed.keys += names
            routed.timestamps += [timestamp] * len(names)
        routed.rows += 1
        return True
