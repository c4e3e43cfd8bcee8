"""Where a replay's rows come from: the files of ``--source`` and the order of their rows.

A source is a folder of part files (Spark's ``_SUCCESS``/``_committed_*`` markers, hidden
files, checksums and anything else that is not data are skipped), a single file or a glob.
Files are JSON lines (``.json``, ``.jsonl``) or the UCI CSV layout (``.csv``, ``.tsv``), each
optionally gzip-compressed (``.gz``). Every row is validated against `SensorEvent` as it is read.

Rows come out file by file, or merged across files by ``Arrival_Time`` (`heapq.merge` over one
iterator per file: each file is in time order, so memory holds one row per file whatever the
input's size). A row is the tuple ``(key, file_no, line_no, payload, event, reason)``:

- ``key``: the row's ``Arrival_Time``; an invalid row carries the key of the valid row before
  it in its file (0 before the first), so it keeps its place in the merge;
- ``file_no``, ``line_no``: which file of the source (0-based) and which line (1-based);
- ``payload``: the bytes to send: the original JSON line, the JSON of a CSV row, or for an
  invalid row the original bytes;
- ``event``: the validated event's fields by attribute name (``arrival_time``, ``device``...),
  or None for an invalid row;
- ``reason``: why an invalid row is invalid, or None.

Plain tuples and dicts rather than objects: the producer handles a hundred thousand rows a
second. For the same reason JSON lines are validated with `parse_event_fields`, without
building a model instance for each row: the same checks and messages as `parse_event`.

A UTF-8 byte order mark at the start of a file is not part of its first row. A line longer
than `MAX_LINE_BYTES` is invalid without being parsed.
"""

from __future__ import annotations

import glob
import gzip
import heapq
import itertools
import logging
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

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

Order = Literal["merged", "by-file"]

_FORMATS: dict[str, Literal["json", "csv"]] = {
    ".json": "json", ".jsonl": "json", ".ndjson": "json", ".csv": "csv", ".tsv": "csv",
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
    kind: Literal["json", "csv"]
    compressed: bool


@dataclass(frozen=True)
class FilePosition:
    """How far a replay got in one file: lines consumed and the merge key of the last one."""

    lines: int = 0
    key: int = 0


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


def _data_files(paths: Sequence[Path]) -> list[tuple[Path, Literal["json", "csv"], bool]]:
    found = []
    for path in paths:
        kind = _data_kind(path) if path.is_file() else None
        if kind is None:
            logger.debug("skipping %s: not a data file", path)
        else:
            found.append((path, *kind))
    return found


def _data_kind(path: Path, explicit: bool = False) -> tuple[Literal["json", "csv"], bool] | None:
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


def _open_binary(path: Path, compressed: bool) -> BinaryIO:
    if compressed:
        return gzip.open(path, "rb")
    return open(path, "rb", buffering=_READ_BUFFER)


def read_rows(
    files: Sequence[SourceFile],
    order: Order = "merged",
    positions: Sequence[FilePosition] | None = None,
) -> Iterator[Row]:
    """All rows of the files, validated, file by file or merged by ``Arrival_Time``.

    Args:
        files: the source's files (`resolve_source`).
        order: ``"merged"`` (by ``Arrival_Time``, ties in file order) or ``"by-file"``.
        positions: where a resumed replay left off in each file; those lines are skipped.

    Raises:
        InputDataError: when a file cannot be read (while iterating).
    """
    starts = positions or [FilePosition()] * len(files)
    iterators = [
        file_rows(file_no, file, start) for file_no, (file, start) in enumerate(
            zip(files, starts, strict=True))
    ]
    if order == "by-file":
        return itertools.chain.from_iterable(iterators)
    return heapq.merge(*iterators)


def file_rows(
    file_no: int, file: SourceFile, start: FilePosition = FilePosition()
) -> Iterator[Row]:
    """The validated rows of one file, after its first ``start.lines`` lines."""
    reader = _json_rows if file.kind == "json" else _csv_rows
    try:
        with _open_binary(file.path, file.compressed) as stream:
            yield from reader(file_no, file, stream, start)
    except (OSError, EOFError, zlib.error) as error:
        msg = f"cannot read {file.name}: {error}"
        raise InputDataError(msg) from None


def _skip(lines: Iterator[tuple[int, bytes]], count: int) -> None:
    next(itertools.islice(lines, count, count), None)


def _numbered_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """The stream's lines numbered from 1, without a byte order mark before the first."""
    lines = enumerate(stream, 1)
    first = next(lines, None)
    if first is None:
        return lines
    return itertools.chain([(1, first[1].removeprefix(_BOM))], lines)


def _json_rows(
    file_no: int, file: SourceFile, stream: BinaryIO, start: FilePosition
) -> Iterator[Row]:
    validate = parse_event_fields
    key = start.key
    lines = _numbered_lines(stream)
    _skip(lines, start.lines)
    for line_no, line in lines:
        payload = line.rstrip(b"\r\n")
        if len(payload) > MAX_LINE_BYTES and payload.strip():
            reason = f"line of {len(payload):,} bytes: longer than {MAX_LINE_BYTES:,}"
            yield key, file_no, line_no, payload, None, reason
            continue
        try:
            event = validate(payload)
        except ValidationError as error:
            if payload.strip():
                yield key, file_no, line_no, payload, None, describe_validation_error(error)
            continue
        key = event["arrival_time"]
        yield key, file_no, line_no, payload, event, None


def _csv_rows(
    file_no: int, file: SourceFile, stream: BinaryIO, start: FilePosition
) -> Iterator[Row]:
    key = start.key
    lines = _numbered_lines(stream)
    first = next(lines, None)
    if first is None:
        return
    try:
        layout = UciLayout.detect(first[1].decode("utf-8", errors="replace"))
    except InvalidRowError as error:
        msg = f"{file.name}: {error}"
        raise InputDataError(msg) from None
    if start.lines:
        _skip(lines, start.lines - 1)
    elif not layout.has_header:
        lines = itertools.chain([first], lines)
    for line_no, line in lines:
        payload = line.rstrip(b"\r\n")
        if not payload.strip():
            continue
        try:
            event = parse_uci_line(payload.decode("utf-8"), layout)
        except InvalidRowError as error:
            yield key, file_no, line_no, payload, None, str(error)
            continue
        except UnicodeDecodeError as error:
            yield key, file_no, line_no, payload, None, f"not UTF-8 text: {error.reason}"
            continue
        key = event.arrival_time
        yield key, file_no, line_no, event.to_json().encode(), dict(event), None
