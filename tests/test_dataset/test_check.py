"""`hhar data check` and `identify`: a folder held to a set's figures, one finding per line."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.cli import error_line, hhar_env, run_hhar
from support.replica import replica_figures, write_replica

from hhar_stream.dataset import check, real
from hhar_stream.dataset.check import (
    REAL_SET,
    ROW,
    SetFigures,
    check_folder,
    describe_source,
    identify,
    scan_folder,
    temporary_name,
)
from hhar_stream.generator.synth import write_dataset
from hhar_stream.schemas import ACTIVITY_LABELS, SensorEvent

PART = real.PART_NAMES[12]


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_replica(tmp_path_factory.mktemp("replica") / "activity-data")


@pytest.fixture(scope="module")
def figures(replica: Path) -> SetFigures:
    return replica_figures(replica)


@pytest.fixture
def copy(replica: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(replica, tmp_path / "activity-data"))


def lines_of(report: check.CheckReport) -> dict[str, str]:
    return {finding.topic: finding.line() for finding in report.findings}


# --- the row layout ---------------------------------------------------------------------------
def real_json_line(real_samples: Path) -> bytes:
    """Snippet C: one row of part-00000 as a French lab quoted it (line breaks are the
    author's)."""
    text = (real_samples / "activity_data_and_uci_rows__small_snippets.md").read_text()
    block = text.split("## C.", 1)[1].split("```", 2)[1]
    return "".join(block.split()).encode()


def test_the_row_pattern_takes_a_real_row(real_samples: Path) -> None:
    line = real_json_line(real_samples)
    assert line.startswith(b'{"Arrival_Time":1424686735175,') and line.endswith(b"}")
    match = ROW.fullmatch(line)
    assert match is not None
    assert match.groups() == (b"nexus4_1", b"nexus4", b"stand")


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
readings = st.floats(allow_nan=False, allow_infinity=False, width=32)


@given(
    arrival=st.integers(0, 253_402_300_799_999),
    creation=st.integers(-(2**63), 2**63 - 1),
    index=st.integers(0, 2**63 - 1),
    device=names,
    model=names,
    user=names,
    gt=st.sampled_from(ACTIVITY_LABELS),
    x=readings,
    y=readings,
    z=readings,
)
def test_the_row_pattern_takes_every_event_as_the_real_files_write_it(
    arrival: int,
    creation: int,
    index: int,
    device: str,
    model: str,
    user: str,
    gt: str,
    x: float,
    y: float,
    z: float,
) -> None:
    event = SensorEvent(
        arrival_time=arrival,
        creation_time=creation,
        device=device,
        index=index,
        model=model,
        user=user,
        gt=gt,
        x=x,
        y=y,
        z=z,
    )
    match = ROW.fullmatch(event.to_json().encode())
    assert match is not None
    assert match.groups() == (device.encode(), model.encode(), gt.encode())


@pytest.mark.parametrize(
    "line",
    [
        b'{"Arrival_Time":1424686735175,"Creation_Time":1424686733176178965,"Device":"nexus4_1"',
        b'{"Arrival_Time":1,"Creation_Time":2,"Device":"d","Index":3,"Model":"m","User":"u",'
        b'"gt":"run","x":0.1,"y":0.2,"z":0.3}',
        b'{"Creation_Time":2,"Arrival_Time":1,"Device":"d","Index":3,"Model":"m","User":"u",'
        b'"gt":"sit","x":0.1,"y":0.2,"z":0.3}',
        b'{"Arrival_Time":1,"Creation_Time":2,"Device":"d","Index":3,"Model":"m","User":"u",'
        b'"gt":"sit","x":"0.1","y":0.2,"z":0.3}',
    ],
    ids=["cut", "unknown-label", "key-order", "string-reading"],
)
def test_the_row_pattern_refuses_what_is_not_a_row_of_the_real_files(line: bytes) -> None:
    assert ROW.fullmatch(line) is None


# --- checking a folder ------------------------------------------------------------------------
def test_a_whole_set_agrees_in_every_finding(replica: Path, figures: SetFigures) -> None:
    report = check_folder(replica, figures)
    assert report.ok
    assert [finding.topic for finding in report.findings] == [
        "entries",
        "contents",
        "bytes",
        "rows",
        "rows per file",
        "schema",
        "Model x Device",
        "Device x gt",
    ]
    assert [f.ok for f in report.findings] == [True, True, True, True, None, True, True, True]
    assert report.verdict == f"{replica} holds the replica, whole: every figure agrees"
    found = lines_of(report)
    assert found["rows"] == f"ok   rows: {figures.rows:,} in all, as the replica"
    assert found["rows per file"].startswith("note rows per file: 20 in each file (no per-file")
    assert (
        found["entries"]
        == "ok   entries: 83: the 80 part files and 3 markers of the replica, by name"
    )


def test_the_replica_is_not_the_real_set(replica: Path) -> None:
    report = check_folder(replica, REAL_SET)
    assert not report.ok
    found = lines_of(report)
    assert found["entries"].startswith("ok   entries: 83: the 80 part files and 3 markers")
    assert found["contents"].startswith("FAIL contents: 81 of 83 files differ from the real set's")
    assert found["rows"] == "FAIL rows: 1,600 in all; the real set has 6,240,991"
    assert found["schema"].startswith("ok   schema: every one of the 1,600 lines is a SensorEvent")
    assert found["Device x gt"].startswith("FAIL Device x gt: 14 of 14 counts differ")
    assert report.verdict == f"{replica} does not hold the real set, whole (see the findings above)"
    assert identify(replica).kind == "altered"


def test_a_file_cut_in_a_line_fails_contents_rows_and_schema(
    copy: Path, figures: SetFigures
) -> None:
    data = (copy / PART).read_bytes()
    (copy / PART).write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 40])
    report = check_folder(copy, figures)
    assert not report.ok
    found = lines_of(report)
    assert found["contents"] == (
        f"FAIL contents: 1 of 83 files differ from the replica's ({PART}): other files, or "
        "damaged ones (remove them and run hhar data fetch again)"
    )
    assert (
        found["rows"] == f"FAIL rows: {figures.rows - 1:,} in all; the replica has {figures.rows:,}"
    )
    assert found["schema"].startswith(
        f"FAIL schema: 1 of {figures.rows:,} lines are not rows in the real files' layout "
        f"(the first: {PART} line 20: "
    )
    assert found["entries"].startswith("ok")


def test_missing_and_unfinished_files_make_a_partial_set(copy: Path, figures: SetFigures) -> None:
    (copy / PART).rename(copy / temporary_name(PART))
    (copy / real.SUCCESS_MARKER).unlink()
    report = check_folder(copy, figures)
    assert lines_of(report)["entries"] == (
        "FAIL entries: 2 of the replica's 83 missing; 1 unfinished downloads (hhar data fetch "
        "resumes them)"
    )
    assert report.verdict == f"{copy} holds part of the replica: hhar data fetch completes it"
    assert identify(copy).kind == "partial"


def test_a_line_in_another_notation_is_a_row_but_not_the_real_layout(
    copy: Path, figures: SetFigures
) -> None:
    lines = (copy / PART).read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b",", b", ")
    (copy / PART).write_bytes(b"".join(lines))
    report = check_folder(copy, figures)
    found = lines_of(report)
    assert found["rows"].startswith("ok")
    assert found["Device x gt"].startswith("ok")
    assert found["schema"] == (
        f"FAIL schema: 1 of {figures.rows:,} lines are not rows in the real files' layout (the "
        f"first: {PART} line 4: a valid row, written otherwise than the real files (spaces, "
        "key order?))"
    )


def test_small_blocks_find_what_one_block_finds(
    copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = (copy / PART).read_bytes().splitlines(keepends=True)
    lines[5] = lines[5].replace(b'"gt":"', b'"gt": "')
    (copy / PART).write_bytes(b"".join(lines)[:-30])  # the last line cut, without its newline
    whole = check.scan_file(copy / PART)
    assert (whole.lines, whole.rows, whole.odd) == (20, 19, 2)
    assert whole.first_odd == (
        6,
        "a valid row, written otherwise than the real files (spaces, key order?)",
    )
    monkeypatch.setattr(check, "BLOCK", 97)
    assert check.scan_file(copy / PART) == whole


def test_several_processes_find_what_one_finds(
    replica: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = sorted(os.listdir(replica))
    alone = scan_folder(replica, names, lambda name: not name.startswith("_"))
    monkeypatch.setattr(check, "PARALLEL_BYTES", 0)
    together = scan_folder(replica, names, lambda name: not name.startswith("_"))
    assert together == alone


# --- which set a folder holds -----------------------------------------------------------------
def test_identify_tells_the_sets_apart(tmp_path: Path, replica: Path) -> None:
    assert identify(tmp_path).kind == "empty"
    generated = tmp_path / "generated"
    write_dataset(generated, rows=2000, files=4, seed=1)
    assert identify(generated).kind == "generated"
    assert identify(generated).text.startswith("a generated HHAR-like data set (4 part files of")
    # The real names with the real bytes in all (sparse files): the real set, as far as names
    # and sizes tell.
    whole = tmp_path / "whole"
    whole.mkdir()
    for name in real.MARKERS:
        (whole / name).write_bytes(b"")
    size, rest = divmod(real.REAL_JSON_BYTES, real.REAL_FILES)
    for number, name in enumerate(real.PART_NAMES):
        with (whole / name).open("wb") as part:
            part.truncate(size + (rest if number == 0 else 0))
    assert identify(whole) == check.Identity(
        "real", "the real activity-data set (80 part files, 1,186,523,176 bytes)"
    )
    uci = tmp_path / "uci"
    uci.mkdir()
    (uci / real.UCI_GYROSCOPE_FILE).write_text("Index,Arrival_Time\n")
    assert identify(uci).kind == "uci"
    (replica.parent / "other").mkdir(exist_ok=True)
    (replica.parent / "other" / "rows.json").write_text("{}\n")
    assert identify(replica.parent / "other").kind == "other"


def test_describe_source_names_folders_and_files(replica: Path) -> None:
    size = sum((replica / name).stat().st_size for name in real.PART_NAMES)
    assert describe_source(replica) == (
        f"the real activity-data set's names, not its size ({size:,} of 1,186,523,176 bytes: "
        f"hhar data check says what differs) in {replica}"
    )
    assert describe_source(replica / PART) == (
        f"{replica / PART}, one part file of the real activity-data set"
    )
    assert describe_source(f"{replica}/part-*.json").endswith(
        "(files, not a data folder: not the whole real activity-data set)"
    )


# --- the command ------------------------------------------------------------------------------
def test_the_command_names_a_generated_set_and_how_close_its_shares_are(tmp_path: Path) -> None:
    folder = tmp_path / "activity-data"
    write_dataset(folder, rows=40_000, seed=4)
    result = run_hhar(["data", "check", str(folder)], hhar_env(), tmp_path / "cli")
    assert result.returncode == 1, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == f"checking {folder} against the real activity-data set"
    assert re.fullmatch(
        r"FAIL entries: 82 of the real set's 83 missing; 80 files not of .*", out[1]
    )
    assert out[2] == "FAIL contents: none of the real set's part files is here"
    assert out[4] == "FAIL rows: 40,000 in all; the real set has 6,240,991"
    assert re.fullmatch(
        rf"{re.escape(str(folder))} holds a generated data set \(hhar data synth\), not the real "
        r"one: its Device x gt shares are within 0\.\d{3} percentage points of the real set's "
        r"\(the largest gap: nexus4_\d \w+\); hhar data fetch gets the real set "
        r"\([\d.]+ MB read in [\d.]+ s\)",
        out[-1],
    )
    assert len(out) == 10


def test_the_command_defaults_to_the_data_folder_and_refuses_a_missing_one(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nothing"
    result = run_hhar(["data", "check"], hhar_env(HHAR_DATA=str(missing)), tmp_path / "cli")
    assert result.returncode == 1
    assert error_line(result.stderr) == (
        f"error: {missing} is not a folder: hhar data fetch gets the real activity-data set"
    )
    assert result.stdout == ""
