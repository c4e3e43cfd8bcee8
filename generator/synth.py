"""`hhar data synth`: a calibrated generator of HHAR-like data in the real folder's layout.

The folder looks like the definitive-guide ``activity-data`` folder: part files named as
Databricks wrote them (``part-00000-tid-<tid>-<uuid>-0-c000.json``), each a round-robin
1-in-F sample of the whole stream ordered by Arrival_Time, plus the ``_started_<tid>``,
``_committed_<tid>`` (listing the part files) and ``_SUCCESS`` markers that Spark readers skip.
Rows are JSON lines byte-identical to `SensorEvent.to_json()`: keys in the real order, 19-digit
nanosecond Creation_Time, readings as the real files write the float32 sensor values
(``0.0014038086``, ``5.0354E-4``).
What is generated, and how it is calibrated, is in `plan` and `stream`.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TextIO

import numpy as np

from ..dataset.real import MODEL, REAL_FILES, REAL_ROWS, committed_marker, part_name
from ..errors import ConfigError, InputDataError
from ..options import Commands, add_setting, settings_from_args
from ..progress import progress
from ..schemas import WIRE_FIELDS, java_double
from .plan import ACTIVITIES, GRID, MAX_GRID, MIN_ROWS, DatasetPlan, plan_dataset
from .stream import Chunk, merged_chunks

logger = logging.getLogger(__name__)

SIZES: dict[str, int] = {"full": REAL_ROWS, "medium": 1_000_000, "small": 100_000}
"""Named sizes of `--size`: the real row count, and smaller sets with the same shares."""
FORMAT_ROWS = 65536
"""Rows formatted at a time (bounds the memory of the text being written)."""
SMALL_GRID = 66
"""Grid values below this are below 1e-3 rad/s (65/65536 = 9.9E-4; 66/65536 = 0.0010070801)."""
SMALL_DIGITS = 7
_DATASET_FILE = re.compile(r"part-\d{5}-.*\.json|_SUCCESS|_started_\d+|_committed_\d+|\..*\.crc")


@dataclass(frozen=True)
class SynthResult:
    """What `write_dataset` wrote."""

    folder: Path
    rows: int
    part_files: tuple[Path, ...]
    bytes_written: int
    seconds: float


def grid_value_text(grid: int) -> str:
    """The text the real files hold for the sensor value ``grid / 65536`` rad/s.

    The value is a float32 written with its shortest digits (``0.0014038086`` for 92,
    ``-0.0124053955`` for -813), in Java's notation; below 1e-3, where Java switches to
    ``E`` notation, the real files carry at most 7 significant digits (``5.0354E-4`` for 33,
    whose shortest float32 digits are 5.0354004E-4). This rule reproduces every one of the
    323 distinct readings in the real rows shipped with the project.
    """
    shortest = np.format_float_positional(np.float32(grid / GRID), unique=True)
    if 0 < abs(grid) < SMALL_GRID:
        digits = Decimal(shortest)
        digits = digits.quantize(
            Decimal(1).scaleb(digits.adjusted() - (SMALL_DIGITS - 1)), rounding=ROUND_HALF_EVEN
        )
        shortest = format(digits, "f")
    return java_double(float(shortest))


class GridTexts:
    """`grid_value_text` for whole arrays, each distinct value formatted once."""

    def __init__(self) -> None:
        self._texts = np.empty(2 * MAX_GRID + 1, dtype=object)
        self._known = np.zeros(2 * MAX_GRID + 1, dtype=bool)

    def __call__(self, grid: np.ndarray) -> list[str]:
        """The texts of an array of grid values (|value| <= MAX_GRID)."""
        slots = grid.astype(np.int64) + MAX_GRID
        new = np.unique(slots[~self._known[slots]])
        for slot in new.tolist():
            self._texts[slot] = grid_value_text(slot - MAX_GRID)
        self._known[new] = True
        texts: list[str] = self._texts[slots].tolist()
        return texts


class RowWriter:
    """Formats chunks of rows as JSON lines, in `SensorEvent`'s field order and notation."""

    def __init__(self, plan: DatasetPlan) -> None:
        # Strings are passed JSON-quoted, numbers as they print: one %s per field.
        self._template = "{" + ",".join(f'"{name}":%s' for name in WIRE_FIELDS) + "}\n"
        labels = [(stream, gt) for stream in plan.streams for gt in ACTIVITIES]
        self._device = np.array([json.dumps(s.device) for s, _ in labels], dtype=object)
        self._user = np.array([json.dumps(s.user) for s, _ in labels], dtype=object)
        self._gt = np.array([json.dumps(gt) for _, gt in labels], dtype=object)
        self._model = json.dumps(MODEL)
        self._values = GridTexts()

    def lines(self, chunk: Chunk) -> list[str]:
        """The JSON lines of the rows of `chunk`, each ending in a newline."""
        label = chunk.label
        columns = {
            "Arrival_Time": chunk.arrival_ms.tolist(),
            "Creation_Time": chunk.creation_ns.tolist(),
            "Device": self._device[label].tolist(),
            "Index": chunk.sample_index.tolist(),
            "Model": [self._model] * len(chunk),
            "User": self._user[label].tolist(),
            "gt": self._gt[label].tolist(),
            "x": self._values(chunk.kx),
            "y": self._values(chunk.ky),
            "z": self._values(chunk.kz),
        }
        template = self._template
        rows = zip(*(columns[name] for name in WIRE_FIELDS), strict=True)
        return [template % row for row in rows]


def layout_names(files: int, seed: int) -> tuple[list[str], str]:
    """Part file names and the commit id (tid) of a folder, derived from the seed.

    Names follow the real folder: ``part-00007-tid-<18 digits>-<uuid>-0-c000.json``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    tid = str(int(rng.integers(10**17, 10**18)))
    job = uuid.UUID(bytes=rng.bytes(16), version=4)
    return [part_name(number, tid, str(job)) for number in range(files)], tid


def iter_lines(rows: int = REAL_ROWS, seed: int = 42) -> Iterator[str]:
    """Every row of the data set in Arrival_Time order, as JSON lines (for small sets)."""
    plan = plan_dataset(rows, seed)
    writer = RowWriter(plan)
    for chunk in merged_chunks(plan):
        for first in range(0, len(chunk), FORMAT_ROWS):
            yield from writer.lines(chunk.take(slice(first, first + FORMAT_ROWS)))


def write_dataset(
    folder: Path,
    rows: int = REAL_ROWS,
    files: int = REAL_FILES,
    seed: int = 42,
    force: bool = False,
    on_rows: Callable[[int], None] | None = None,
) -> SynthResult:
    """Generate the data set into `folder`, deterministic for `seed`.

    Args:
        folder: created if missing; must be empty unless `force`, which replaces a data set
            there (only part files and markers; anything else makes it refuse).
        rows: rows in all (at least MIN_ROWS).
        files: part files; row i of the time-ordered stream goes to file i % files.
        seed: non-negative seed; the same seed gives the same bytes.
        force: replace the data set already in `folder`.
        on_rows: called with the number of rows written since its last call.

    Raises:
        ConfigError: bad rows, files or seed, or a folder that is not empty.
        InputDataError: the folder cannot be written.
    """
    if rows < MIN_ROWS:
        msg = f"--rows must be at least {MIN_ROWS:,} (got {rows:,})"
        raise ConfigError(msg)
    if files < 1:
        msg = f"--files must be at least 1 (got {files})"
        raise ConfigError(msg)
    if seed < 0:
        msg = f"the seed must be a non-negative integer (got {seed})"
        raise ConfigError(msg)
    started = time.perf_counter()
    created = _prepare_folder(folder, force)
    plan = plan_dataset(rows, seed)
    names, tid = layout_names(files, seed)
    paths = [folder / name for name in names]
    logger.info(
        "generating %s rows in %d part files into %s (seed %d)", f"{rows:,}", files, folder, seed
    )
    try:
        (folder / f"_started_{tid}").write_bytes(b"")
        written = _write_parts(plan, paths, on_rows)
        (folder / f"_committed_{tid}").write_text(committed_marker(names), encoding="ascii")
        (folder / "_SUCCESS").write_bytes(b"")
    except OSError as error:
        _remove_dataset(folder, created)
        msg = f"cannot write the data set into {folder}: {error.strerror or error}"
        raise InputDataError(msg) from None
    except BaseException:
        _remove_dataset(folder, created)
        raise
    logger.debug("wrote %d rows", written)
    size = sum(path.stat().st_size for path in paths)
    return SynthResult(
        folder=folder,
        rows=rows,
        part_files=tuple(paths),
        bytes_written=size,
        seconds=time.perf_counter() - started,
    )


def _write_parts(
    plan: DatasetPlan, paths: list[Path], on_rows: Callable[[int], None] | None
) -> int:
    writer = RowWriter(plan)
    files = len(paths)
    written = 0
    with ExitStack() as stack:
        outputs: list[TextIO] = [
            stack.enter_context(path.open("w", encoding="ascii", newline="\n")) for path in paths
        ]
        for chunk in merged_chunks(plan):
            for first in range(0, len(chunk), FORMAT_ROWS):
                lines = writer.lines(chunk.take(slice(first, first + FORMAT_ROWS)))
                for offset in range(min(files, len(lines))):
                    outputs[(written + offset) % files].write("".join(lines[offset::files]))
                written += len(lines)
                if on_rows is not None:
                    on_rows(len(lines))
    return written


def _prepare_folder(folder: Path, force: bool) -> bool:
    """Make `folder` ready; True when it was created here."""
    if folder.exists() and not folder.is_dir():
        msg = f"{folder} exists and is not a folder"
        raise ConfigError(msg)
    if not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as error:
            msg = f"cannot create {folder}: {error.strerror or error}"
            raise InputDataError(msg) from None
        return True
    entries = sorted(folder.iterdir())
    if not entries:
        return False
    if not force:
        msg = f"{folder} is not empty: pass --force to replace the data set in it"
        raise ConfigError(msg)
    others = [
        entry.name
        for entry in entries
        if not (entry.is_file() and _DATASET_FILE.fullmatch(entry.name))
    ]
    if others:
        msg = f"{folder} holds files that are not part of a data set ({others[0]}); not replacing"
        raise ConfigError(msg)
    for entry in entries:
        entry.unlink()
    return False


def _remove_dataset(folder: Path, created: bool) -> None:
    """Remove a partly written data set (and its folder when this run created it)."""
    for entry in folder.iterdir():
        if entry.is_file() and _DATASET_FILE.fullmatch(entry.name):
            entry.unlink()
    if created and not any(folder.iterdir()):
        folder.rmdir()


def register(actions: Commands) -> None:
    """Add `synth` to the `hhar data` command group."""
    synth = actions.add_parser(
        "synth",
        help="generate a calibrated HHAR-like data set (deterministic for a seed)",
        description=(
            "Write an HHAR-like data set in the real activity-data layout: part files of JSON "
            "lines (round-robin over the Arrival_Time-ordered stream) plus Spark's marker "
            "files. At the full size its Device x gt counts and describe() figures match the "
            "real set; smaller sizes keep the shares."
        ),
    )
    add_setting(
        synth, "--out", field="data", metavar="DIR", help="folder to write (created if missing)"
    )
    add_setting(synth, "--seed", field="seed", type=int)
    size = synth.add_mutually_exclusive_group()
    size.add_argument(
        "--rows",
        type=int,
        metavar="N",
        help=f"rows in all (default: {REAL_ROWS:,}, the real count)",
    )
    size.add_argument(
        "--size",
        choices=sorted(SIZES),
        metavar="{" + ",".join(SIZES) + "}",
        help="a named size: " + ", ".join(f"{k} = {v:,}" for k, v in SIZES.items()),
    )
    synth.add_argument(
        "--files",
        type=int,
        default=REAL_FILES,
        metavar="F",
        help=f"part files (default: {REAL_FILES}, as the real folder)",
    )
    synth.add_argument(
        "--force", action="store_true", help="replace the data set already in the folder"
    )
    synth.set_defaults(func=_synth)


def _synth(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    rows = args.rows if args.rows is not None else SIZES[args.size or "full"]
    with progress("synth", rows, "rows", logger) as meter:
        result = write_dataset(
            settings.data,
            rows=rows,
            files=args.files,
            seed=settings.seed,
            force=args.force,
            on_rows=meter.advance,
        )
    print(
        f"wrote {result.rows:,} rows in {len(result.part_files)} part files "
        f"({result.bytes_written / 1e6:,.1f} MB) to {result.folder} "
        f"in {result.seconds:.1f} s"
    )
    return 0
