"""Which data set a folder holds, and whether it is the real activity-data set, whole.

`identify` tells from the names and sizes alone, at once: the real set, part of it, a set
`hhar data synth` generated, the UCI file, or something else (`hhar produce` and `hhar demo`
say it in their first line). `check_folder` (`hhar data check`) reads every byte and holds
the folder to the real set's figures (`hhar_stream.dataset.real`): its entries by name, their
git blob ids, the bytes, the rows in all and per file, the schema of every row, the Model x
Device and Device x gt tables. Each of them is one `Finding`, one line of output.

Reading is the time that counts (1.2 GB, 6.2 million rows): each part file is read whole and
scanned by one regular expression of the real files' row layout, derived from `SensorEvent`
(keys in order, integers, numbers, the activity labels), which counts the rows and captures
Device, Model and gt in C; only the lines it does not take are parsed one by one, to say why.
Files are scanned in parallel processes, one per core.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args, get_origin

from pydantic import ValidationError

from ..errors import InputDataError
from ..schemas import SensorEvent, describe_validation_error, parse_event_fields
from . import real

logger = logging.getLogger(__name__)

PARALLEL_BYTES = 64 << 20
"""Folders of more bytes than this are scanned by several processes (starting them costs about
half a second)."""
PART_FILE = re.compile(r"part-(\d{5})-tid-(\d+)-([0-9a-f-]{36})-0-c000\.json")
"""A part file's name in the layout Databricks and `hhar data synth` write."""
TEMPORARY = re.compile(r"\.(.+)\.part")
"""An unfinished download of `hhar data fetch` (``.<name>.part``)."""


def temporary_name(name: str) -> str:
    """The name a file has while `hhar data fetch` downloads it: hidden, so that no reader
    takes it for data."""
    return f".{name}.part"


# --- the figures a folder is held to -------------------------------------------------------
@dataclass(frozen=True)
class SetFigures:
    """What a whole set holds: `REAL_SET` (the real one), or in tests a replica's figures."""

    label: str
    """How findings name the set (``the real set``)."""
    markers: tuple[str, ...]
    part_names: tuple[str, ...]
    blob_ids: dict[str, str]
    rows: int
    json_bytes: int
    model: str
    device_activity: dict[tuple[str, str], int]

    @property
    def entries(self) -> tuple[str, ...]:
        """Every file of the set: markers and part files."""
        return (*self.markers, *self.part_names)


REAL_SET = SetFigures(
    label="the real set",
    markers=real.MARKERS,
    part_names=real.PART_NAMES,
    blob_ids=real.BLOB_IDS,
    rows=real.REAL_ROWS,
    json_bytes=real.REAL_JSON_BYTES,
    model=real.MODEL,
    device_activity=real.REAL_DEVICE_ACTIVITY_COUNTS,
)


# --- which set a folder holds, from its names ----------------------------------------------
Kind = Literal["real", "partial", "altered", "generated", "uci", "other", "empty"]


@dataclass(frozen=True)
class Identity:
    """Which set a folder holds, as far as its names and sizes tell."""

    kind: Kind
    text: str
    """What it is, for people: ``the real activity-data set (80 part files, ...)``."""


def identify(folder: Path, figures: SetFigures = REAL_SET) -> Identity:
    """Which set `folder` holds, from the names and sizes of its files (no reading)."""
    files = {path.name: path for path in folder.iterdir() if path.is_file()}
    visible = sorted(name for name in files if not name.startswith(("_", ".")))
    expected = set(figures.part_names)
    ours = [name for name in visible if name in expected]
    others = [name for name in visible if name not in expected]
    unfinished = [name for name in files if TEMPORARY.fullmatch(name)]
    parts = len(figures.part_names)
    if not visible and not unfinished:
        return Identity("empty", "no data set (an empty folder)")
    if (ours or unfinished) and not others:
        size = sum(files[name].stat().st_size for name in ours)
        if len(ours) < parts or unfinished:
            return Identity(
                "partial",
                f"part of the real activity-data set ({len(ours)} of {parts} part files"
                f"{', downloads unfinished' if unfinished else ''}: hhar data fetch completes it)",
            )
        if size != figures.json_bytes:
            return Identity(
                "altered",
                f"the real activity-data set's names, not its size ({size:,} of "
                f"{figures.json_bytes:,} bytes: hhar data check says what differs)",
            )
        return Identity("real", f"the real activity-data set ({parts} part files, {size:,} bytes)")
    tids = {match[2] for match in map(PART_FILE.fullmatch, others) if match}
    if others and all(PART_FILE.fullmatch(name) for name in others) and not ours:
        return Identity(
            "generated",
            f"a generated HHAR-like data set ({len(others)} part files of commit "
            f"{', '.join(sorted(tids))}, not the real set's {real.TID}: "
            f"hhar data fetch gets the real one)",
        )
    if real.UCI_GYROSCOPE_FILE in others:
        return Identity(
            "uci",
            f"the UCI HHAR phones' gyroscope readings ({real.UCI_GYROSCOPE_FILE}: every phone "
            f"model, the activity-data set's Nexus 4 rows among them)",
        )
    return Identity(
        "other", f"neither the real activity-data set nor a generated one ({len(visible)} files)"
    )


def describe_source(source: Path | str) -> str:
    """What a replay's source is, in words: which set a folder holds (`identify`), or what a
    file or glob is."""
    path = Path(source).expanduser()
    if path.is_dir():
        return f"{identify(path).text} in {source}"
    if path.name in real.PART_NAMES:
        return f"{source}, one part file of the real activity-data set"
    if path.name == real.UCI_GYROSCOPE_FILE:
        return f"{source}, the UCI HHAR phones' gyroscope readings"
    return f"{source} (files, not a data folder: not the whole real activity-data set)"


# --- reading one file ------------------------------------------------------------------------
_INTEGER = rb"-?\d+"
_NUMBER = rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_TEXT = rb'[^"\\\n]+'
CAPTURED = ("Device", "Model", "gt")
"""The fields a scan counts rows by, in the layout's order."""


def row_pattern() -> re.Pattern[bytes]:
    """One row of the real files, as `SensorEvent` defines it and the real files write it:
    ``{"Arrival_Time":1424686735175,...,"z":-0.0124053955}`` (keys in their order, no spaces,
    integers in full, doubles in decimal or E notation, gt one of the labels); Device, Model and
    gt captured, in that order."""
    fields = []
    for attribute, info in SensorEvent.model_fields.items():
        wire = info.alias or attribute
        annotation = info.annotation
        if annotation is int:
            value = _INTEGER
        elif annotation is float:
            value = _NUMBER
        elif get_origin(annotation) is Literal:
            value = b'"(?:' + b"|".join(re.escape(str(v).encode()) for v in get_args(annotation))
            value += b')"'
        else:
            value = b'"' + _TEXT + b'"'
        if wire in CAPTURED:
            value = value[:1] + b"(" + value[1:-1] + b")" + value[-1:]
        fields.append(b'"' + wire.encode() + b'":' + value)
    return re.compile(rb"^\{" + b",".join(fields) + rb"\}$", re.MULTILINE)


ROW = row_pattern()


@dataclass(frozen=True)
class FileScan:
    """What one file holds."""

    name: str
    size: int
    blob_id: str
    lines: int
    rows: int
    """Lines that are rows (in the real layout or, if valid, in another)."""
    cells: Counter[tuple[str, str, str]]
    """Rows per (Device, Model, gt)."""
    odd: int = 0
    """Lines not in the real files' row layout."""
    first_odd: tuple[int, str] | None = None
    """The first of them: its line number and why it is odd."""


BLOCK = 16 << 20
"""Bytes read at a time: a real part file (about 14.8 MB) in one block, any file in bounded
memory."""


class _Rows:
    """The rows of one file so far, added block by block (each block whole lines)."""

    def __init__(self) -> None:
        self.lines = self.rows = self.odd = 0
        self.cells: Counter[tuple[str, str, str]] = Counter()
        self.first_odd: tuple[int, str] | None = None

    def add(self, lines: bytes) -> None:
        """Whole lines, the last one with or without its newline."""
        count = lines.count(b"\n") + (not lines.endswith(b"\n"))
        found = Counter(ROW.findall(lines))
        if sum(found.values()) == count:
            self.cells.update(
                {(d.decode(), m.decode(), g.decode()): n for (d, m, g), n in found.items()}
            )
            self.rows += count
        else:
            self._line_by_line(lines)
        self.lines += count

    def _line_by_line(self, lines: bytes) -> None:
        """The slow path for lines the pattern does not all take: one at a time, parsed to say
        why."""
        for number, line in enumerate(lines.removesuffix(b"\n").split(b"\n"), self.lines + 1):
            match = ROW.fullmatch(line)
            if match:
                self.rows += 1
                self.cells[(match[1].decode(), match[2].decode(), match[3].decode())] += 1
                continue
            self.odd += 1
            try:
                fields = parse_event_fields(line)
            except ValidationError as error:
                reason = describe_validation_error(error)
            else:
                self.rows += 1
                self.cells[(fields["device"], fields["model"], fields["gt"])] += 1
                reason = "a valid row, written otherwise than the real files (spaces, key order?)"
            if self.first_odd is None:
                self.first_odd = (number, reason)


def scan_file(path: Path, rows: bool = True) -> FileScan:
    """Read `path`: its size and blob id, and with `rows` its rows (see the module doc)."""
    size = path.stat().st_size
    blob = real.GitBlob(size)
    found = _Rows()
    with path.open("rb") as stream:
        rest = b""
        while block := stream.read(BLOCK):
            blob.update(block)
            if rows:
                lines = rest + block
                end = lines.rfind(b"\n") + 1
                rest = lines[end:]
                if end:
                    found.add(lines[:end])
        if rest:
            found.add(rest)
    return FileScan(
        path.name,
        size,
        blob.hexdigest(),
        found.lines,
        found.rows,
        found.cells,
        found.odd,
        found.first_odd,
    )


# --- the check -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One finding of a check: agrees (ok), disagrees, or information (ok None)."""

    ok: bool | None
    topic: str
    text: str

    def line(self) -> str:
        """The finding as one line of output."""
        tag = {True: "ok", False: "FAIL", None: "note"}[self.ok]
        return f"{tag:<5}{self.topic}: {self.text}"


@dataclass
class CheckReport:
    """A check's findings and its verdict."""

    folder: Path
    identity: Identity
    findings: list[Finding] = field(default_factory=list)
    verdict: str = ""
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every finding agrees with the set's figures."""
        return all(finding.ok is not False for finding in self.findings)


def scan_folder(
    folder: Path,
    names: Sequence[str],
    rows: Callable[[str], bool],
    on_bytes: Callable[[int], None] | None = None,
) -> list[FileScan]:
    """Scan the files `names` of `folder` (rows of those `rows` says), several processes at
    once for a large folder; `on_bytes` is told each file's size as it is done."""
    paths = [folder / name for name in names]
    total = sum(path.stat().st_size for path in paths)
    workers = min(os.cpu_count() or 1, len(paths)) if total > PARALLEL_BYTES else 1
    scans: list[FileScan] = []
    if workers <= 1:
        for path in paths:
            scans.append(scan_file(path, rows(path.name)))
            if on_bytes is not None:
                on_bytes(scans[-1].size)
        return scans
    # spawn: the parent may run threads (a progress bar); forking them is unsafe. Ctrl+C is
    # the parent's to handle: the children ignore it, and what is not started is cancelled.
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_interrupts
    )
    try:
        for scan in pool.map(scan_file, paths, map(rows, names)):
            scans.append(scan)
            if on_bytes is not None:
                on_bytes(scan.size)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return scans


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def check_folder(
    folder: Path,
    figures: SetFigures = REAL_SET,
    on_bytes: Callable[[int], None] | None = None,
) -> CheckReport:
    """Hold `folder` to `figures` (the real set's): one finding per figure, and a verdict.

    Raises:
        InputDataError: when `folder` is not a folder.
    """
    if not folder.is_dir():
        msg = f"{folder} is not a folder: hhar data fetch gets the real activity-data set"
        raise InputDataError(msg)
    started = time.perf_counter()
    report = CheckReport(folder, identify(folder, figures))
    files = sorted(path.name for path in folder.iterdir() if path.is_file())
    markers, data_names = _scanned(files, figures)
    scans = {
        scan.name: scan
        for scan in scan_folder(
            folder, [*markers, *data_names], lambda name: name not in markers, on_bytes
        )
    }
    parts = [scans[name] for name in data_names]
    report.findings = [
        _entries(files, figures),
        _blob_ids(scans, figures),
        _bytes(parts, figures),
        *_rows(parts, figures),
        _schema(parts),
        _devices(parts, figures),
        _device_activity(parts, figures),
    ]
    report.verdict = _verdict(report, parts, figures)
    report.bytes_read = sum(scan.size for scan in scans.values())
    report.seconds = time.perf_counter() - started
    return report


def _scanned(files: Sequence[str], figures: SetFigures) -> tuple[list[str], list[str]]:
    """The files a check reads: the set's markers (their blob ids) and the data files (every
    file that does not start with _ or ., as Spark and the producer see them)."""
    entries = set(figures.entries)
    markers = [name for name in files if name in entries and name.startswith("_")]
    return markers, [name for name in files if not name.startswith(("_", "."))]


def bytes_to_check(folder: Path, figures: SetFigures = REAL_SET) -> int:
    """The bytes `check_folder` reads in `folder` (for a progress bar)."""
    files = sorted(path.name for path in folder.iterdir() if path.is_file())
    markers, data_names = _scanned(files, figures)
    return sum((folder / name).stat().st_size for name in (*markers, *data_names))


def _some(names: Sequence[str], shown: int = 2) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _entries(files: Sequence[str], figures: SetFigures) -> Finding:
    entries = figures.entries
    present = set(files)
    missing = [name for name in entries if name not in present]
    unfinished = [name for name in files if TEMPORARY.fullmatch(name)]
    strangers = [
        name for name in files if name not in set(entries) and not name.startswith(("_", "."))
    ]
    parts = len(figures.part_names)
    if not (missing or unfinished or strangers):
        return Finding(
            True,
            "entries",
            f"{len(entries)}: the {parts} part files and {len(figures.markers)} markers of "
            f"{figures.label}, by name",
        )
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {figures.label}'s {len(entries)} missing")
    if unfinished:
        problems.append(f"{len(unfinished)} unfinished downloads (hhar data fetch resumes them)")
    if strangers:
        problems.append(f"{len(strangers)} files not of {figures.label} ({_some(strangers)})")
    return Finding(False, "entries", "; ".join(problems))


def _blob_ids(scans: dict[str, FileScan], figures: SetFigures) -> Finding:
    ours = [scan for name, scan in scans.items() if name in figures.blob_ids]
    if not any(scan.name in figures.part_names for scan in ours):
        return Finding(False, "contents", f"none of {figures.label}'s part files is here")
    differ = [scan.name for scan in ours if scan.blob_id != figures.blob_ids[scan.name]]
    if differ:
        return Finding(
            False,
            "contents",
            f"{len(differ)} of {len(ours)} files differ from {figures.label}'s "
            f"({_some(differ)}): other files, or damaged ones (remove them and run "
            f"hhar data fetch again)",
        )
    return Finding(
        True,
        "contents",
        f"each of the {len(ours)} files is {figures.label}'s byte for byte (git blob ids of "
        f"{real.BOOK_REPOSITORY} at {real.BOOK_COMMIT[:7]})",
    )


def _bytes(parts: Sequence[FileScan], figures: SetFigures) -> Finding:
    size = sum(scan.size for scan in parts)
    agrees = size == figures.json_bytes
    return Finding(
        agrees,
        "bytes",
        f"{size:,} in the {len(parts)} data files"
        + (f", as {figures.label}" if agrees else f"; {figures.label} has {figures.json_bytes:,}"),
    )


def _rows(parts: Sequence[FileScan], figures: SetFigures) -> list[Finding]:
    rows = sum(scan.rows for scan in parts)
    agrees = rows == figures.rows
    total = Finding(
        agrees,
        "rows",
        f"{rows:,} in all"
        + (f", as {figures.label}" if agrees else f"; {figures.label} has {figures.rows:,}"),
    )
    if not parts:
        return [total]
    low, high = min(scan.rows for scan in parts), max(scan.rows for scan in parts)
    first = ", ".join(f"{count:,}" for count in real.FIRST_FILES_ROWS)
    spread = f"{low:,} in each file" if low == high else f"{low:,} to {high:,}"
    per_file = Finding(
        None,
        "rows per file",
        f"{spread} (no per-file count is published: only that the first files the exercise's "
        f"stream read held {first})",
    )
    return [total, per_file]


def _schema(parts: Sequence[FileScan]) -> Finding:
    lines = sum(scan.lines for scan in parts)
    odd = [scan for scan in parts if scan.odd]
    if not odd:
        return Finding(
            True,
            "schema",
            f"every one of the {lines:,} lines is a SensorEvent row in the real files' layout "
            f"(10 fields in order: Arrival_Time ... z)",
        )
    name, (number, reason) = next(
        (scan.name, scan.first_odd) for scan in odd if scan.first_odd is not None
    )
    count = sum(scan.odd for scan in odd)
    return Finding(
        False,
        "schema",
        f"{count:,} of {lines:,} lines are not rows in the real files' layout (the first: "
        f"{name} line {number:,}: {reason})",
    )


def _cells(parts: Sequence[FileScan]) -> Counter[tuple[str, str, str]]:
    cells: Counter[tuple[str, str, str]] = Counter()
    for scan in parts:
        cells.update(scan.cells)
    return cells


def _devices(parts: Sequence[FileScan], figures: SetFigures) -> Finding:
    found: Counter[tuple[str, str]] = Counter()
    for (device, model, _), count in _cells(parts).items():
        found[(model, device)] += count
    wanted: Counter[tuple[str, str]] = Counter()
    for (device, _), count in figures.device_activity.items():
        wanted[(figures.model, device)] += count
    text = ", ".join(f"{m} / {d} {n:,}" for (m, d), n in sorted(found.items())) or "no rows"
    if found == wanted:
        return Finding(True, "Model x Device", f"{text}, as {figures.label}")
    expected = ", ".join(f"{m} / {d} {n:,}" for (m, d), n in sorted(wanted.items()))
    return Finding(False, "Model x Device", f"{text}; {figures.label}: {expected}")


def _device_activity(parts: Sequence[FileScan], figures: SetFigures) -> Finding:
    found: Counter[tuple[str, str]] = Counter()
    for (device, _, gt), count in _cells(parts).items():
        found[(device, gt)] += count
    wanted = figures.device_activity
    cells = len(wanted)
    if found == Counter(wanted):
        return Finding(True, "Device x gt", f"the {cells} counts equal {figures.label}'s table")
    differ = sorted(
        set(found) | set(wanted), key=lambda cell: -abs(found[cell] - wanted.get(cell, 0))
    )
    differ = [cell for cell in differ if found[cell] != wanted.get(cell, 0)]
    device, gt = differ[0]
    return Finding(
        False,
        "Device x gt",
        f"{len(differ)} of {cells} counts differ from {figures.label}'s table (most: "
        f"{device} {gt} {found[(device, gt)]:,} against {wanted.get((device, gt), 0):,})",
    )


def share_gap(parts: Sequence[FileScan], figures: SetFigures) -> tuple[float, tuple[str, str]]:
    """The largest gap, in percentage points, between the Device x gt shares of `parts` and
    those of `figures`, and its cell."""
    found: Counter[tuple[str, str]] = Counter()
    for (device, _, gt), count in _cells(parts).items():
        found[(device, gt)] += count
    rows = sum(found.values()) or 1
    wanted = figures.device_activity
    expected_rows = sum(wanted.values())
    gaps = {
        cell: 100 * abs(found[cell] / rows - wanted.get(cell, 0) / expected_rows)
        for cell in set(found) | set(wanted)
    }
    cell = max(gaps, key=lambda key: gaps[key])
    return gaps[cell], cell


def _verdict(report: CheckReport, parts: Sequence[FileScan], figures: SetFigures) -> str:
    if report.ok:
        return f"{report.folder} holds {figures.label}, whole: every figure agrees"
    kind = report.identity.kind
    if kind == "generated" and any(scan.rows for scan in parts):
        gap, (device, gt) = share_gap(parts, figures)
        shares = (
            f"within {gap:.3f} percentage points of {figures.label}'s (the largest gap: "
            f"{device} {gt})"
            if gap >= 0.0005
            else f"{figures.label}'s to 0.001 percentage points"
        )
        return (
            f"{report.folder} holds a generated data set (hhar data synth), not the real one: "
            f"its Device x gt shares are {shares}; hhar data fetch gets the real set"
        )
    if kind == "partial":
        return f"{report.folder} holds part of {figures.label}: hhar data fetch completes it"
    return f"{report.folder} does not hold {figures.label}, whole (see the findings above)"
