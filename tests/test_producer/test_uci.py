"""The UCI HHAR CSV reader, on crafted lines and on the real UCI files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hhar_stream.producer.sources import read_rows, resolve_source
from hhar_stream.producer.uci import UCI_COLUMNS, InvalidRowError, UciLayout, parse_uci_line
from hhar_stream.schemas import SensorEvent, parse_event

COMMA = UciLayout(",", UCI_COLUMNS, has_header=False)
ROW = (
    "0,1424696633909,1424696631914042029,0.013748169,-0.0006256103500000001,-0.023376465,"
    "a,nexus4,nexus4_1,stand"
)


def test_a_row_becomes_the_event_with_every_digit() -> None:
    event = parse_uci_line(ROW, COMMA)
    assert event.index == 0
    assert event.arrival_time == 1424696633909
    assert event.creation_time == 1424696631914042029
    assert (event.x, event.y, event.z) == (0.013748169, -0.0006256103500000001, -0.023376465)
    assert (event.user, event.model, event.device, event.gt) == ("a", "nexus4", "nexus4_1", "stand")


def test_the_null_label_is_the_string_null() -> None:
    assert parse_uci_line(ROW.replace("stand", "null"), COMMA).gt == "null"


def test_layout_detection() -> None:
    assert UciLayout.detect(ROW) == COMMA
    header = UciLayout.detect("\t".join(UCI_COLUMNS))
    assert header == UciLayout("\t", UCI_COLUMNS, has_header=True)
    shuffled = UciLayout.detect("gt,Device,Model,User,z,y,x,Creation_Time,Arrival_Time,Index")
    assert shuffled.columns == tuple(reversed(UCI_COLUMNS))
    row = ",".join(reversed(ROW.split(",")))
    assert parse_uci_line(row, shuffled) == parse_uci_line(ROW, COMMA)
    with pytest.raises(InvalidRowError, match="is not the UCI layout"):
        UciLayout.detect("Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,label")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            ("1424696631914042029", "1.42469663191404E+018"),
            "Creation_Time: '1.42469663191404E+018' is in scientific notation: its digits were "
            "rounded (by a spreadsheet?), so the integer is lost",
        ),
        (("1424696633909", "1424696633909.5"), "Arrival_Time: '1424696633909.5' is not an integer"),
        (("0.013748169", "nan"), "x: 'nan' is not a finite number"),
        (("-0.023376465", "-Infinity"), "z: '-Infinity' is not a finite number"),
        (("0.013748169", "1_0.5"), "x: '1_0.5' is not a number"),
        (("0.013748169", "abc"), "x: 'abc' is not a number"),
        (
            ("stand", "jump"),
            "gt: Input should be 'stand', 'sit', 'walk', 'bike', 'stairsup', "
            "'stairsdown' or 'null'",
        ),
        ((",a,", ",,"), "User: String should have at least 1 character"),
        (("0,", "-1,"), "Index: Input should be greater than or equal to 0"),
        ((",stand", ""), "expected 10 fields, found 9"),
        ((",stand", ",stand,extra"), "expected 10 fields, found 11"),
    ],
)
def test_invalid_rows_are_rejected_with_a_reason(change: tuple[str, str], reason: str) -> None:
    with pytest.raises(InvalidRowError) as caught:
        parse_uci_line(ROW.replace(*change, 1), COMMA)
    assert str(caught.value) == reason


def _uci_rows(path: Path) -> list[list[str]]:
    text = path.read_text()
    delimiter = "\t" if "\t" in text.splitlines()[0] else ","
    rows = [row for row in csv.reader(text.splitlines(), delimiter=delimiter) if row]
    return rows[1:] if rows[0][0] == "Index" else rows


def test_the_real_uci_files(real_samples: Path) -> None:
    """Every row of the real files is read; mangled Creation_Times are rejected, never rounded."""
    files = resolve_source(real_samples / "uci_*.csv")
    assert len(files) == 6
    for file in files:
        expected = _uci_rows(file.path)
        rows = list(read_rows([file], "by-file"))
        assert len(rows) == len(expected), file.name
        mangled = "E+" in expected[0][2]
        for (_, _, _, payload, event, reason), fields in zip(rows, expected, strict=True):
            if mangled:
                assert event is None
                assert reason.startswith(f"Creation_Time: {fields[2]!r} is in scientific notation")
                assert payload.decode().split("\t" if "\t" in payload.decode() else ",") == fields
                continue
            assert reason is None, reason
            event = SensorEvent.model_validate(event)
            assert event.index == int(fields[0])
            assert event.arrival_time == int(fields[1])
            assert event.creation_time == int(fields[2])
            assert (event.x, event.y, event.z) == tuple(float(value) for value in fields[3:6])
            assert [event.user, event.model, event.device, event.gt] == fields[6:]
            assert parse_event(payload) == event


def test_the_tab_separated_file_with_header(real_samples: Path) -> None:
    [file] = resolve_source(
        real_samples / "uci_Phones_gyroscope_sample7008rows_TABSEPARATED__paipradeep_"
        "HumanActivityRecognition.csv"
    )
    rows = list(read_rows([file], "by-file"))
    assert len(rows) == 7008
    assert rows[0][2] == 2  # line 1 is the header
    assert all(event is None for _, _, _, _, event, _ in rows)
