"""The fused engine's plain-Python derivations equal the reference queries run by Spark.

A property test (hypothesis) draws events, totals them per fine key as the engine does, derives
every query in Python and compares the rows with the same query in `queries` run by Spark over
the events: empty input, the label "null" and lone devices included.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hhar_stream.processor import derive
from hhar_stream.processor.catalogue import CATALOGUE
from hhar_stream.processor.derive import FineTotals
from hhar_stream.processor.queries import FINE_GRAIN, historical_stats
from hhar_stream.schemas import ACTIVITY_LABELS, SensorEvent
from hhar_stream.schemas.spark import to_spark_schema
from hhar_stream.settings import Settings

DERIVED = [query for query in CATALOGUE.values() if query.derive is not None]

reading = st.floats(min_value=-20, max_value=20, allow_nan=False, allow_infinity=False)
event = st.builds(
    lambda device, gt, user, x, y, z: SensorEvent(
        Arrival_Time=1424686800000,
        Creation_Time=1,
        Device=device,
        Index=0,
        Model=device.split("_")[0],
        User=user,
        gt=gt,
        x=x,
        y=y,
        z=z,
    ),
    device=st.sampled_from(["nexus4_1", "nexus4_2", "s3_1", "gear_1"]),
    gt=st.sampled_from(ACTIVITY_LABELS),
    user=st.sampled_from("abci"),
    x=reading,
    y=reading,
    z=reading,
)


def fine_totals(events: list[SensorEvent]) -> FineTotals:
    """What the fused engine keeps: count and sums per (Device, gt, Model, User)."""
    totals: dict = {}
    for item in events:
        wire = item.model_dump(by_alias=True)
        sums = totals.setdefault(tuple(wire[name] for name in FINE_GRAIN), [0, 0.0, 0.0, 0.0])
        sums[0] += 1
        sums[1] += item.x
        sums[2] += item.y
        sums[3] += item.z
    return totals


def assert_rows_equal(query: str, derived: list[dict], reference: list[dict]) -> None:
    key_fields = CATALOGUE[query].record.key_fields

    def by_key(rows: list[dict]) -> dict:
        return {tuple(row[name] for name in key_fields): row for row in rows}

    got, want = by_key(derived), by_key(reference)
    assert len(got) == len(derived) and got.keys() == want.keys(), query
    for key, row in want.items():
        assert got[key].keys() == row.keys(), (query, key)
        for field, value in row.items():
            if isinstance(value, float):
                # Float sums in another order differ in the last bits; near zero, absolutely.
                assert math.isclose(got[key][field], value, rel_tol=1e-9, abs_tol=1e-9), (
                    query,
                    key,
                    field,
                )
            else:
                assert got[key][field] == value, (query, key, field)


@pytest.mark.spark
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(event, max_size=60), history=st.lists(event, min_size=1, max_size=20))
@example(
    events=[],
    history=[
        SensorEvent(
            Arrival_Time=1,
            Creation_Time=1,
            Device="nexus4_1",
            Index=0,
            Model="nexus4",
            User="a",
            gt="null",
            x=0.5,
            y=0.0,
            z=-1.0,
        )
    ],
)
def test_every_derivation_equals_its_spark_query(spark, events, history) -> None:
    schema = to_spark_schema(SensorEvent)
    frame = spark.createDataFrame([e.model_dump(by_alias=True) for e in events], schema=schema)
    past = spark.createDataFrame([e.model_dump(by_alias=True) for e in history], schema=schema)
    historical_frame = historical_stats(past)
    historical = {(row["gt"], row["Model"]): row.asDict() for row in historical_frame.collect()}
    totals = fine_totals(events)
    for query in DERIVED:
        parameters = query.parameters(Settings())
        assert query.on_events is not None and query.derive is not None
        spark_parameters = dict(parameters)
        if query.uses_history:
            spark_parameters["historical"] = historical_frame
            parameters["historical"] = historical
        reference = [row.asDict() for row in query.on_events(frame, **spark_parameters).collect()]
        assert_rows_equal(query.name, query.derive(totals, **parameters), reference)


def test_before_any_event_the_total_is_zero_and_the_subtotals_are_empty() -> None:
    assert derive.total_count({}) == [{"count": 0}]
    assert derive.device_activity_cube({}) == []
    assert derive.device_activity_rollup({}) == []
    assert derive.activity_stats({}) == []


def test_subtotal_rows_are_told_apart_from_the_null_label() -> None:
    totals = {
        ("nexus4_1", "null", "nexus4", "a"): [2, 0.0, 0.0, 0.0],
        ("nexus4_1", "sit", "nexus4", "b"): [3, 0.0, 0.0, 0.0],
    }
    rows = {
        (row["Device"], row["gt"], row["grouping_id"]): row["count"]
        for row in derive.device_activity_cube(totals)
    }
    assert rows == {
        ("nexus4_1", "null", 0): 2,
        ("nexus4_1", "sit", 0): 3,
        ("nexus4_1", None, 1): 5,
        (None, "null", 2): 2,
        (None, "sit", 2): 3,
        (None, None, 3): 5,
    }


def test_stairs_needs_all_three_conditions() -> None:
    totals = {
        ("nexus4_1", "stairsup", "nexus4", "a"): [1, 0.0, 0.0, 0.0],
        ("nexus4_1", "sit", "nexus4", "b"): [5, 0.0, 0.0, 0.0],
        ("nexus4_2", "stairsdown", "nexus4", "b"): [7, 0.0, 0.0, 0.0],
        ("nexus4_1", "stairsdown", "nexus4", "c"): [9, 0.0, 0.0, 0.0],
    }
    assert derive.stairs_by_user(totals, users=["a", "b"], device="nexus4_1") == [
        {"User": "a", "count": 1}
    ]
