"""SensorEvent: derivation, exact round trip of real rows, rejection of bad values."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from hhar_stream.cli import main
from hhar_stream.schemas import (
    WIRE_FIELDS,
    SensorEvent,
    describe_validation_error,
    java_double,
    parse_event,
    sensor_event_json_schema,
)

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "sensor_event.schema.json"

# The data set's printSchema, as Spark printed it for the real activity-data folder.
PRINTED_SCHEMA = """\
root
 |-- Arrival_Time: long (nullable = true)
 |-- Creation_Time: long (nullable = true)
 |-- Device: string (nullable = true)
 |-- Index: long (nullable = true)
 |-- Model: string (nullable = true)
 |-- User: string (nullable = true)
 |-- gt: string (nullable = true)
 |-- x: double (nullable = true)
 |-- y: double (nullable = true)
 |-- z: double (nullable = true)
"""

REAL_JSON_LINE = (
    '{"Arrival_Time":1424686735175,"Creation_Time":1424686733176178965,"Device":"nexus4_1",'
    '"Index":35,"Model":"nexus4","User":"g","gt":"stand","x":0.0014038086,"y":5.0354E-4,'
    '"z":-0.0124053955}'
)


def show_table_rows(path: Path) -> list[list[str]]:
    """Data rows of a Spark show() table with the activity-data header."""
    rows, header = [], None
    for line in path.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().lstrip("/ ").strip("|").split("|")]
        if cells[:2] == ["Arrival_Time", "Creation_Time"]:
            header = cells
        elif header and len(cells) == len(header) and re.fullmatch(r"\d{13}", cells[0]):
            rows.append(cells)
    return rows


def as_json_line(cells: list[str]) -> str:
    """The JSON line the real files hold for a show() row: numbers exactly as shown."""
    values = dict(zip(WIRE_FIELDS, cells, strict=True))
    parts = []
    for name in WIRE_FIELDS:
        text = values[name]
        parts.append(
            f'"{name}":{text}'
            if name not in ("Device", "Model", "User", "gt")
            else f'"{name}":{json.dumps(text)}'
        )
    return "{" + ",".join(parts) + "}"


def test_printed_schema_is_the_data_sets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == PRINTED_SCHEMA


@pytest.mark.spark
def test_spark_schema_is_derived_in_the_real_order(spark) -> None:
    from pyspark.sql.types import StructType
    from pyspark.testing import assertSchemaEqual

    from hhar_stream.schemas.spark import to_spark_schema

    expected = StructType.fromDDL(
        "Arrival_Time long, Creation_Time long, Device string, Index long, Model string, "
        "User string, gt string, x double, y double, z double"
    )
    assertSchemaEqual(to_spark_schema(SensorEvent), expected)
    assert tuple(to_spark_schema(SensorEvent).fieldNames()) == WIRE_FIELDS


def test_committed_json_schema_file_is_the_derived_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == sensor_event_json_schema()
    assert main(["schema", "--json-schema"]) == 0
    assert json.loads(capsys.readouterr().out) == sensor_event_json_schema()


def test_json_schema_names_the_wire_fields() -> None:
    schema = sensor_event_json_schema()
    assert list(schema["properties"]) == list(WIRE_FIELDS)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["gt"]["enum"][-1] == "null"


def test_real_json_line_round_trips_exactly() -> None:
    event = parse_event(REAL_JSON_LINE)
    assert event.creation_time == 1424686733176178965
    assert event.y == 5.0354e-4
    assert event.to_json() == REAL_JSON_LINE


@pytest.mark.parametrize(
    "sample",
    [
        "activity_data_part00000_first20rows__cnoam_spark_local_env.txt",
        "activity_data_and_uci_rows__small_snippets.md",
    ],
)
def test_real_show_rows_round_trip_exactly(real_samples: Path, sample: str) -> None:
    rows = show_table_rows(real_samples / sample)
    assert rows, f"no rows found in {sample}"
    for cells in rows:
        line = as_json_line(cells)
        assert parse_event(line).to_json() == line


def test_every_real_reading_is_written_as_the_real_files_write_it(real_samples: Path) -> None:
    name = "activity_data_stream_json_1000consecutive_rows__tombresee_Prairie-Fire__extracted.tsv"
    path = real_samples / name
    with path.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == 1000
    for row in rows:
        for axis in ("x", "y", "z"):
            assert java_double(float(row[axis])) == row[axis]


def test_unlabelled_class_is_the_string_null() -> None:
    event = parse_event(REAL_JSON_LINE.replace('"stand"', '"null"'))
    assert event.gt == "null"
    with pytest.raises(ValidationError):
        parse_event(REAL_JSON_LINE.replace('"stand"', "null"))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (('"Index":35', '"Index":-1'), "Index: Input should be greater than or equal to 0"),
        (('"Index":35', '"Index":"35"'), "Index: Input should be a valid integer"),
        (('"Index":35', '"Index":35.0'), "Index: Input should be a valid integer"),
        (('"gt":"stand"', '"gt":"fly"'), "gt: Input should be 'stand', 'sit', 'walk'"),
        (('"x":0.0014038086', '"x":NaN'), "x: Input should be a finite number"),
        (('"x":0.0014038086', '"x":Infinity'), "x: Input should be a finite number"),
        (('"x":0.0014038086', '"x":"0.1"'), "x: Input should be a valid number"),
        (('"Index":35,', '"Index":35,"extra":1,'), "extra: Extra inputs are not permitted"),
        (('"Device":"nexus4_1",', ""), "Device: Field required"),
        (("1424686733176178965", "14246867331761789650"), "Creation_Time: Input should be less"),
        (("}", ""), "row: Invalid JSON"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_reason(change: tuple[str, str], reason: str) -> None:
    bad = REAL_JSON_LINE.replace(*change, 1)
    with pytest.raises(ValidationError) as caught:
        parse_event(bad)
    described = describe_validation_error(caught.value)
    assert described.startswith(reason), described
    assert "\n" not in described


def test_java_double_formats() -> None:
    cases = {
        5.0354e-4: "5.0354E-4",
        -3.814697e-4: "-3.814697E-4",
        0.0078125: "0.0078125",
        1e-3: "0.001",
        5e-5: "5.0E-5",
        1e7: "1.0E7",
        123.0: "123.0",
        0.0: "0.0",
        1.52587890625e-5: "1.52587890625E-5",
    }
    for value, text in cases.items():
        assert java_double(value) == text
    assert java_double(-0.0) == "-0.0"
    with pytest.raises(ValueError, match="not a finite number"):
        java_double(float("nan"))
