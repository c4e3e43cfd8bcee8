"""`hhar demo`'s first line: which data it replays, and what it runs to get it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hhar_stream.apps.demo import announce_data
from hhar_stream.generator.synth import write_dataset
from hhar_stream.settings import Settings


def test_an_empty_data_folder_is_generated_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "activity-data"
    assert announce_data(Settings(data=folder), rows=5000) == [
        "synth",
        "--out",
        str(folder),
        "--rows",
        "5000",
    ]
    assert capsys.readouterr().out == (
        f"data: generating 5,000 HHAR-like rows into {folder}, then replaying them (a generated "
        "set: hhar data fetch gets the real one)\n"
    )


def test_a_generated_set_is_replayed_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "activity-data"
    write_dataset(folder, rows=2000, files=4, seed=1)
    assert announce_data(Settings(data=folder), rows=5000) is None
    line = capsys.readouterr().out
    assert line.startswith("data: replaying a generated HHAR-like data set (4 part files of ")
    assert line.endswith(f"hhar data fetch gets the real one) in {folder}\n")


def test_with_hhar_fetch_a_folder_without_the_real_set_is_fetched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "activity-data"
    write_dataset(folder, rows=2000, files=4, seed=1)
    assert announce_data(Settings(data=folder, fetch=True), rows=5000) == [
        "fetch",
        "--out",
        str(folder),
    ]
    assert capsys.readouterr().out == (
        f"data: fetching the real activity-data set into {folder} (hhar data fetch), then "
        "replaying it\n"
    )
