"""`hhar data fetch`: the real activity-data set, or the UCI HHAR archive, downloaded.

The real set's 83 files (`real.ENTRIES`) come from a base URL, by default the book's
repository on GitHub; any http(s) mirror, a ``file://`` URL or a local folder holding the files
does as well. The ``_committed_`` marker comes first: it proves the source answers and lists
the real set's 80 part files. Then every file's size is asked (HEAD), files already whole in
the folder are skipped, and the others download several at a time under one progress bar.

Nothing half-written is ever taken for a whole file. A file downloads under a hidden
temporary name (``.<name>.part``, which no reader takes for data) and is renamed only once
it holds exactly the bytes the source announced. A download that was cut (a dropped
connection, a timeout, Ctrl+C, a crash) keeps its temporary file; the next attempt asks for
the rest with an HTTP range request, and a source that answers with the whole file instead
restarts it from its first byte (never appends to it). A cut transfer is resumed a few times
within one run before the file counts as failed.

``--source uci`` downloads the UCI archive (dataset 344) the same way and unpacks its phones'
gyroscope file (``Phones_gyroscope.csv``, inside a zip inside the zip), which `hhar produce`
replays as it is (the UCI CSV layout).
"""

from __future__ import annotations

import functools
import http.client
import io
import json
import logging
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from .. import __version__
from ..errors import ConfigError, InputDataError
from ..progress import Meter
from . import real
from .check import temporary_name

logger = logging.getLogger(__name__)

TIMEOUT_S = 30.0
"""Seconds a connection may wait for the source before the attempt counts as cut."""
ATTEMPTS = 3
"""Transfers of one file within one run before it counts as failed."""
CHUNK = 1 << 16
USER_AGENT = f"hhar-stream/{__version__}"
COPY_HINT = (
    "to fetch from a copy, point HHAR_DATA_URL (--url) at a mirror's URL, a file:// URL or a "
    "local folder holding the set's files"
)
UCI_ARCHIVE = ".uci-hhar.zip"
"""The downloaded UCI archive in the data folder (hidden: it is not data), removed once
unpacked."""
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


# --- sources --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Transfer:
    """One file coming from a source: its bytes from `start` on."""

    stream: io.BufferedIOBase
    start: int
    """The first byte it sends (0 when the source sends the whole file)."""
    total: int | None
    """The whole file's size, when the source says it."""

    def read(self, size: int) -> bytes:
        """The next bytes, at most `size`, as soon as some are there (empty at the end)."""
        return self.stream.read1(size)


class Source(Protocol):
    """Where files come from: a URL (`HttpSource`) or a folder (`FolderSource`)."""

    def url(self, name: str) -> str:
        """Where file `name` is, for messages."""
        ...

    def size(self, name: str) -> int | None:
        """The size of file `name`, when the source says it.

        Raises:
            InputDataError: the source cannot be reached or has no such file.
        """
        ...

    def open(self, name: str, offset: int) -> AbstractContextManager[Transfer]:
        """File `name`, from byte `offset` on if the source can (else from its start).

        Raises:
            InputDataError: the source cannot be reached or has no such file.
            OSError, http.client.HTTPException: the connection broke (worth another try).
        """
        ...


def open_source(location: str) -> Source:
    """The source at `location`: an http(s) URL, a file:// URL or a local folder.

    Raises:
        ConfigError: for a URL of another scheme.
    """
    parsed = urllib.parse.urlsplit(location)
    if parsed.scheme in ("http", "https"):
        return HttpSource(location.rstrip("/"))
    if parsed.scheme == "file":
        return FolderSource(Path(urllib.request.url2pathname(parsed.path)))
    if parsed.scheme:
        msg = f"{location} is neither an http(s) or file:// URL nor a folder"
        raise ConfigError(msg)
    return FolderSource(Path(location).expanduser())


@dataclass(frozen=True)
class HttpSource:
    """Files under a base URL, with range requests where the server takes them."""

    base: str

    def url(self, name: str) -> str:
        """The file's URL."""
        return f"{self.base}/{urllib.parse.quote(name, safe='+%~')}"

    def _request(self, name: str, method: str, offset: int = 0) -> http.client.HTTPResponse:
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(self.url(name), headers=headers, method=method)
        try:
            response: http.client.HTTPResponse = urllib.request.urlopen(  # noqa: S310 - http(s) only
                request, timeout=TIMEOUT_S
            )
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 416 and offset:
                raise _RangeRefused from None
            msg = f"{self.url(name)}: HTTP {error.code} {error.reason}"
            raise InputDataError(msg) from None
        except urllib.error.URLError as error:
            msg = f"cannot reach {self.url(name)}: {_reason(error.reason)}"
            raise InputDataError(msg) from None
        return response

    def size(self, name: str) -> int | None:
        """The Content-Length of a HEAD request."""
        with self._request(name, "HEAD") as response:
            length = response.headers.get("Content-Length")
        return int(length) if length is not None else None

    @contextmanager
    def open(self, name: str, offset: int) -> Iterator[Transfer]:
        """A GET from `offset` (a range request); a server that refuses the range, or answers
        416 (the temporary file is not a prefix of the file), sends the whole file."""
        try:
            response = self._request(name, "GET", offset)
        except _RangeRefused:
            response = self._request(name, "GET")
        with response:
            if response.status == 206:
                match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                if match is None:
                    msg = f"{self.url(name)}: a partial answer without a readable Content-Range"
                    raise InputDataError(msg)
                total = None if match[2] == "*" else int(match[2])
                yield Transfer(response, int(match[1]), total)
                return
            length = response.headers.get("Content-Length")
            yield Transfer(response, 0, int(length) if length is not None else None)


class _RangeRefused(Exception):
    """The server answered a range request with 416."""


def _reason(reason: object) -> str:
    return str(getattr(reason, "strerror", None) or reason)


@dataclass(frozen=True)
class FolderSource:
    """Files of a local folder (a copy of the set, or a mounted share)."""

    folder: Path

    def url(self, name: str) -> str:
        """The file's path."""
        return str(self.folder / name)

    def size(self, name: str) -> int | None:
        """The file's size."""
        try:
            return (self.folder / name).stat().st_size
        except OSError as error:
            msg = f"cannot read {self.folder / name}: {error.strerror or error}"
            raise InputDataError(msg) from None

    @contextmanager
    def open(self, name: str, offset: int) -> Iterator[Transfer]:
        """The file from `offset` on."""
        try:
            stream = (self.folder / name).open("rb")
        except OSError as error:
            msg = f"cannot read {self.folder / name}: {error.strerror or error}"
            raise InputDataError(msg) from None
        with stream:
            total = os.fstat(stream.fileno()).st_size
            start = min(offset, total)
            stream.seek(start)
            yield Transfer(stream, start, total)


# --- downloading one file -------------------------------------------------------------------
@dataclass(frozen=True)
class Download:
    """One file to download: from `name` at the source to `target`."""

    name: str
    target: Path
    size: int | None

    @property
    def temporary(self) -> Path:
        """Where its bytes go until they are all there."""
        return self.target.with_name(temporary_name(self.target.name))

    def have(self) -> int:
        """Bytes an earlier attempt left in the temporary file that can be kept: none when
        there are more than the whole file's."""
        try:
            have = self.temporary.stat().st_size
        except FileNotFoundError:
            return 0
        return 0 if self.size is not None and have > self.size else have

    def remaining(self) -> int:
        """Bytes still to download (0 when the size is not known)."""
        return self.size - self.have() if self.size is not None else 0


def download(source: Source, item: Download, meter: Meter, stop: threading.Event) -> bool:
    """Download `item` (see the module doc); False when `stop` ended it first.

    Raises:
        InputDataError: the source has no such file, or cut every attempt short.
    """
    have = item.have()
    reason = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with source.open(item.name, have) as transfer:
                if transfer.start != have:
                    logger.info("%s: the source sends it whole: restarting it", item.name)
                    meter.expect(have)
                    have = transfer.start
                total = transfer.total
                # Unbuffered: what arrived is on disk for the next attempt, even after a crash.
                with item.temporary.open("r+b" if have else "wb", buffering=0) as out:
                    out.seek(have)
                    out.truncate()
                    while chunk := transfer.read(CHUNK):
                        if stop.is_set():
                            return False
                        out.write(chunk)
                        have += len(chunk)
                        meter.advance(len(chunk))
        except (OSError, http.client.HTTPException) as error:
            reason = f"the transfer broke after {have:,} bytes ({_reason(error) or 'cut'})"
        else:
            if total is None or have == total:
                os.replace(item.temporary, item.target)
                return True
            reason = f"the transfer ended at {have:,} of {total:,} bytes"
        if stop.is_set():
            return False
        if attempt < ATTEMPTS:
            logger.warning("%s: %s; resuming it", item.name, reason)
    msg = (
        f"{source.url(item.name)}: {reason}, {ATTEMPTS} times (its {have:,} bytes are kept: "
        f"hhar data fetch resumes it)"
    )
    raise InputDataError(msg)


_Result = TypeVar("_Result")


def in_parallel(
    tasks: Sequence[Callable[[], _Result]], workers: int, stop: threading.Event
) -> tuple[dict[int, _Result], list[InputDataError]]:
    """Run `tasks` on `workers` threads; the results of those that ran, by their number in
    `tasks`, and the errors of those that failed.

    The threads are daemons and this thread only waits for them, so that a signal reaches it
    at once: a first one sets `stop`, which the tasks watch; a second one leaves them.
    """
    results: dict[int, _Result] = {}
    errors: list[InputDataError] = []
    failures: list[BaseException] = []
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for number in range(len(tasks)):
        pending.put(number)

    def work() -> None:
        while not stop.is_set() and not failures:
            try:
                number = pending.get_nowait()
            except queue.Empty:
                return
            try:
                results[number] = tasks[number]()
            except InputDataError as error:
                errors.append(error)
            except BaseException as error:  # noqa: BLE001 - raised again by the caller's thread
                failures.append(error)

    threads = [
        threading.Thread(target=work, name=f"fetch-{number}", daemon=True)
        for number in range(max(1, min(workers, len(tasks))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    if failures:
        raise failures[0]
    return results, errors


# --- the real set -----------------------------------------------------------------------------
@dataclass(frozen=True)
class FetchResult:
    """What a fetch did."""

    folder: Path
    fetched: int
    """Files downloaded (or finished) now."""
    skipped: int
    """Files already whole in the folder."""
    bytes_fetched: int
    seconds: float


def refuse_other_files(folder: Path, ours: Sequence[str], what: str) -> None:
    """Refuse a folder that holds data files other than `ours` (another data set: a replay of
    the folder would mix them).

    Raises:
        ConfigError: naming one of them.
    """
    if not folder.exists():
        return
    if not folder.is_dir():
        msg = f"{folder} exists and is not a folder"
        raise ConfigError(msg)
    allowed = set(ours)
    others = sorted(
        path.name
        for path in folder.iterdir()
        if not path.name.startswith(("_", ".")) and path.name not in allowed
    )
    if others:
        msg = (
            f"{folder} holds another data set ({len(others)} files that are not {what}'s, "
            f"such as {others[0]}): fetch into another folder (--out) or remove them"
        )
        raise ConfigError(msg)


@dataclass(frozen=True)
class Plan:
    """What a fetch of the real set has to do."""

    todo: list[Download]
    skipped: int
    """Files already whole in the folder."""
    marker_fetched: int
    """Bytes of the ``_committed_`` marker fetched while planning (0 when it was there)."""


def plan_real(folder: Path, source: Source, workers: int, stop: threading.Event) -> Plan:
    """Check the source and the folder, fetch the ``_committed_`` marker, ask every other
    file's size: the downloads still to do.

    Raises:
        InputDataError: the source cannot be reached or is not the activity-data set.
        ConfigError: the folder holds another data set, or a file that is not the source's.
    """
    refuse_other_files(folder, real.PART_NAMES, "the real activity-data set")
    marker = real.COMMITTED_MARKER
    marker_size = _first_size(source, marker, COPY_HINT)
    folder.mkdir(parents=True, exist_ok=True)
    marker_download = Download(marker, folder / marker, marker_size)
    marker_fetched = 0
    if not _whole(marker_download):
        download(source, marker_download, _NO_METER, stop)
        marker_fetched = marker_download.target.stat().st_size
    _check_marker(folder / marker, source)
    others = [name for name in real.ENTRIES if name != marker]
    asks: list[Callable[[], int | None]] = [functools.partial(source.size, n) for n in others]
    sizes, errors = in_parallel(asks, workers, stop)
    if errors:
        raise errors[0]
    if stop.is_set():
        raise KeyboardInterrupt
    downloads = [Download(name, folder / name, sizes[n]) for n, name in enumerate(others)]
    todo = [item for item in downloads if not _whole(item)]
    skipped = len(downloads) - len(todo) + (0 if marker_fetched else 1)
    return Plan(todo, skipped, marker_fetched)


def _first_size(source: Source, name: str, hint: str) -> int | None:
    """The size of the first file asked for: the request that tells whether the source
    answers at all (its error then says how to use a copy instead).

    Raises:
        InputDataError: the source cannot be reached or has no such file.
    """
    try:
        return source.size(name)
    except InputDataError as error:
        msg = f"{error}: {hint}"
        raise InputDataError(msg) from None


def _whole(item: Download) -> bool:
    """True when the file is already in the folder with the source's size.

    Raises:
        ConfigError: when a file of that name is there with another size.
    """
    if not item.target.exists():
        return False
    size = item.target.stat().st_size
    if item.size is None or size == item.size:
        return True
    msg = (
        f"{item.target} is {size:,} bytes, the source's {item.name} {item.size:,}: the folder "
        f"holds another data set under the real set's names: fetch into another folder "
        f"(--out) or remove it"
    )
    raise ConfigError(msg)


def _check_marker(path: Path, source: Source) -> None:
    """The ``_committed_`` marker must list the real set's part files."""
    try:
        listed = json.loads(path.read_bytes())["added"]
    except (ValueError, KeyError, TypeError):
        listed = None
    if not isinstance(listed, list) or sorted(map(str, listed)) != sorted(real.PART_NAMES):
        path.unlink()
        msg = (
            f"{source.url(real.COMMITTED_MARKER)} does not list the activity-data set's "
            f"{real.REAL_FILES} part files: the source holds another data set; {COPY_HINT}"
        )
        raise InputDataError(msg)


class _NoMeter:
    def advance(self, count: int) -> None:
        """Nothing to show."""

    def expect(self, count: int) -> None:
        """Nothing to show."""


_NO_METER = _NoMeter()


def fetch_all(
    source: Source,
    downloads: Sequence[Download],
    workers: int,
    stop: threading.Event,
    meter: Meter,
) -> int:
    """Download `downloads`, `workers` at a time; the bytes fetched.

    Raises:
        InputDataError: when any file could not be fetched whole (the others are).
        KeyboardInterrupt: when `stop` was set (what arrived is kept for the next run).
    """
    before = sum(item.have() for item in downloads)
    results, errors = in_parallel(
        [functools.partial(download, source, item, meter, stop) for item in downloads],
        workers,
        stop,
    )
    fetched = sum(
        downloads[number].target.stat().st_size for number, done in results.items() if done
    )
    if errors:
        whole = sum(results.values())
        more = f" (and {len(errors) - 1} more files)" if len(errors) > 1 else ""
        msg = f"{errors[0]}{more}; {whole} of {len(downloads)} files arrived whole"
        raise InputDataError(msg)
    if stop.is_set():
        whole = sum(results.values())
        logger.warning(
            "stopped: %d of %d files whole; the others are kept as they are, "
            "hhar data fetch resumes them",
            whole,
            len(downloads),
        )
        raise KeyboardInterrupt
    return fetched - before


def fetch_real(
    folder: Path,
    location: str,
    workers: int,
    stop: threading.Event,
    progress: Callable[[int], AbstractContextManager[Meter]],
) -> FetchResult:
    """Fetch the real set from `location` into `folder` (see the module doc).

    Args:
        folder: the data folder (created if missing).
        location: the base URL or folder of the set's files.
        workers: files downloaded at once.
        stop: set it to stop; what arrived is kept, and KeyboardInterrupt raised.
        progress: a meter of so many bytes.

    Raises:
        InputDataError: the source cannot be reached, is not the set, or cut a file short.
        ConfigError: a bad location, or a folder that holds another data set.
    """
    started = time.perf_counter()
    source = open_source(location)
    plan = plan_real(folder, source, workers, stop)
    logger.info(
        "fetching %d files (%s MB) from %s into %s%s",
        len(plan.todo),
        f"{sum(item.remaining() for item in plan.todo) / 1e6:,.1f}",
        location,
        folder,
        f"; {plan.skipped} already whole" if plan.skipped else "",
    )
    with progress(sum(item.remaining() for item in plan.todo)) as meter:
        fetched = fetch_all(source, plan.todo, workers, stop, meter)
    return FetchResult(
        folder,
        len(real.ENTRIES) - plan.skipped,
        plan.skipped,
        fetched + plan.marker_fetched,
        time.perf_counter() - started,
    )


# --- the UCI archive --------------------------------------------------------------------------
@dataclass(frozen=True)
class UciResult:
    """What a UCI fetch left in the folder."""

    path: Path
    rows: int
    nexus4_rows: int
    fetched: bool
    """False when the file was already there."""


def fetch_uci(
    folder: Path,
    location: str,
    stop: threading.Event,
    progress: Callable[[int], AbstractContextManager[Meter]],
) -> UciResult:
    """Fetch the UCI archive from `location` (a URL or a file) and unpack its phones'
    gyroscope file into `folder`.

    Raises:
        InputDataError: the archive cannot be fetched or holds no such file.
        ConfigError: a bad location, or a folder that holds another data set.
    """
    target = folder / real.UCI_GYROSCOPE_FILE
    refuse_other_files(folder, [target.name], "the UCI phones' gyroscope file")
    if target.exists():
        return _uci_result(target, fetched=False)
    base, _, name = location.rstrip("/").rpartition("/")
    source = open_source(base or ".")
    size = _first_size(source, name, "point HHAR_UCI_URL (--uci-url) at a copy of the archive")
    folder.mkdir(parents=True, exist_ok=True)
    archive = Download(name, folder / UCI_ARCHIVE, size)
    if not archive.target.exists():
        logger.info("fetching the UCI HHAR archive from %s", location)
        with progress(archive.remaining()) as meter:
            if not download(source, archive, meter, stop):
                raise KeyboardInterrupt
    unpack_member(archive.target, real.UCI_GYROSCOPE_FILE, target, progress)
    archive.target.unlink()
    return _uci_result(target, fetched=True)


def unpack_member(
    archive: Path,
    member: str,
    target: Path,
    progress: Callable[[int], AbstractContextManager[Meter]],
) -> None:
    """Unpack the file named `member` (wherever it is in `archive`, in a zip inside it too) to
    `target`, under a temporary name until it is whole (zip checks its CRC as it is read).

    Raises:
        InputDataError: the archive is not a whole zip file (it is then removed), or holds no
            such member.
    """
    temporary = target.with_name(temporary_name(target.name))
    inner = target.with_name(temporary_name("inner.zip"))
    try:
        with zipfile.ZipFile(archive) as outer:
            entry = _find(outer, member)
            if entry is None:
                nested = [info for info in outer.infolist() if info.filename.endswith(".zip")]
                for info in nested:
                    _copy(outer, info, inner, progress)
                    entry = _copy_from_inner(inner, member, temporary, progress)
                    if entry is not None:
                        break
                if entry is None:
                    names = ", ".join(info.filename for info in outer.infolist()[:5])
                    msg = f"{archive} holds no {member} (it holds {names})"
                    raise InputDataError(msg)
            else:
                _copy(outer, entry, temporary, progress)
    except zipfile.BadZipFile as error:
        archive.unlink()
        msg = (
            f"the downloaded archive is not a whole zip file ({error}); it is removed: "
            f"hhar data fetch --source uci downloads it again"
        )
        raise InputDataError(msg) from None
    finally:
        inner.unlink(missing_ok=True)
    os.replace(temporary, target)


def _copy_from_inner(
    inner: Path,
    member: str,
    target: Path,
    progress: Callable[[int], AbstractContextManager[Meter]],
) -> zipfile.ZipInfo | None:
    """Copy `member` out of the zip `inner` (unpacked from the archive); None when it is not
    there, or `inner` is no zip file (an empty one is not)."""
    try:
        with zipfile.ZipFile(inner) as zipped:
            entry = _find(zipped, member)
            if entry is not None:
                _copy(zipped, entry, target, progress)
            return entry
    except zipfile.BadZipFile:
        if zipfile.is_zipfile(inner):
            raise  # a damaged member of a real zip: the archive is not whole
        return None


def _find(archive: zipfile.ZipFile, member: str) -> zipfile.ZipInfo | None:
    return next(
        (info for info in archive.infolist() if info.filename.rpartition("/")[2] == member),
        None,
    )


def _copy(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    progress: Callable[[int], AbstractContextManager[Meter]],
) -> None:
    logger.info("unpacking %s (%s bytes)", info.filename, f"{info.file_size:,}")
    with progress(info.file_size) as meter, archive.open(info) as source:
        with target.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
                meter.advance(len(chunk))


def _uci_result(path: Path, fetched: bool) -> UciResult:
    """Rows of the UCI file (its header aside) and those of the Nexus 4 phones (``,nexus4,``
    in the Model column; a block keeps the end of the one before, where a match may start)."""
    rows = nexus4 = 0
    model = b"," + real.MODEL.encode() + b","
    with path.open("rb") as lines:
        header = lines.readline().startswith(b"Index")
        lines.seek(0)
        carried = last = b""
        while block := lines.read(1 << 24):
            rows += block.count(b"\n")
            nexus4 += (carried + block).count(model)
            carried, last = block[1 - len(model) :], block[-1:]
    rows += last not in (b"", b"\n")
    return UciResult(path, rows - header, nexus4, fetched)
