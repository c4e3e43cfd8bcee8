"""`hhar data fetch` and `hhar data check` (the `hhar data` group also holds `synth`)."""

from __future__ import annotations

import argparse
import logging
import textwrap
import threading
from contextlib import AbstractContextManager
from pathlib import Path

from ..daemons import stop_on_signals
from ..errors import ConfigError
from ..options import Commands, add_setting, settings_from_args
from ..progress import Meter, progress
from . import real
from .check import bytes_to_check, check_folder
from .fetch import ATTEMPTS, fetch_real, fetch_uci

logger = logging.getLogger(__name__)

PARALLEL = 4
"""Files downloaded at once by default."""

_FETCH = f"""\
Download the real activity-data set ({real.REAL_FILES} part files and 3 markers,
{real.REAL_JSON_BYTES / 1e9:.2f} GB) into the data folder, then check it (hhar data check).
It comes from HHAR_DATA_URL (--url): by default the book's repository on GitHub; a mirror's
URL, a file:// URL or a local folder holding the files do as well.

Files download {PARALLEL} at a time (--parallel), each under a hidden temporary name until
all its bytes are there. A cut download is resumed: within the run ({ATTEMPTS} tries per
file) and by the next hhar data fetch, which asks for the rest with HTTP range requests and
skips the files already whole. Ctrl+C keeps what arrived.

--source uci fetches the original UCI HHAR archive (HHAR_UCI_URL, --uci-url) instead and
unpacks its phones' gyroscope file ({real.UCI_GYROSCOPE_FILE}: every phone, the Nexus 4
ones whose readings activity-data holds among them), which hhar produce replays as it is."""

_CHECK = f"""\
Hold a folder to the real activity-data set: its {len(real.ENTRIES)} files by name and byte
for byte (the git blob ids of the book's repository), {real.REAL_JSON_BYTES:,} bytes,
{real.REAL_ROWS:,} rows, every row's schema, and the published Model x Device and Device x gt
tables. One line per finding; exit 0 only when every one agrees. A generated set (hhar data
synth) is named as such, with how close its shares are to the real ones."""


def _wrapped(text: str) -> str:
    """`text`'s paragraphs filled to the width of the other commands' help."""
    return "\n\n".join(textwrap.fill(" ".join(part.split()), 92) for part in text.split("\n\n"))


def register(actions: Commands) -> None:
    """Add `fetch` and `check` to the `hhar data` command group."""
    fetch = actions.add_parser(
        "fetch",
        help="download the real activity-data set (or the UCI archive) and check it",
        description=_wrapped(_FETCH),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_setting(
        fetch,
        "--out",
        field="data",
        metavar="DIR",
        help="folder to fetch into (created if missing)",
    )
    fetch.add_argument(
        "--source",
        choices=["activity-data", "uci"],
        default="activity-data",
        help="the definitive-guide activity-data set (default) or the UCI HHAR archive",
    )
    add_setting(fetch, "--url", field="data_url", metavar="URL")
    add_setting(fetch, "--uci-url", field="uci_url", metavar="URL")
    fetch.add_argument(
        "--parallel",
        type=int,
        default=PARALLEL,
        metavar="N",
        help=f"files downloaded at once (default: {PARALLEL})",
    )
    fetch.set_defaults(func=_fetch)

    check = actions.add_parser(
        "check",
        help="is a folder the real activity-data set, whole? (one line per finding)",
        description=_wrapped(_CHECK),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "folder",
        nargs="?",
        type=Path,
        metavar="DIR",
        help="the folder to check (default: the data folder, HHAR_DATA)",
    )
    check.set_defaults(func=_check)


def _fetch_meter(total: int) -> AbstractContextManager[Meter]:
    return progress("fetch", total, "bytes", logger)


def _fetch(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.parallel < 1:
        msg = f"--parallel must be at least 1 (got {args.parallel})"
        raise ConfigError(msg)
    folder = settings.data
    stop = threading.Event()
    with stop_on_signals(stop, "stopping the download (what arrived is kept for the next run)"):
        if args.source == "uci":
            uci = fetch_uci(folder, settings.uci_url, stop, _fetch_meter)
            print(
                f"{uci.path}: {uci.rows:,} rows of every phone's gyroscope, {uci.nexus4_rows:,} "
                f"of them from the Nexus 4 phones (the activity-data set's {real.REAL_ROWS:,} "
                f"rows are such rows){'' if uci.fetched else ', already there'}; "
                f"hhar produce --source {folder} replays it"
            )
            return 0
        result = fetch_real(folder, settings.data_url, args.parallel, stop, _fetch_meter)
    print(
        f"fetched {result.fetched} files ({result.bytes_fetched / 1e6:,.1f} MB) in "
        f"{result.seconds:.1f} s" + (f"; {result.skipped} already whole" if result.skipped else ""),
        flush=True,
    )
    return run_check(folder)


def _check(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    return run_check(args.folder if args.folder is not None else settings.data)


def run_check(folder: Path) -> int:
    """`hhar data check` of `folder`: its findings and verdict on stdout; 0 when it holds the
    real set, whole, else 1."""
    if folder.is_dir():
        print(f"checking {folder} against the real activity-data set", flush=True)
        total = bytes_to_check(folder)
    else:
        total = 0
    with progress("check", total, "bytes", logger) as meter:
        report = check_folder(folder, on_bytes=meter.advance)
    for finding in report.findings:
        print(finding.line())
    print(f"{report.verdict} ({report.bytes_read / 1e6:,.1f} MB read in {report.seconds:.1f} s)")
    return 0 if report.ok else 1
