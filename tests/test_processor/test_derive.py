"""The fused engine's plain-Python derivations equal the reference queries run by Spark, and
the rows it writes batch by batch add up to the rows of its final totals.

Two property tests (hypothesis): events drawn at random go through the engine's own micro-batch
job (`BatchAggregation`, run by Spark) and `EngineState.merge`, and every query derived in Python
equals the same query in `queries` run by Spark over the events (empty input, the label "null"
and lone devices included); and batches of aggregate rows merged one after the other, the
changed rows of each written and folded latest per key as a compacted topic does, give exactly
the rows of the final totals, which equal the totals of all rows merged at once.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hhar_stream.processor import derive
from hhar_stream.processor.catalogue import CATALOGUE
from hhar_stream.processor.derive import Totals
from hhar_stream.processor.fused import BatchAggregation, group_of
from hhar_stream.processor.fused_state import EngineState, Group
from hhar_stream.processor.parse import parse_events
from hhar_stream.processor.queries import historical_stats
from hhar_stream.processor.source import MESSAGE_SCHEMA
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


WINDOW_MS, DELAY_MS = 60_000, 30_000


def engine_totals(spark, events: list[SensorEvent]) -> Totals:
    """The engine's totals of `events`: its micro-batch job in Spark, then its merge."""
    messages = spark.createDataFrame(
        [
            (0, offset, None, bytearray(item.to_json().encode()))
            for offset, item in enumerate(events)
        ],
        schema=MESSAGE_SCHEMA,
    )
    groups = []
    for row in BatchAggregation(Settings())(parse_events(messages)).collect():
        assert row["ok"]
        groups.append(group_of(row))
    state = EngineState()
    state.merge(0, groups, 0, WINDOW_MS, DELAY_MS)
    return state.totals


def derive_all(query, totals: Totals, historical: dict | None = None, changes=None) -> list[dict]:
    extra = {"historical": historical or {}} if query.uses_history else {}
    return query.derive(totals, changes=changes, **extra)


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
    totals = engine_totals(spark, events)
    for query in DERIVED:
        assert query.on_events is not None
        spark_parameters = query.parameters(Settings())
        if query.uses_history:
            spark_parameters["historical"] = historical_frame
        reference = [row.asDict() for row in query.on_events(frame, **spark_parameters).collect()]
        assert_rows_equal(query.name, derive_all(query, totals, historical), reference)


aggregate_row = st.builds(
    lambda start, device, gt, stairs_user, count, x, latest: (
        start * WINDOW_MS,
        device,
        gt,
        device.split("_")[0],
        stairs_user if "stairs" in gt else None,
        count,
        x * count,
        -x,
        0.25 * count,
        start * WINDOW_MS + latest,
    ),
    start=st.integers(0, 6),
    device=st.sampled_from(["nexus4_1", "nexus4_2", "s3_1"]),
    gt=st.sampled_from(ACTIVITY_LABELS),
    stairs_user=st.sampled_from("ab"),
    count=st.integers(1, 5),
    x=reading,
    latest=st.integers(0, WINDOW_MS - 1),
)


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.lists(aggregate_row, max_size=12), min_size=1, max_size=8))
def test_the_rows_written_batch_by_batch_add_up_to_the_final_totals(
    batches: list[list[Group]],
) -> None:
    state = EngineState()
    written: dict[str, dict[tuple, dict]] = {query.name: {} for query in DERIVED}
    closed = []
    for batch_id, groups in enumerate(batches):
        changes = state.merge(batch_id, groups, 0, WINDOW_MS, DELAY_MS)
        closed += changes.closed
        for query in DERIVED:
            for row in derive_all(query, state.totals, changes=changes.totals):
                written[query.name][row_key(query.name, row)] = row
    everything = EngineState()
    everything.merge(0, [row for groups in batches for row in groups], 0, WINDOW_MS, DELAY_MS)
    for query in DERIVED:
        final = derive_all(query, state.totals)
        # Latest per key, as a compacted topic keeps them: exactly the final totals' rows.
        assert sorted(written[query.name].values(), key=repr) == sorted(final, key=repr)
        assert_rows_equal(query.name, final, derive_all(query, everything.totals))
    # Every event is in a window written when it closed, in a window still open, or late.
    in_windows = sum(count for *_, count in closed) + sum(
        count for cells in state.windows.values() for count in cells.values()
    )
    assert in_windows + state.late_rows == state.totals.total


def row_key(query: str, row: dict) -> tuple:
    return tuple(row[name] for name in CATALOGUE[query].record.key_fields)


def test_before_any_event_the_total_is_zero_and_the_subtotals_are_empty() -> None:
    empty = Totals()
    assert derive.total_count(empty) == [{"count": 0}]
    assert derive.device_activity_cube(empty) == []
    assert derive.device_activity_rollup(empty) == []
    assert derive.activity_stats(empty) == []


def test_subtotal_rows_are_told_apart_from_the_null_label() -> None:
    totals = Totals.of_cells([(("nexus4_1", "null"), 2), (("nexus4_1", "sit"), 3)], {}, {})
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


def test_only_the_changed_rows_are_derived() -> None:
    totals = Totals.of_cells([(("d1", "sit"), 2), (("d2", "walk"), 3)], {}, {})
    changes = derive.Changes(cells={("d2", "walk")})
    rows = derive.device_activity_rollup(totals, changes)
    assert sorted(rows, key=repr) == sorted(
        [
            {"Device": "d2", "gt": "walk", "grouping_id": 0, "count": 3},
            {"Device": "d2", "gt": None, "grouping_id": 1, "count": 3},
            {"Device": None, "gt": None, "grouping_id": 3, "count": 5},
        ],
        key=repr,
    )
    assert derive.total_count(totals, derive.Changes()) == []
