"""Resolving ``--source`` and reading rows in order: folders, files, globs, gzip, resume."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hhar_stream.errors import InputDataError
from hhar_stream.producer.sources import (
    MAX_LINE_BYTES,
    FilePosition,
    read_rows,
    resolve_source,
)
from hhar_stream.schemas import (
    SensorEvent,
    describe_validation_error,
    parse_event,
    parse_event_fields,
)

from .helpers import START_MS, write_part_files


def test_a_folder_of_part_files_skips_markers_and_non_data(tmp_path: Path) -> None:
    write_part_files(tmp_path, files=3, rows_per_file=4)
    (tmp_path / ".part-00000-c000.json.crc").write_text("crc")
    (tmp_path / "README.md").write_text("not data")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "part-9.json").write_text("{}")
    names = [file.name for file in resolve_source(tmp_path)]
    assert names == [f"part-{number:05d}-c000.json" for number in range(3)]


def test_a_single_file_a_glob_and_gzip(tmp_path: Path) -> None:
    [first, second] = write_part_files(tmp_path / "a", files=2, rows_per_file=3)
    packed = tmp_path / "b" / "part-00002.json.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(second.read_bytes()))
    odd_name = tmp_path / "events.data"
    odd_name.write_bytes(first.read_bytes())

    [single] = resolve_source(odd_name)
    assert (single.name, single.kind, single.compressed) == ("events.data", "json", False)
    matched = resolve_source(str(tmp_path / "*" / "part-*"))
    assert [(file.name, file.compressed) for file in matched] == [
        ("a/part-00000-c000.json", False),
        ("a/part-00001-c000.json", False),
        ("b/part-00002.json.gz", True),
    ]
    rows = list(read_rows(matched, "by-file"))
    assert [payload for _, file_no, _, payload, _, _ in rows if file_no == 2] == [
        line.encode() for line in second.read_text().splitlines()
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "missing", "source not found: {root}/missing"),
        (lambda root: root / "nothing-*.json", "no data files in {root}/nothing-*.json"),
        (lambda root: root, "no data files in {root} "),
    ],
)
def test_bad_sources_are_one_line_errors(tmp_path: Path, make, message: str) -> None:
    (tmp_path / "_SUCCESS").write_text("")
    with pytest.raises(InputDataError) as caught:
        resolve_source(make(tmp_path))
    assert str(caught.value).startswith(message.format(root=tmp_path))
    assert "\n" not in str(caught.value)


def test_merged_order_replays_the_recording(tmp_path: Path) -> None:
    """Round-robin part files merge back into the one time-ordered stream."""
    write_part_files(tmp_path, files=4, rows_per_file=25)
    merged = list(read_rows(resolve_source(tmp_path), "merged"))
    assert [key for key, *_ in merged] == [START_MS + n * 5 for n in range(100)]
    assert [event["index"] for *_, event, _ in merged] == list(range(100))
    by_file = list(read_rows(resolve_source(tmp_path), "by-file"))
    assert [file_no for _, file_no, *_ in by_file] == [n // 25 for n in range(100)]
    assert sorted(by_file) == merged


def test_invalid_rows_keep_their_place_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    [path] = write_part_files(tmp_path, files=1, rows_per_file=3)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", "", lines[1], "  ", lines[2]]) + "\n")
    rows = list(read_rows(resolve_source(path)))
    assert [(line_no, reason is None) for _, _, line_no, _, _, reason in rows] == [
        (1, True),
        (2, False),
        (4, True),
        (6, True),
    ]
    invalid = rows[1]
    assert invalid[0] == rows[0][0]  # carries the key of the row before it
    assert invalid[3] == b"{not json"
    assert invalid[5].startswith("row: Invalid JSON")


def test_a_line_longer_than_the_limit_is_invalid_unparsed(tmp_path: Path) -> None:
    valid = LINE.encode()
    padded = valid[:-1] + b" " * MAX_LINE_BYTES + b"}"  # valid JSON, but too long
    (tmp_path / "part-00000.json").write_bytes(b"\n".join([padded, valid, b""]))
    rows = list(read_rows(resolve_source(tmp_path)))
    assert [(payload, reason) for *_, payload, _, reason in rows] == [
        (padded, f"line of {len(padded):,} bytes: longer than {MAX_LINE_BYTES:,}"),
        (valid, None),
    ]


def test_resuming_skips_the_consumed_lines(tmp_path: Path) -> None:
    write_part_files(tmp_path, files=3, rows_per_file=10)
    files = resolve_source(tmp_path)
    everything = list(read_rows(files))
    done, rest = everything[:13], everything[13:]
    positions = []
    for file_no in range(3):
        mine = [row for row in done if row[1] == file_no]
        positions.append(
            FilePosition(lines=mine[-1][2], key=mine[-1][0]) if mine else FilePosition()
        )
    assert list(read_rows(files, "merged", positions)) == rest


def test_resuming_a_csv_file_with_header(tmp_path: Path) -> None:
    path = tmp_path / "uci.csv"
    rows = [
        f"{n},{START_MS + n},{(START_MS + n) * 1_000_000},0.1,0.2,0.3,a,nexus4,nexus4_1,sit"
        for n in range(5)
    ]
    path.write_text(
        "Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt\n" + "\n".join(rows) + "\n"
    )
    files = resolve_source(path)
    everything = list(read_rows(files))
    assert [line_no for _, _, line_no, *_ in everything] == [2, 3, 4, 5, 6]
    assert json.loads(everything[0][3])["Creation_Time"] == START_MS * 1_000_000
    assert dict(parse_event(everything[0][3])) == everything[0][4]
    resumed = list(read_rows(files, "merged", [FilePosition(lines=3, key=START_MS + 1)]))
    assert resumed == everything[2:]


LINE = (
    '{"Arrival_Time":1424686735175,"Creation_Time":1424686733176178965,"Device":"nexus4_1",'
    '"Index":35,"Model":"nexus4","User":"g","gt":"stand","x":0.0014038086,"y":5.0354E-4,'
    '"z":-0.0124053955}'
)


@given(
    st.lists(
        st.tuples(
            st.integers(0, len(LINE)),
            st.integers(0, len(LINE)),
            st.sampled_from(['"', "1", "-", "e", ".", "{", ",", ":", "null", ""]),
        ),
        max_size=3,
    )
)
def test_the_fields_validator_is_the_model_s(edits: list[tuple[int, int, str]]) -> None:
    """Lines mangled at random: `parse_event_fields` accepts and rejects exactly what
    `SensorEvent`'s own validator does by wire names, with the same values and the same
    errors (perhaps in another order)."""
    line = LINE
    for start, end, text in edits:
        line = line[: min(start, end)] + text + line[max(start, end) :]
    try:
        expected = dict(SensorEvent.model_validate_json(line, by_name=False))
    except ValidationError as error:
        with pytest.raises(ValidationError) as caught:
            parse_event_fields(line)
        assert sorted(describe_validation_error(caught.value).split("; ")) == sorted(
            describe_validation_error(error).split("; ")
        )
    else:
        assert parse_event_fields(line) == expected
