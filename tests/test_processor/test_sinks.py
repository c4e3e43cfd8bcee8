"""The result sinks on static micro-batches: memory tables keep the latest row per key."""

from __future__ import annotations

import datetime as dt

import pytest

from hhar_stream.processor.sinks import ResultSinks, collect_records
from hhar_stream.schemas.results import StairsByUser, WindowedActivity
from hhar_stream.settings import Settings

pytestmark = pytest.mark.spark


def test_the_memory_table_keeps_the_latest_row_per_key(spark) -> None:
    sink = ResultSinks(spark, Settings(), ["memory"]).writer("stairs_by_user", StairsByUser)
    sink(spark.createDataFrame([("a", 3), ("b", 1)], "User string, count long"), 0)
    sink(spark.createDataFrame([("b", 4)], "User string, count long"), 1)
    rows = spark.sql("SELECT * FROM stairs_by_user ORDER BY User").collect()
    assert [row.asDict() for row in rows] == [
        {"query": "stairs_by_user", "batch_id": 0, "User": "a", "count": 3},
        {"query": "stairs_by_user", "batch_id": 1, "User": "b", "count": 4},
    ]


def test_the_console_shows_each_batch_with_rows(spark, capsys) -> None:
    sink = ResultSinks(spark, Settings(), ["console"]).writer("stairs_by_user", StairsByUser)
    sink(spark.createDataFrame([("a", 3)], "User string, count long"), 5)
    sink(spark.createDataFrame([], "User string, count long"), 6)
    out = capsys.readouterr().out
    assert out.startswith("stairs_by_user, batch 5: 1 rows\n")
    assert "batch 6" not in out
    assert "│ a    │ 3     │" in out


def test_timestamps_are_utc_whatever_the_local_zone(spark) -> None:
    rows = spark.sql(
        "SELECT TIMESTAMP'2015-02-23 10:20:00' AS window_start, "
        "TIMESTAMP'2015-02-23 10:30:00' AS window_end, 'nexus4_1' AS Device, 'sit' AS gt, "
        "CAST(2 AS BIGINT) AS count"
    )
    (record,) = collect_records(rows, WindowedActivity, "windowed_activity", 3)
    assert record.window_start == dt.datetime(2015, 2, 23, 10, 20, tzinfo=dt.UTC)
    assert record.key_json() == (
        '{"window_start":"2015-02-23T10:20:00Z","Device":"nexus4_1","gt":"sit"}'
    )
