"""Result records: one model per query, keys and values as the result topics carry them."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pydantic import ValidationError

from hhar_stream.processor.catalogue import BAD_RECORDS, QUERY_NAMES
from hhar_stream.schemas.results import (
    RESULT_RECORDS,
    DeviceActivitySubtotal,
    TotalCount,
    WindowedActivity,
    parse_result_value,
)


def test_every_query_has_a_record_model() -> None:
    assert set(RESULT_RECORDS) == {*QUERY_NAMES, BAD_RECORDS}


def test_key_fields_are_fields_of_their_model() -> None:
    for model in RESULT_RECORDS.values():
        wire = {field.alias or name for name, field in model.model_fields.items()}
        assert set(model.key_fields) <= wire, model.__name__


def test_a_subtotal_key_tells_a_null_label_from_all_activities() -> None:
    label = DeviceActivitySubtotal(
        query="device_activity_cube",
        batch_id=1,
        Device="nexus4_1",
        gt="null",
        grouping_id=0,
        count=5,
    )
    subtotal = DeviceActivitySubtotal(
        query="device_activity_cube", batch_id=1, Device="nexus4_1", gt=None, grouping_id=1, count=9
    )
    assert label.key_json() == '{"Device":"nexus4_1","gt":"null","grouping_id":0}'
    assert subtotal.key_json() == '{"Device":"nexus4_1","gt":null,"grouping_id":1}'
    assert json.loads(subtotal.value_json()) == {
        "query": "device_activity_cube",
        "batch_id": 1,
        "Device": "nexus4_1",
        "gt": None,
        "grouping_id": 1,
        "count": 9,
    }


def test_a_global_count_has_the_empty_key() -> None:
    assert TotalCount(query="total_count", batch_id=0, count=3).key_json() == "{}"


def test_values_parse_back_into_their_model() -> None:
    window = WindowedActivity(
        query="windowed_activity",
        batch_id=4,
        window_start=dt.datetime(2015, 2, 23, 10, 10, tzinfo=dt.UTC),
        window_end=dt.datetime(2015, 2, 23, 10, 20, tzinfo=dt.UTC),
        Device="nexus4_2",
        gt="walk",
        count=17,
    )
    value = window.value_json()
    assert '"window_start":"2015-02-23T10:10:00Z"' in value
    assert parse_result_value(value.encode()) == window
    assert window.key_json() == (
        '{"window_start":"2015-02-23T10:10:00Z","Device":"nexus4_2","gt":"walk"}'
    )


@pytest.mark.parametrize(
    "value",
    [
        b"nope",
        b"[]",
        b'{"query":"elsewhere","batch_id":0}',
        b'{"query":"total_count","batch_id":0}',
        b'{"query":"total_count","batch_id":0,"count":1,"extra":2}',
    ],
)
def test_values_that_are_not_records_are_refused(value: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - ValidationError is a ValueError too
        parse_result_value(value)


def test_records_are_frozen() -> None:
    record = TotalCount(query="total_count", batch_id=0, count=3)
    with pytest.raises(ValidationError):
        record.count = 4
