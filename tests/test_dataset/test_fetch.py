"""`hhar data fetch` against a local server of a replica: whole, cut and resumed, a server that
refuses ranges, a file that ends short, a server that is down, a folder of another set, a copy
in a folder. Whatever happens, no file is taken for whole that is not."""

from __future__ import annotations

import signal
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.cli import HharProcess, error_line, hhar_env, run_hhar
from support.polling import poll_until
from support.replica import ReplicaServer, files_of, write_replica

from hhar_stream.daemons import free_port
from hhar_stream.dataset import real
from hhar_stream.dataset.check import temporary_name
from hhar_stream.dataset.fetch import ATTEMPTS, fetch_real
from hhar_stream.errors import ConfigError, InputDataError
from hhar_stream.generator.synth import write_dataset
from hhar_stream.producer.sources import read_rows, resolve_source

PART = real.PART_NAMES[3]
MARKER = real.COMMITTED_MARKER


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_replica(tmp_path_factory.mktemp("replica") / "activity-data")


@pytest.fixture
def server(replica: Path) -> Iterator[ReplicaServer]:
    with ReplicaServer(replica) as serving:
        yield serving


class CountingMeter:
    """A progress meter that remembers what it was told."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.lock = threading.Lock()

    def advance(self, count: int) -> None:
        with self.lock:
            self.done += count

    def expect(self, count: int) -> None:
        with self.lock:
            self.total += count


class Meters:
    """The meters a fetch asked for."""

    def __init__(self) -> None:
        self.made: list[CountingMeter] = []

    @contextmanager
    def __call__(self, total: int) -> Iterator[CountingMeter]:
        self.made.append(CountingMeter(total))
        yield self.made[-1]


def fetch(folder: Path, url: str, meters: Meters | None = None):
    return fetch_real(folder, url, 4, threading.Event(), meters or Meters())


def assert_nothing_taken_for_whole_that_is_not(folder: Path, replica: Path) -> None:
    """Every file under its own name is the replica's, byte for byte; a temporary file holds
    the beginning of its file."""
    theirs = files_of(replica)
    for name, data in files_of(folder).items():
        if name in theirs:
            assert data == theirs[name], f"{name} is taken for whole and is not"
        else:
            original = name.removeprefix(".").removesuffix(".part")
            assert name == temporary_name(original), name
            assert theirs[original].startswith(data), f"{name} is no beginning of {original}"


def test_a_fetch_gets_every_file_whole_and_a_second_one_skips_them(
    replica: Path, server: ReplicaServer, tmp_path: Path
) -> None:
    meters = Meters()
    result = fetch(tmp_path / "data", server.url, meters)
    assert files_of(tmp_path / "data") == files_of(replica)
    assert (result.fetched, result.skipped) == (83, 0)
    assert result.bytes_fetched == sum(len(data) for data in files_of(replica).values())
    [meter] = meters.made
    assert meter.done == meter.total == result.bytes_fetched - len(files_of(replica)[MARKER])
    assert {r.name for r in server.requests if r.method == "GET"} == set(real.ENTRIES)
    assert all(r.range is None and r.status == 200 for r in server.requests)

    server.requests.clear()
    again = fetch(tmp_path / "data", server.url)
    assert (again.fetched, again.skipped, again.bytes_fetched) == (0, 83, 0)
    assert [r for r in server.requests if r.method == "GET"] == []


def test_a_transfer_cut_in_the_middle_is_resumed_with_a_range_request(
    replica: Path, server: ReplicaServer, tmp_path: Path
) -> None:
    half = (replica / PART).stat().st_size // 2
    server.cut_once[PART] = half
    fetch(tmp_path / "data", server.url)
    assert files_of(tmp_path / "data") == files_of(replica)
    assert [(r.range, r.status) for r in server.gets(PART)] == [
        (None, 200),
        (f"bytes={half}-", 206),
    ]


def test_a_fetch_stopped_in_the_middle_is_resumed_by_the_next_one(
    replica: Path, server: ReplicaServer, tmp_path: Path
) -> None:
    """Ctrl+C during a slow download keeps what arrived; the next fetch asks for the rest."""
    folder = tmp_path / "data"
    server.throttle = 0.05  # 20 KB/s per file: a part file in a fifth of a second
    process = HharProcess(
        ["data", "fetch", "--out", str(folder), "--url", server.url],
        hhar_env(),
        tmp_path / "cli",
        "fetch",
    )
    try:

        def partway() -> bool:
            temporary = [path for path in folder.glob(".*.part") if path.stat().st_size]
            return bool(temporary) and any(folder.glob("part-*.json"))

        poll_until(partway, 60, "some files whole and some on their way")
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 130
    finally:
        process.crash()
    assert "SIGINT: stopping the download" in process.stderr
    assert process.stderr.splitlines()[-1] == "interrupted"
    assert_nothing_taken_for_whole_that_is_not(folder, replica)
    kept = {
        path.name.removeprefix(".").removesuffix(".part"): path.stat().st_size
        for path in folder.glob(".*.part")
        if path.stat().st_size
    }
    assert kept

    server.throttle = 0.0
    server.requests.clear()
    result = fetch(folder, server.url)
    assert files_of(folder) == files_of(replica)
    assert result.skipped == 83 - result.fetched > 0
    for name, size in kept.items():
        assert [(r.range, r.status) for r in server.gets(name)] == [(f"bytes={size}-", 206)]


def test_a_server_that_refuses_ranges_restarts_the_file_and_never_appends(
    replica: Path, server: ReplicaServer, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    left = b"left by a run against another server\n"
    (folder / temporary_name(PART)).write_bytes(left)
    server.ranges = False
    meters = Meters()
    fetch(folder, server.url, meters)
    assert files_of(folder) == files_of(replica)
    assert [(r.range, r.status) for r in server.gets(PART)] == [(f"bytes={len(left)}-", 200)]
    [meter] = meters.made
    assert meter.done == meter.total


def test_a_file_that_ends_short_is_never_taken_for_whole(
    replica: Path, server: ReplicaServer, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    size = (replica / PART).stat().st_size
    server.short[PART] = 1000
    with pytest.raises(InputDataError) as failure:
        fetch(folder, server.url)
    assert str(failure.value) == (
        f"{server.url}/{PART}: the transfer ended at 1,000 of {size:,} bytes, {ATTEMPTS} "
        "times (its 1,000 bytes are kept: hhar data fetch resumes it); 81 of 82 files arrived "
        "whole"
    )
    assert not (folder / PART).exists()
    assert (folder / temporary_name(PART)).read_bytes() == (replica / PART).read_bytes()[:1000]
    assert_nothing_taken_for_whole_that_is_not(folder, replica)
    assert [r.range for r in server.gets(PART)] == [None, "bytes=1000-", "bytes=1000-"]

    del server.short[PART]
    fetch(folder, server.url)
    assert files_of(folder) == files_of(replica)


def test_the_command_ends_short_in_one_error_line(
    replica: Path, server: ReplicaServer, tmp_path: Path
) -> None:
    server.short[PART] = 1000
    folder = tmp_path / "data"
    result = run_hhar(
        ["data", "fetch", "--out", str(folder), "--url", server.url], hhar_env(), tmp_path / "cli"
    )
    assert result.returncode == 1
    assert error_line(result.stderr).startswith(
        f"error: {server.url}/{PART}: the transfer ended at 1,000 of "
    )
    assert_nothing_taken_for_whole_that_is_not(folder, replica)


def test_a_server_that_is_down_is_one_line_saying_what_was_tried(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/activity-data"
    folder = tmp_path / "data"
    result = run_hhar(
        ["data", "fetch", "--out", str(folder)], hhar_env(HHAR_DATA_URL=url), tmp_path / "cli"
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: cannot reach {url}/{MARKER}: Connection refused: to fetch from a copy, point "
        "HHAR_DATA_URL (--url) at a mirror's URL, a file:// URL or a local folder holding the "
        "set's files"
    ]
    assert not folder.exists()


def test_a_source_without_the_set_is_refused_before_any_download(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with ReplicaServer(empty) as server, pytest.raises(InputDataError) as failure:
        fetch(tmp_path / "data", server.url)
    assert str(failure.value) == (
        f"{server.url}/{MARKER}: HTTP 404 Not Found: to fetch from a copy, point HHAR_DATA_URL "
        "(--url) at a mirror's URL, a file:// URL or a local folder holding the set's files"
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / MARKER).write_text(real.committed_marker(real.PART_NAMES[:79]))
    with ReplicaServer(other) as server, pytest.raises(InputDataError) as failure:
        fetch(tmp_path / "data", server.url)
    assert str(failure.value).startswith(
        f"{server.url}/{MARKER} does not list the activity-data set's 80 part files: the "
        "source holds another data set"
    )
    assert files_of(tmp_path / "data") == {}


def test_a_folder_that_holds_another_set_is_left_as_it_is(
    replica: Path, server: ReplicaServer, tmp_path: Path
) -> None:
    generated = tmp_path / "generated"
    write_dataset(generated, rows=2000, seed=1)
    before = files_of(generated)
    result = run_hhar(
        ["data", "fetch", "--out", str(generated), "--url", server.url],
        hhar_env(),
        tmp_path / "cli",
    )
    assert result.returncode == 2
    line = error_line(result.stderr)
    assert line.startswith(
        f"error: {generated} holds another data set (80 files that are not the real "
        "activity-data set's, such as part-00000-tid-"
    )
    assert line.endswith("): fetch into another folder (--out) or remove them")
    assert files_of(generated) == before
    assert server.requests == []

    # The real names with other rows (a replica of another seed): refused at the first file
    # whose size differs from the source's.
    lookalike = write_replica(tmp_path / "lookalike", seed=8)
    before = files_of(lookalike)
    with pytest.raises(ConfigError, match="holds another data set under the real set's names"):
        fetch(lookalike, server.url)
    assert files_of(lookalike) == before


def test_a_copy_in_a_folder_or_at_a_file_url_does_as_well(replica: Path, tmp_path: Path) -> None:
    fetch(tmp_path / "from-folder", str(replica))
    assert files_of(tmp_path / "from-folder") == files_of(replica)
    fetch(tmp_path / "from-url", replica.as_uri())
    assert files_of(tmp_path / "from-url") == files_of(replica)


def test_the_command_ends_by_checking_the_folder(
    replica: Path, server: ReplicaServer, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    result = run_hhar(
        ["data", "fetch", "--out", str(folder), "--url", server.url], hhar_env(), tmp_path / "cli"
    )
    out = result.stdout.splitlines()
    assert out[0].startswith("fetched 83 files (0.3 MB) in ")
    assert out[1] == f"checking {folder} against the real activity-data set"
    assert out[2] == "ok   entries: 83: the 80 part files and 3 markers of the real set, by name"
    assert out[3].startswith("FAIL contents: 81 of 83 files differ from the real set's")
    assert out[-1].startswith(f"{folder} does not hold the real set, whole")
    assert result.returncode == 1  # a replica: whole, but not the real set
    assert "Traceback" not in result.stderr
    assert files_of(folder) == files_of(replica)


# --- the UCI archive ---------------------------------------------------------------------------
UCI_NAME = "heterogeneity+activity+recognition.zip"


def uci_archive(folder: Path, real_samples: Path) -> bytes:
    """An archive laid out as UCI's: the phones' files in a zip inside the zip, with a header
    line and real gyroscope rows."""
    gyroscope = real_samples / "uci_Phones_gyroscope_first10000rows__rdavilao_COMP_Taller5.csv"
    csv = b"Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt\n" + (
        gyroscope.read_bytes()
    )
    inner = folder / "Activity recognition exp.zip"
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("Activity recognition exp/Phones_accelerometer.csv", b"Index\n")
        zipped.writestr("Activity recognition exp/Phones_gyroscope.csv", csv)
    with zipfile.ZipFile(folder / UCI_NAME, "w") as outer:
        outer.writestr("Still exp.zip", b"")  # not the one: no zip of the phones' files
        outer.write(inner, inner.name)
    inner.unlink()
    return csv


def test_the_uci_archive_is_fetched_and_its_gyroscope_file_unpacked(
    tmp_path: Path, real_samples: Path
) -> None:
    served = tmp_path / "uci"
    served.mkdir()
    csv = uci_archive(served, real_samples)
    folder = tmp_path / "uci-hhar"
    with ReplicaServer(served) as server:
        args = ["data", "fetch", "--source", "uci", "--out", str(folder)]
        env = hhar_env(HHAR_UCI_URL=f"{server.url}/{UCI_NAME}")
        result = run_hhar(args, env, tmp_path / "cli")
        assert result.returncode == 0, result.stderr
        assert files_of(folder) == {real.UCI_GYROSCOPE_FILE: csv}
        assert result.stdout == (
            f"{folder / real.UCI_GYROSCOPE_FILE}: 10,000 rows of every phone's gyroscope, "
            "10,000 of them from the Nexus 4 phones (the activity-data set's 6,240,991 rows are "
            f"such rows); hhar produce --source {folder} replays it\n"
        )
        server.requests.clear()
        again = run_hhar(args, env, tmp_path / "cli-again")
        assert again.returncode == 0
        assert again.stdout.endswith(
            f", already there; hhar produce --source {folder} replays it\n"
        )
        assert server.requests == []
    rows = list(read_rows(resolve_source(folder)))
    assert len(rows) == 10_000
    assert [reason for *_, reason in rows if reason] == []


def test_an_archive_that_is_not_a_zip_is_refused_and_removed(tmp_path: Path) -> None:
    served = tmp_path / "uci"
    served.mkdir()
    (served / UCI_NAME).write_bytes(b"<html>Service Unavailable</html>")
    folder = tmp_path / "uci-hhar"
    with ReplicaServer(served) as server:
        result = run_hhar(
            ["data", "fetch", "--source", "uci", "--out", str(folder)],
            hhar_env(HHAR_UCI_URL=f"{server.url}/{UCI_NAME}"),
            tmp_path / "cli",
        )
    assert result.returncode == 1
    assert error_line(result.stderr) == (
        "error: the downloaded archive is not a whole zip file (File is not a zip file); it is "
        "removed: hhar data fetch --source uci downloads it again"
    )
    assert files_of(folder) == {}


def test_fetch_refuses_a_bad_parallel_count(tmp_path: Path) -> None:
    result = run_hhar(["data", "fetch", "--parallel", "0"], hhar_env(), tmp_path / "cli")
    assert result.returncode == 2
    assert error_line(result.stderr) == "error: --parallel must be at least 1 (got 0)"
