"""The generated folder: the real layout, round-robin part files, determinism, the CLI."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from hhar_stream.cli import main
from hhar_stream.dataset.real import committed_marker
from hhar_stream.generator.synth import iter_lines, write_dataset

ROWS = 12_345
SEED = 5
PART = re.compile(
    r"part-(\d{5})-tid-(\d{18})-([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}"
    r"-[0-9a-f]{12})-0-c000\.json"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "activity-data"
    write_dataset(out, rows=ROWS, seed=SEED)
    return out


def part_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.name.startswith("part-"))


def digest(folder: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
    }


def test_folder_has_the_real_layout(folder: Path) -> None:
    parts = part_files(folder)
    matches = [PART.fullmatch(path.name) for path in parts]
    assert all(matches)
    assert [int(match.group(1)) for match in matches] == list(range(80))
    assert len({match.group(2) for match in matches}) == 1
    assert len({match.group(3) for match in matches}) == 1
    tid = matches[0].group(2)
    markers = sorted(path.name for path in folder.iterdir() if not path.name.startswith("part-"))
    assert markers == ["_SUCCESS", f"_committed_{tid}", f"_started_{tid}"]
    assert (folder / "_SUCCESS").read_bytes() == b""
    assert (folder / f"_started_{tid}").read_bytes() == b""
    committed = (folder / f"_committed_{tid}").read_text()
    assert json.loads(committed) == {"added": [path.name for path in parts], "removed": []}
    # The real folder's marker for its 80 files (18-digit tid) is 6,824 bytes.
    assert len(committed) == 6824
    assert committed == committed_marker([path.name for path in parts])


def test_part_files_are_round_robin_samples_of_the_time_ordered_stream(folder: Path) -> None:
    files = [path.read_text().splitlines(keepends=True) for path in part_files(folder)]
    assert sorted({len(lines) for lines in files}) == [ROWS // 80, ROWS // 80 + 1]
    assert [len(lines) for lines in files] == sorted((len(lines) for lines in files), reverse=True)
    stream = list(iter_lines(ROWS, SEED))
    assert len(stream) == ROWS
    for i, line in enumerate(stream):
        assert files[i % 80][i // 80] == line


def test_every_part_file_spans_the_recording_with_the_same_activity_mix(tmp_path: Path) -> None:
    write_dataset(tmp_path / "eight", rows=40_000, files=8, seed=SEED)
    overall: Counter = Counter()
    per_file = []
    spans = []
    for path in part_files(tmp_path / "eight"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        mix = Counter(row["gt"] for row in rows)
        overall += mix
        per_file.append((mix, len(rows)))
        spans.append((rows[0]["Arrival_Time"], rows[-1]["Arrival_Time"]))
    total = sum(overall.values())
    for mix, count in per_file:
        for gt, n in overall.items():
            assert abs(mix[gt] / count - n / total) < 0.005, gt
    first, last = min(start for start, _ in spans), max(end for _, end in spans)
    for start, end in spans:
        assert start - first < 1000 and last - end < 1000


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(
    folder: Path, tmp_path: Path
) -> None:
    write_dataset(tmp_path / "again", rows=ROWS, seed=SEED)
    assert digest(tmp_path / "again") == digest(folder)
    write_dataset(tmp_path / "other", rows=ROWS, seed=SEED + 1)
    other = digest(tmp_path / "other")
    assert set(other) != set(digest(folder))
    assert sorted(other.values()) != sorted(digest(folder).values())


def test_cli_writes_the_folder_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert (
        main(["data", "synth", "--out", str(out), "--rows", "3000", "--files", "4", "--seed", "9"])
        == 0
    )
    assert capsys.readouterr().out.startswith("wrote 3,000 rows in 4 part files (")
    write_dataset(tmp_path / "api", rows=3000, files=4, seed=9)
    assert digest(out) == digest(tmp_path / "api")


def test_cli_defaults_to_the_data_and_seed_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HHAR_DATA", str(tmp_path / "from-env"))
    monkeypatch.setenv("HHAR_SEED", "9")
    assert main(["data", "synth", "--rows", "3000", "--files", "4"]) == 0
    write_dataset(tmp_path / "api", rows=3000, files=4, seed=9)
    assert digest(tmp_path / "from-env") == digest(tmp_path / "api")


def test_force_replaces_a_data_set_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    args = ["data", "synth", "--out", str(out), "--rows", "2000", "--files", "3"]
    assert main([*args, "--seed", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--seed", "2"]) == 2
    assert capsys.readouterr().err == (
        f"error: {out} is not empty: pass --force to replace the data set in it\n"
    )
    assert main([*args, "--seed", "2", "--force"]) == 0
    write_dataset(tmp_path / "api", rows=2000, files=3, seed=2)
    assert digest(out) == digest(tmp_path / "api")
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main([*args, "--force"]) == 2
    assert capsys.readouterr().err == (
        f"error: {out} holds files that are not part of a data set (notes.txt); not replacing\n"
    )
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rows", "999"], "--rows must be at least 1,000 (got 999)"),
        (["--files", "0"], "--files must be at least 1 (got 0)"),
        (["--seed", "-3"], "the seed must be a non-negative integer (got -3)"),
    ],
)
def test_bad_options_end_in_one_error_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    assert main(["data", "synth", "--out", str(tmp_path / "x"), *extra]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "x").exists()


def test_an_interrupted_run_leaves_no_partial_data_set(tmp_path: Path) -> None:
    calls = []

    def interrupt(count: int) -> None:
        calls.append(count)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "partial", rows=100_000, on_rows=interrupt)
    assert calls
    assert not (tmp_path / "partial").exists()
