"""The processor's queries: pure ``DataFrame -> DataFrame`` functions over valid events.

Each takes a DataFrame with the event columns (`parse.valid_events`, or a static DataFrame of
the same schema) and returns the rows of one result kind (`hhar_stream.schemas.results`), so
the same function answers a batch question and runs as a streaming query.

They are the reference: the per-query engine runs them as streaming queries, and the fused
engine's plain-Python derivations (`derive`) are held equal to them by a property test.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, GroupedData
from pyspark.sql import functions as F

FINE_GRAIN = ("Device", "gt", "Model", "User")
"""The finest grouping any query (but the windowed one) needs: the fused engine's totals."""

AXES = ("x", "y", "z")


def _count() -> Column:
    return F.count(F.lit(1)).alias("count")


def _mean(axis: str) -> Column:
    return F.avg(axis).alias(f"{axis}_avg")


def total_count(events: DataFrame) -> DataFrame:
    """The number of events (one row, column ``count``)."""
    return events.groupBy().agg(_count())


def device_activity(events: DataFrame) -> DataFrame:
    """Events per (Device, gt)."""
    return events.groupBy("Device", "gt").agg(_count())


def _with_subtotals(grouped: GroupedData) -> DataFrame:
    return grouped.agg(F.grouping_id().alias("grouping_id"), _count())


def device_activity_cube(events: DataFrame) -> DataFrame:
    """``cube(Device, gt)`` counts; ``grouping_id`` marks subtotal rows (1, 2, 3)."""
    return _with_subtotals(events.cube("Device", "gt"))


def device_activity_rollup(events: DataFrame) -> DataFrame:
    """``rollup(Device, gt)`` counts; ``grouping_id`` marks subtotal rows (1, 3)."""
    return _with_subtotals(events.rollup("Device", "gt"))


def stairs_by_user(
    events: DataFrame, users: Sequence[str] = ("a", "b"), device: str = "nexus4_1"
) -> DataFrame:
    """Stairs events (gt contains "stairs") of `users` on `device`, counted per User.

    All three conditions must hold; the original exercise's ``A & B | C & D`` also counted every
    row of one user on the device, stairs or not.
    """
    return events.where(counted_on_stairs(users, device)).groupBy("User").agg(_count())


def counted_on_stairs(users: Sequence[str], device: str) -> Column:
    """The condition of `stairs_by_user`: a stairs activity of one of `users` on `device`."""
    is_stairs = F.col("gt").contains("stairs")
    return is_stairs & F.col("User").isin(*users) & (F.col("Device") == F.lit(device))


def activity_stats(events: DataFrame) -> DataFrame:
    """Mean x, y, z and the count per (gt, Model)."""
    return events.groupBy("gt", "Model").agg(*(_mean(axis) for axis in AXES), _count())


def positive_x(stats: DataFrame) -> DataFrame:
    """The exercise's view over `activity_stats`: the groups whose mean x is positive."""
    return stats.where(F.col("x_avg") > 0)


HISTORICAL_PREFIX = "historical_"


def historical_stats(history: DataFrame) -> DataFrame:
    """`activity_stats` of a static history, its figures renamed ``historical_*``."""
    stats = activity_stats(history)
    return stats.select(
        "gt",
        "Model",
        *(
            F.col(name).alias(HISTORICAL_PREFIX + name)
            for name in stats.columns
            if name not in ("gt", "Model")
        ),
    )


def live_vs_historical(events: DataFrame, historical: DataFrame) -> DataFrame:
    """`activity_stats` of `events` beside `historical` (from `historical_stats`).

    A left join on (gt, Model): a live group the history lacks keeps null historical figures.
    """
    return activity_stats(events).join(historical, on=["gt", "Model"], how="left")


def windowed_activity(
    events: DataFrame, window: str = "10 minutes", watermark: str = "5 minutes"
) -> DataFrame:
    """Events per Device and gt in tumbling windows of Arrival_Time (event time).

    On a stream the `watermark` bounds lateness: a window is final (and emitted in append
    mode) once the watermark passes its end, and later rows for it are dropped and counted by
    Spark as ``numRowsDroppedByWatermark``. On static data the watermark changes nothing.
    """
    timed = events.withColumn("event_time", F.timestamp_millis("Arrival_Time"))
    return (
        timed.withWatermark("event_time", watermark)
        .groupBy(F.window("event_time", window).alias("window"), "Device", "gt")
        .agg(_count())
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "Device",
            "gt",
            "count",
        )
    )
