"""parse_events: valid rows come through as events, everything SensorEvent refuses is set aside
with a reason, by the same rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hhar_stream.processor.parse import (
    EVENT_COLUMNS,
    EVENT_SCHEMA,
    invalid_records,
    parse_events,
    valid_events,
)
from hhar_stream.schemas import SensorEvent, parse_event
from hhar_stream.schemas.events import MAX_EPOCH_MILLIS
from hhar_stream.schemas.results import BAD_VALUE_MAX_CHARS, BadRecord

pytestmark = pytest.mark.spark

GOOD = (
    '{"Arrival_Time":1424686735175,"Creation_Time":1424686733176178965,"Device":"nexus4_1",'
    '"Index":35,"Model":"nexus4","User":"g","gt":"stand","x":0.0014038086,"y":5.0354E-4,'
    '"z":-0.0124053955}'
)


def variant(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


VALID = [
    GOOD,
    variant('"x":0.0014038086', '"x":1'),  # an integer is a fine double, for pydantic too
    variant('"gt":"stand"', '"gt":"null"'),  # the unlabelled class is the string "null"
    variant('"Device":"nexus4_1"', '"Device" : "nexus4_1"') + "  ",
    variant('"Creation_Time":1424686733176178965', '"Creation_Time":-5'),
]

INVALID = {
    "not json": "not a JSON object",
    "": "not a JSON object",
    "null": "not a JSON object",
    "[1,2]": "not a JSON object",
    GOOD + " and more": "text after the JSON object",
    GOOD.replace(',"Device":"nexus4_1"', ""): "missing: Device",
    GOOD[:-1] + ',"extra":1}': "unexpected: extra",
    variant('"Device":"nexus4_1"', '"Device":5'): "Device: null or not a string",
    variant('"Device":"nexus4_1"', '"Device":{"a":1}'): "Device: null or not a string",
    variant('"User":"g"', '"User":null'): "User: null or not a string",
    variant('"Index":35', '"Index":1.5'): "Index: null or not an integer",
    variant('"Index":35', '"Index":"35"'): "Index: null or not an integer",
    variant('"Index":35', '"Index":99999999999999999999'): "Index: null or not an integer",
    variant('"x":0.0014038086', '"x":"abc"'): "x: null or not a number",
    variant('"x":0.0014038086', '"x":true'): "x: null or not a number",
    variant('"Index":35', '"Index":-1'): "Index: must be >= 0",
    variant('"Arrival_Time":1424686735175', '"Arrival_Time":-1'): "Arrival_Time: must be >= 0",
    variant(
        '"Arrival_Time":1424686735175', f'"Arrival_Time":{MAX_EPOCH_MILLIS + 1}'
    ): f"Arrival_Time: must be <= {MAX_EPOCH_MILLIS}",
    variant('"Model":"nexus4"', '"Model":""'): "Model: shorter than 1 characters",
    variant('"User":"g"', '"User":"' + "u" * 65 + '"'): "User: longer than 64 characters",
    variant('"gt":"stand"', '"gt":"run"'): "gt: not one of stand, sit, walk, bike, stairsup, "
    "stairsdown, null",
    variant('"gt":"stand"', '"gt":null'): "gt: null or not a string",
    variant('"y":5.0354E-4', '"y":"NaN"'): "y: not a finite number",
    variant('"z":-0.0124053955', '"z":1e400'): "z: not a finite number",
    # Spark's JSON reader takes single quotes, NaN and Infinity: none may pass as an event.
    GOOD[:-1] + ",'extra':1}": "unexpected: extra",
    variant('"User":"g"', '"User":\'g\',"k":1'): "unexpected: k",
    variant('"User":"g"', '"User":NaN,"k":1'): "not a JSON object",
    variant('"User":"g"', '"User":NaN'): "not a JSON object",
    variant('"User":"g"', '"User":Infinity'): "not a JSON object",
}


def raw_messages(spark, values: list[str]):
    rows = [(0, offset, value) for offset, value in enumerate(values)]
    return spark.createDataFrame(rows, "partition int, offset long, value string")


def test_the_rules_are_sensor_events_rules() -> None:
    for value in VALID:
        parse_event(value)
    for value in INVALID:
        with pytest.raises(ValidationError):
            parse_event(value)


def test_valid_messages_become_events_with_the_exact_values(spark) -> None:
    parsed = parse_events(raw_messages(spark, VALID))
    events = valid_events(parsed)
    assert events.schema == EVENT_SCHEMA
    assert invalid_records(parsed).count() == 0
    read_back = [SensorEvent.model_validate(row.asDict()) for row in events.collect()]
    expected = [parse_event(value) for value in VALID]
    assert sorted(read_back, key=SensorEvent.to_json) == sorted(expected, key=SensorEvent.to_json)
    assert parse_event(GOOD).creation_time == 1424686733176178965  # 19 digits, not rounded
    assert parse_event(GOOD) in read_back


def test_every_bad_message_is_set_aside_with_its_reason(spark) -> None:
    values = list(INVALID)
    parsed = parse_events(raw_messages(spark, values + [GOOD]))
    assert valid_events(parsed).count() == 1
    bad = invalid_records(parsed)
    assert bad.columns == [
        "partition",
        "offset",
        "reason",
        "value",
        "value_bytes",
        "value_truncated",
    ]
    reasons = {row["offset"]: (row["reason"], row["value"]) for row in bad.collect()}
    assert reasons == {offset: (INVALID[value], value) for offset, value in enumerate(values)}


def test_parse_keeps_the_source_columns_and_adds_events_and_reason(spark) -> None:
    parsed = parse_events(raw_messages(spark, [GOOD]))
    assert parsed.columns == ["partition", "offset", "value", *EVENT_COLUMNS, "reason"]


def test_a_value_that_is_not_utf8_is_bad_even_when_it_parses(spark) -> None:
    """Python's decoding would turn the two bytes into U+FFFD and pass the event."""
    value = variant('"Model":"nexus4"', '"Model":"nex\xff\xfeus"').encode("latin-1")
    raw = spark.createDataFrame(
        [(0, 0, bytearray(value))], "partition int, offset long, value binary"
    )
    parsed = parse_events(raw)
    assert valid_events(parsed).count() == 0
    (row,) = invalid_records(parsed).collect()
    assert row["reason"] == "not UTF-8 text"
    assert row["value"] == value.decode("utf-8", errors="replace")
    assert (row["value_bytes"], row["value_truncated"]) == (len(value), False)


def test_a_bad_record_keeps_a_bounded_prefix_of_a_huge_value(spark) -> None:
    value = '{"Device":"' + "é" * 600_000 + '"}'
    raw = spark.createDataFrame(
        [(0, 0, value), (0, 1, None)], "partition int, offset long, value string"
    )
    huge, null = invalid_records(parse_events(raw)).orderBy("offset").collect()
    assert huge["value"] == value[:BAD_VALUE_MAX_CHARS]
    assert (huge["value_bytes"], huge["value_truncated"]) == (len(value.encode()), True)
    assert (null["value"], null["value_bytes"], null["value_truncated"]) == (None, None, False)
    record = BadRecord.model_validate(
        huge.asDict() | {"query": "bad_records", "batch_id": 0, "timestamp": None}
    )
    assert len(record.value_json()) < 10_000
