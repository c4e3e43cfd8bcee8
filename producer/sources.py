"""Where a replay's rows come from: the files of ``--source`` and the order of their rows.

A source is a folder of part files (Spark's ``_SUCCESS``/``_committed_*`` markers, hidden
files, checksums and anything else that is not data are skipped), a single file or a glob.
Files are JSON lines (``.json``, ``.jsonl``) or the UCI CSV layout (``.csv``, ``.tsv``), each
optionally gzip-compressed (``.gz``). Every row is validated against `SensorEvent` as it is read.

Rows come in blocks (`RowBlock`: hundreds of rows as parallel lists), file by file or merged
across files by ``Arrival_Time``. The merge works a block at a time: every file is in time
order, so all rows up to the smallest last key of the files' current blocks can be sorted and
passed on together (a stable sort: ties in file order, then line order), and memory holds one
block per file whatever the input's size. Blocks keep the per-row work of the replay in C
(list comprehensions, slices, sorts) rather than in a Python generator per row.

A row is, at one index of a block:

- ``keys``: the row's ``Arrival_Time``; an invalid row carries the key of the valid row before
  it in its file (0 before the first), so it keeps its place in the merge;
- ``file_nos``, ``line_nos``: which file of the source (0-based) and which line (1-based);
- ``payloads``: the bytes to send: the original JSON line, the JSON of a CSV row, or for an
  invalid row the original bytes;
- ``events``: the validated event's fields by attribute name (``arrival_time``, ``device``...),
  or None for an invalid row;
- ``reasons``: why an invalid row is invalid, or None.

`read_rows` gives the same rows one tuple at a time, ``(key, file_no, line_no, payload, event,
reason)``. JSON lines are validated with `parse_event_fields`, without building a model
instance for each row: the same checks and messages as `parse_event`.

A reader can take a share of the lines (every ``stride``-th line from ``offset``), which is how
``--workers`` splits a source of fewer files than workers. A UTF-8 byte order mark at the start
of a file is not part of its first row. A line longer than `MAX_LINE_BYTES` is invalid without
being parsed.
"""

from __future__ import annotations

import glob
import gzip
import io
import itertools
import logging
import os
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, cast, overload

from pydantic import ValidationError

from hhar_stream.errors import InputDataError
from hhar_stream.schemas import describe_validation_error, parse_event_fields

from .uci import InvalidRowError, UciLayout, parse_uci_line

logger = logging.getLogger(__name__)

EventFields = dict[str, Any]
"""A validated event as its field values by attribute name (``arrival_time``, ``device``...)."""

Row = tuple[int, int, int, bytes, EventFields | None, str | None]
"""One source row: ``(key, file_no, line_no, payload, event, reason)`` (see the module doc)."""

MAX_LINE_BYTES = 65_536
"""The longest line read as a row: an event is a few hundred bytes, and a longer line would
not even fit in a Kafka message (1 MB by default)."""

BLOCK_BYTES = 1 << 17
"""Bytes of lines read at a time, shared among the files of a merge (each at least
`_MIN_FILE_BYTES`): about 700 rows. Larger blocks cost more per row: their validated rows no
longer fit the CPU's caches."""
_MIN_FILE_BYTES = 65_536

Order = Literal["merged", "by-file"]
Format = Literal["json", "csv"]

_FORMATS: dict[str, Format] = {
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".csv": "csv",
    ".tsv": "csv",
}
_GLOB_CHARACTERS = frozenset("*?[")
_READ_BUFFER = 1 << 16
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class SourceFile:
    """One data file of a source."""

    path: Path
    name: str
    """The file's name relative to the source (in headers, positions and messages)."""
    kind: Format
    compressed: bool


@dataclass(frozen=True)
class FilePosition:
    """How far a replay got in one file: lines consumed and the merge key of the last one."""

    lines: int = 0
    key: int = 0


@dataclass(slots=True)
class RowBlock:
    """Rows in replay order as parallel lists, one entry per row (see the module doc)."""

    keys: list[int]
    file_nos: list[int]
    line_nos: list[int]
    payloads: list[bytes]
    events: list[EventFields | None]
    reasons: list[str | None]
    invalid: int = 0
    """How many of the rows are invalid (0: every event is a dict)."""
    _lists: tuple[list[Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._lists = (
            self.keys,
            self.file_nos,
            self.line_nos,
            self.payloads,
            self.events,
            self.reasons,
        )

    def __len__(self) -> int:
        return len(self.keys)

    def rows(self) -> Iterator[Row]:
        """The rows as tuples ``(key, file_no, line_no, payload, event, reason)``."""
        return zip(*self._lists, strict=True)

    def head(self, count: int) -> RowBlock:
        """The first `count` rows."""
        if count >= len(self.keys):
            return self
        return self.slice(0, count)

    def slice(self, start: int, end: int) -> RowBlock:
        """The rows from `start` to `end` (as list slices)."""
        return _block([column[start:end] for column in self._lists])

    def first_valid_key(self) -> int | None:
        """The key of the first valid row, if any."""
        if not self.invalid:
            return self.keys[0] if self.keys else None
        return next(
            (key for key, event in zip(self.keys, self.events, strict=True) if event is not None),
            None,
        )

    def positions(self) -> dict[int, FilePosition]:
        """Where the block leaves each of its files: its last line there and that line's key."""
        last = dict(zip(self.file_nos, zip(self.line_nos, self.keys, strict=True), strict=True))
        return {file_no: FilePosition(*place) for file_no, place in last.items()}


def _block(columns: Sequence[list[Any]]) -> RowBlock:
    keys, file_nos, line_nos, payloads, events, reasons = columns
    return RowBlock(keys, file_nos, line_nos, payloads, events, reasons, invalid=events.count(None))


def resolve_source(source: Path | str) -> list[SourceFile]:
    """The data files of a folder, file or glob, in name order.

    Raises:
        InputDataError: when the source does not exist or holds no data file.
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        root = path
        found = _data_files(sorted(path.iterdir()))
    elif path.is_file():
        root = path.parent
        found = [(path, *_data_kind(path, explicit=True))]
    elif _GLOB_CHARACTERS & set(text):
        found = _data_files(sorted(Path(match) for match in glob.glob(str(path), recursive=True)))
        root = Path(os.path.commonpath([file.parent for file, _, _ in found])) if found else path
    else:
        msg = f"source not found: {text}"
        raise InputDataError(msg)
    if not found:
        msg = (
            f"no data files in {text} (looked for .json, .jsonl, .csv or .tsv, optionally .gz; "
            f"files starting with _ or . are skipped)"
        )
        raise InputDataError(msg)
    return [
        SourceFile(path=file, name=file.relative_to(root).as_posix(), kind=kind, compressed=gz)
        for file, kind, gz in found
    ]


def _data_files(paths: Sequence[Path]) -> list[tuple[Path, Format, bool]]:
    found: list[tuple[Path, Format, bool]] = []
    for path in paths:
        kind = _data_kind(path) if path.is_file() else None
        if kind is None:
            logger.debug("skipping %s: not a data file", path)
        else:
            found.append((path, *kind))
    return found


@overload
def _data_kind(path: Path, explicit: Literal[True]) -> tuple[Format, bool]: ...
@overload
def _data_kind(path: Path, explicit: bool = False) -> tuple[Format, bool] | None: ...
def _data_kind(path: Path, explicit: bool = False) -> tuple[Format, bool] | None:
    """The format of a data file and whether it is gzipped; None for what is not data.

    A file named explicitly is data whatever its name (never None): its format then comes from
    its suffix, or from its first byte (``{`` for JSON lines, anything else for CSV).
    """
    name = path.name
    if not explicit and name.startswith(("_", ".")):
        return None
    compressed = name.endswith(".gz")
    suffix = Path(name.removesuffix(".gz")).suffix.lower()
    kind = _FORMATS.get(suffix)
    if kind is not None:
        return kind, compressed
    if not explicit:
        return None
    try:
        with _open_binary(path, compressed) as stream:
            head = stream.read(64).lstrip()
    except (OSError, EOFError, zlib.error) as error:
        msg = f"cannot read {path}: {error}"
        raise InputDataError(msg) from None
    return ("json" if head.startswith(b"{") else "csv"), compressed


def _open_binary(path: Path, compressed: bool) -> io.BufferedIOBase:
    if compressed:
        return gzip.open(path, "rb")
    return io.BufferedReader(io.FileIO(path), buffer_size=_READ_BUFFER)


def read_blocks(
    files: Sequence[SourceFile],
    order: Order = "merged",
    positions: Sequence[FilePosition] | None = None,
    *,
    stride: int = 1,
    offset: int = 0,
) -> Iterator[RowBlock]:
    """All rows of the files, validated, in blocks: file by file or merged by ``Arrival_Time``.

    Args:
        files: the source's files (`resolve_source`).
        order: ``"merged"`` (by ``Arrival_Time``, ties in file order) or ``"by-file"``.
        positions: where a resumed replay left off in each file; those lines are skipped.
        stride, offset: read only the lines numbered ``offset + 1``, ``offset + 1 + stride``...
            of each file (a worker's share).

    Raises:
        InputDataError: when a file cannot be read (while iterating).
    """
    starts = positions or [FilePosition()] * len(files)
    merging = order == "merged" and len(files) > 1
    budget = max(_MIN_FILE_BYTES, BLOCK_BYTES // len(files)) if merging else BLOCK_BYTES
    iterators = [
        file_blocks(file_no, file, start, stride=stride, offset=offset, block_bytes=budget)
        for file_no, (file, start) in enumerate(zip(files, starts, strict=True))
    ]
    if not merging:
        return itertools.chain.from_iterable(iterators)
    return _merged(iterators)


def read_rows(
    files: Sequence[SourceFile],
    order: Order = "merged",
    positions: Sequence[FilePosition] | None = None,
) -> Iterator[Row]:
    """`read_blocks`' rows one tuple at a time, ``(key, file_no, line_no, payload, event,
    reason)``.

    Raises:
        InputDataError: when a file cannot be read (while iterating).
    """
    for block in read_blocks(files, order, positions):
        yield from block.rows()


def _merged(iterators: list[Iterator[RowBlock]]) -> Iterator[RowBlock]:
    """Merge the files' blocks by key, ties in file order.

    Each step passes on the rows up to the smallest last key of the current blocks, the bound:
    the first file whose block ends there passes on its whole block; the files before it their
    rows up to the bound, the files after it their rows before the bound (the first file's
    next block may hold more rows at the bound, and they come first).
    """
    current: list[list[Any]] = []  # [block, cursor, blocks] per file still open, in file order
    for blocks in iterators:
        block = next(blocks, None)
        if block is not None:
            current.append([block, 0, blocks])
    while current:
        bound = min(block.keys[-1] for block, _, _ in current)
        taken = []  # (block, start, end) of each file that passes rows on, in file order
        first = True
        for entry in current:
            block, cursor, _ = entry
            keys = block.keys
            if first and keys[-1] == bound:
                end, first = len(keys), False
            elif first:
                end = bisect_right(keys, bound, cursor)
            else:
                end = bisect_left(keys, bound, cursor)
            if end > cursor:
                taken.append((block, cursor, end))
                entry[1] = end
        for entry in current:
            if entry[1] == len(entry[0].keys):
                following = next(entry[2], None)
                entry[0:2] = [following, 0]
        current = [entry for entry in current if entry[0] is not None]
        yield _sorted(taken)


def _sorted(taken: list[tuple[RowBlock, int, int]]) -> RowBlock:
    """The rows taken from each block (`start` to `end`) as one block, stably sorted by key
    (ties keep the order of `taken`)."""
    if len(taken) == 1:
        block, start, end = taken[0]
        return block if start == 0 and end == len(block) else block.slice(start, end)
    columns = [
        list(
            itertools.chain.from_iterable(
                block._lists[number][start:end] for block, start, end in taken
            )
        )
        for number in range(6)
    ]
    keys = columns[0]
    pick = itemgetter(*sorted(range(len(keys)), key=keys.__getitem__))
    if not any(block.invalid for block, _, _ in taken):
        keys, file_nos, line_nos, payloads, events = (list(pick(column)) for column in columns[:5])
        return RowBlock(keys, file_nos, line_nos, payloads, events, [None] * len(keys))
    return _block([list(pick(column)) for column in columns])


def file_blocks(
    file_no: int,
    file: SourceFile,
    start: FilePosition = FilePosition(),
    *,
    stride: int = 1,
    offset: int = 0,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[RowBlock]:
    """The validated rows of one file after its first ``start.lines`` lines, in blocks of about
    `block_bytes` (see `read_blocks` for the share)."""
    reader = _json_blocks if file.kind == "json" else _csv_blocks
    try:
        with _open_binary(file.path, file.compressed) as stream:
            chunks = _Chunks(stream, start.lines, stride, offset, block_bytes)
            yield from reader(file_no, file, chunks, start.key)
    except (OSError, EOFError, zlib.error) as error:
        msg = f"cannot read {file.name}: {error}"
        raise InputDataError(msg) from None


class _Chunks:
    """A file's lines in chunks, numbered from 1, without a byte order mark before the first;
    only the lines after the first `skip` and in the share (``stride``, ``offset``)."""

    def __init__(
        self, stream: io.BufferedIOBase, skip: int, stride: int, offset: int, block_bytes: int
    ) -> None:
        self._stream = stream
        self._skip = skip
        self._stride = stride
        self._offset = offset
        self._block_bytes = block_bytes
        self._read = 0
        """Lines read from the stream so far."""

    def first_line(self) -> bytes | None:
        """Line 1 whatever the skip and share (a CSV file's layout); None for an empty file."""
        line = self._stream.readline()
        if not line:
            return None
        self._read = 1
        return line.removeprefix(_BOM)

    def includes(self, line_no: int) -> bool:
        """Whether line `line_no` is read (after the skip, in the share)."""
        return line_no > self._skip and (line_no - 1) % self._stride == self._offset

    def __iter__(self) -> Iterator[tuple[range, list[bytes]]]:
        """``(line numbers, lines)`` chunk after chunk."""
        stream, stride = self._stream, self._stride
        while True:
            lines = stream.readlines(self._block_bytes)
            if not lines:
                return
            first = self._read + 1  # the number of lines[0]
            if first == 1:
                lines[0] = lines[0].removeprefix(_BOM)
            self._read += len(lines)
            if self._skip >= self._read:
                continue
            if self._skip >= first:
                lines = lines[self._skip - first + 1 :]
                first = self._skip + 1
            if stride > 1:
                kept = (self._offset - (first - 1)) % stride
                lines = lines[kept::stride]
                first += kept
            if lines:
                yield range(first, first + len(lines) * stride, stride), lines


def _json_blocks(file_no: int, file: SourceFile, chunks: _Chunks, key: int) -> Iterator[RowBlock]:
    for numbers, lines in chunks:
        payloads = [line.rstrip(b"\r\n") for line in lines]
        block = _valid_block(file_no, numbers, payloads)
        if block is None:
            block = _checked_block(file_no, numbers, payloads, key)
        if block.keys:
            key = block.keys[-1]
            yield block


def _valid_block(file_no: int, numbers: range, payloads: list[bytes]) -> RowBlock | None:
    """The block of lines that are all valid events (the common case, in C); None otherwise."""
    if max(map(len, payloads)) > MAX_LINE_BYTES:
        return None
    validate = parse_event_fields
    try:
        events = [validate(payload) for payload in payloads]
    except ValidationError:
        return None
    count = len(payloads)
    return RowBlock(
        [event["arrival_time"] for event in events],
        [file_no] * count,
        list(numbers),
        payloads,
        cast(list[EventFields | None], events),
        [None] * count,
    )


def _checked_block(file_no: int, numbers: range, payloads: list[bytes], key: int) -> RowBlock:
    """The rows of lines one at a time: invalid ones with their reason, blank ones skipped."""
    validate = parse_event_fields
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
    keys, file_nos, line_nos, kept, events, reasons = columns
    for line_no, payload in zip(numbers, payloads, strict=True):
        event, reason = None, None
        if len(payload) > MAX_LINE_BYTES and payload.strip():
            reason = f"line of {len(payload):,} bytes: longer than {MAX_LINE_BYTES:,}"
        else:
            try:
                event = validate(payload)
            except ValidationError as error:
                if not payload.strip():
                    continue
                reason = describe_validation_error(error)
            else:
                key = event["arrival_time"]
        keys.append(key)
        file_nos.append(file_no)
        line_nos.append(line_no)
        kept.append(payload)
        events.append(event)
        reasons.append(reason)
    return _block(columns)


def _csv_blocks(file_no: int, file: SourceFile, chunks: _Chunks, key: int) -> Iterator[RowBlock]:
    first = chunks.first_line()
    if first is None:
        return
    try:
        layout = UciLayout.detect(first.decode("utf-8", errors="replace"))
    except InvalidRowError as error:
        msg = f"{file.name}: {error}"
        raise InputDataError(msg) from None
    lead: Iterable[tuple[range, list[bytes]]] = ()
    if not layout.has_header and chunks.includes(1):
        lead = [(range(1, 2), [first])]
    for numbers, lines in itertools.chain(lead, chunks):
        block = _csv_block(file_no, numbers, lines, layout, key)
        if block.keys:
            key = block.keys[-1]
            yield block


def _csv_block(
    file_no: int, numbers: range, lines: list[bytes], layout: UciLayout, key: int
) -> RowBlock:
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
    keys, file_nos, line_nos, payloads, events, reasons = columns
    for line_no, line in zip(numbers, lines, strict=True):
        payload = line.rstrip(b"\r\n")
        if not payload.strip():
            continue
        event, reason = None, None
        try:
            parsed = parse_uci_line(payload.decode("utf-8"), layout)
        except InvalidRowError as error:
            reason = str(error)
        except UnicodeDecodeError as error:
            reason = f"not UTF-8 text: {error.reason}"
        else:
            key, reason = parsed.arrival_time, None
            event, payload = dict(parsed), parsed.to_json().encode()
        keys.append(key)
        file_nos.append(file_no)
        line_nos.append(line_no)
        payloads.append(payload)
        events.append(event)
        reasons.append(reason)
    return _block(columns)
