"""The query functions on small static DataFrames, against answers computed by hand."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from hhar_stream.processor import queries as q
from hhar_stream.processor.parse import EVENT_SCHEMA
from hhar_stream.processor.sinks import row_columns
from hhar_stream.schemas.results import RESULT_RECORDS
from hhar_stream.schemas.spark import to_spark_schema

pytestmark = pytest.mark.spark

T0 = 1424686800000  # 2015-02-23 10:20:00 UTC, a whole minute


def event(
    device: str,
    user: str,
    gt: str,
    x: float,
    y: float = 0.0,
    z: float = 0.0,
    seconds: float = 0.0,
    model: str = "nexus4",
) -> tuple:
    arrival = T0 + int(seconds * 1000)
    return (arrival, arrival * 1_000_000, device, 0, model, user, gt, x, y, z)


# Eight rows chosen so every answer below can be counted on one's fingers.
ROWS = [
    event("nexus4_1", "a", "stairsup", x=1.0, y=0.0, z=-1.0, seconds=5),
    event("nexus4_1", "a", "stairsdown", x=-2.0, y=1.0, z=4.0, seconds=70),
    event("nexus4_1", "b", "stairsup", x=2.0, y=0.0, z=-1.0, seconds=50),
    # Not stairs: the exercise's `stairs & user a | user b & nexus4_1` counted it for b.
    event("nexus4_1", "b", "sit", x=0.5, seconds=10),
    # Stairs of user a on the other phone: the wrong precedence counted it for a.
    event("nexus4_2", "a", "stairsup", x=6.0, y=3.0, z=-1.0, seconds=20),
    event("nexus4_1", "c", "stairsdown", x=-4.0, y=-1.0, z=2.0, seconds=130),
    event("nexus4_2", "b", "null", x=0.25, y=0.5, seconds=65),
    event("nexus4_2", "c", "null", x=-0.75, y=0.5, seconds=61),
]


@pytest.fixture(scope="module")
def events(spark):
    return spark.createDataFrame(ROWS, schema=EVENT_SCHEMA)


def assert_columns_of(query: str, frame) -> None:
    """The query's columns and types are those of its result record (nullability aside)."""
    derived = {field.name: field.dataType for field in to_spark_schema(RESULT_RECORDS[query])}
    expected = [(name, derived[name]) for name in row_columns(RESULT_RECORDS[query])]
    assert [(field.name, field.dataType) for field in frame.schema] == expected


def test_total_count(events) -> None:
    result = q.total_count(events)
    assert_columns_of("total_count", result)
    assertDataFrameEqual(result, [Row(count=8)])


def test_device_activity(events) -> None:
    result = q.device_activity(events)
    assert_columns_of("device_activity", result)
    assertDataFrameEqual(
        result,
        [
            Row(Device="nexus4_1", gt="stairsup", count=2),
            Row(Device="nexus4_1", gt="stairsdown", count=2),
            Row(Device="nexus4_1", gt="sit", count=1),
            Row(Device="nexus4_2", gt="stairsup", count=1),
            Row(Device="nexus4_2", gt="null", count=2),
        ],
    )


CELLS = [
    Row(Device="nexus4_1", gt="stairsup", grouping_id=0, count=2),
    Row(Device="nexus4_1", gt="stairsdown", grouping_id=0, count=2),
    Row(Device="nexus4_1", gt="sit", grouping_id=0, count=1),
    Row(Device="nexus4_2", gt="stairsup", grouping_id=0, count=1),
    Row(Device="nexus4_2", gt="null", grouping_id=0, count=2),
]
DEVICE_TOTALS = [
    Row(Device="nexus4_1", gt=None, grouping_id=1, count=5),
    Row(Device="nexus4_2", gt=None, grouping_id=1, count=3),
]
GRAND_TOTAL = [Row(Device=None, gt=None, grouping_id=3, count=8)]


def test_cube_has_every_subtotal_level(events) -> None:
    result = q.device_activity_cube(events)
    assert_columns_of("device_activity_cube", result)
    activity_totals = [
        Row(Device=None, gt="stairsup", grouping_id=2, count=3),
        Row(Device=None, gt="stairsdown", grouping_id=2, count=2),
        Row(Device=None, gt="sit", grouping_id=2, count=1),
        Row(Device=None, gt="null", grouping_id=2, count=2),
    ]
    assertDataFrameEqual(result, CELLS + DEVICE_TOTALS + activity_totals + GRAND_TOTAL)


def test_rollup_has_device_subtotals_and_the_total(events) -> None:
    result = q.device_activity_rollup(events)
    assert_columns_of("device_activity_rollup", result)
    assertDataFrameEqual(result, CELLS + DEVICE_TOTALS + GRAND_TOTAL)


def test_a_subtotal_is_not_the_activity_labelled_null(events) -> None:
    """nexus4_2 has 2 rows labelled "null" and 3 rows in all: two rows, told apart."""
    result = {
        (row["Device"], row["gt"], row["grouping_id"]): row["count"]
        for row in q.device_activity_cube(events).where(F.col("Device") == "nexus4_2").collect()
    }
    assert result[("nexus4_2", "null", 0)] == 2
    assert result[("nexus4_2", None, 1)] == 3


def test_stairs_by_user_needs_all_three_conditions(events) -> None:
    result = q.stairs_by_user(events, users=("a", "b"), device="nexus4_1")
    assert_columns_of("stairs_by_user", result)
    assertDataFrameEqual(result, [Row(User="a", count=2), Row(User="b", count=1)])
    # The exercise's precedence would have counted the sit row of b and a's nexus4_2 row.
    stairs, user, device = F.col("gt").contains("stairs"), F.col("User"), F.col("Device")
    wrong = events.where(stairs & (user == "a") | (user == "b") & (device == "nexus4_1"))
    assertDataFrameEqual(
        wrong.groupBy("User").count(), [Row(User="a", count=3), Row(User="b", count=2)]
    )


def test_stairs_by_user_takes_other_users_and_devices(events) -> None:
    result = q.stairs_by_user(events, users=("a", "c"), device="nexus4_2")
    assertDataFrameEqual(result, [Row(User="a", count=1)])


STATS = [
    Row(gt="stairsup", Model="nexus4", x_avg=3.0, y_avg=1.0, z_avg=-1.0, count=3),
    Row(gt="stairsdown", Model="nexus4", x_avg=-3.0, y_avg=0.0, z_avg=3.0, count=2),
    Row(gt="sit", Model="nexus4", x_avg=0.5, y_avg=0.0, z_avg=0.0, count=1),
    Row(gt="null", Model="nexus4", x_avg=-0.25, y_avg=0.5, z_avg=0.0, count=2),
]


def test_activity_stats(events) -> None:
    result = q.activity_stats(events)
    assert_columns_of("activity_stats", result)
    assertDataFrameEqual(result, STATS, rtol=1e-12)


def test_the_exercise_view_keeps_positive_mean_x(events) -> None:
    result = q.positive_x(q.activity_stats(events))
    assertDataFrameEqual(result, [row for row in STATS if row["x_avg"] > 0], rtol=1e-12)


def test_live_vs_historical_joins_the_history_on_gt_and_model(spark, events) -> None:
    history = spark.createDataFrame(
        [
            event("nexus4_1", "d", "stairsup", x=1.0, y=2.0, z=3.0),
            event("nexus4_2", "e", "stairsup", x=2.0, y=4.0, z=5.0),
            event("nexus4_1", "d", "sit", x=-1.0),
            event("nexus4_1", "d", "bike", x=9.0),  # no live bike: not in the result
            event("s3_1", "d", "sit", x=7.0, model="s3"),  # another model: not joined
        ],
        schema=EVENT_SCHEMA,
    )
    historical = q.historical_stats(history)
    result = q.live_vs_historical(events, historical)
    assert_columns_of("live_vs_historical", result)
    none = {
        "historical_x_avg": None,
        "historical_y_avg": None,
        "historical_z_avg": None,
        "historical_count": None,
    }
    known = {
        "stairsup": {
            "historical_x_avg": 1.5,
            "historical_y_avg": 3.0,
            "historical_z_avg": 4.0,
            "historical_count": 2,
        },
        "sit": {
            "historical_x_avg": -1.0,
            "historical_y_avg": 0.0,
            "historical_z_avg": 0.0,
            "historical_count": 1,
        },
    }
    expected = [Row(**(row.asDict() | known.get(row["gt"], none))) for row in STATS]
    assertDataFrameEqual(result, expected, rtol=1e-12)


def test_windowed_activity_counts_per_minute(events) -> None:
    result = q.windowed_activity(events, window="1 minute", watermark="30 seconds")
    assert_columns_of("windowed_activity", result)

    def at(minute: int) -> dt.datetime:
        # collect() gives naive local times; build the same from UTC.
        utc = dt.datetime(2015, 2, 23, 10, 20 + minute, tzinfo=dt.UTC)
        return utc.astimezone().replace(tzinfo=None)

    assertDataFrameEqual(
        result,
        [
            Row(window_start=at(0), window_end=at(1), Device="nexus4_1", gt="stairsup", count=2),
            Row(window_start=at(0), window_end=at(1), Device="nexus4_1", gt="sit", count=1),
            Row(window_start=at(0), window_end=at(1), Device="nexus4_2", gt="stairsup", count=1),
            Row(window_start=at(1), window_end=at(2), Device="nexus4_1", gt="stairsdown", count=1),
            Row(window_start=at(1), window_end=at(2), Device="nexus4_2", gt="null", count=2),
            Row(window_start=at(2), window_end=at(3), Device="nexus4_1", gt="stairsdown", count=1),
        ],
    )
