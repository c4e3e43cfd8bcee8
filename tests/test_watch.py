"""`hhar watch` without a terminal, on result topics prepared in the real broker; the result
reading it shares with the dashboard."""

from __future__ import annotations

import datetime as dt

import pytest
from confluent_kafka import Producer
from support.cli import error_line, hhar_env, run_hhar

from hhar_stream.apps.results import ResultState
from hhar_stream.apps.watch import build_tables, render_plain
from hhar_stream.rates import RateMeter
from hhar_stream.schemas.results import (
    ActivityStats,
    DeviceActivity,
    DeviceActivitySubtotal,
    LiveVsHistorical,
    TotalCount,
    WindowedActivity,
)
from hhar_stream.settings import Settings

EXPECTED = """\
== total_count
count
1003

== device_activity (2 rows) · 2 devices, 2 activities, 1,003 events
Device    gt    count
nexus4_1  walk  600
nexus4_2  null  403

== device_activity_rollup (5 rows) · 2 devices, 1,003 events in all
Device    gt     level   count
(all)     (all)  total   1003
nexus4_1  (all)  all gt  600
nexus4_2  (all)  all gt  403
nexus4_1  walk           600
nexus4_2  null           403

== stairs_by_user
(no results yet)

== activity_stats where x_avg > 0
gt    Model   x_avg     y_avg      z_avg     count
walk  nexus4  0.250000  -0.125000  0.000000  600

== live_vs_historical
gt    Model   x live     x hist     y live     y hist  z live    z hist  count live  count hist
null  nexus4  -0.500000  -0.400000  0.000000   -       0.000000  -       403         -
walk  nexus4  0.250000   0.200000   -0.125000  -       0.000000  -       600         7

== windowed_activity (last 8 rows)
window_start         window_end  Device    gt    count
2015-02-23 10:10:00  10:20:00    nexus4_1  walk  600

events topic {events}: offset 1005 | last batch 4 | counted 1003 + 0 bad | lag <= 2
"""


@pytest.mark.kafka
def test_watch_once_prints_the_current_state_per_key(kafka: Settings, topics, tmp_path) -> None:
    run = topics.name("watch")
    prefix = f"{run}."
    events_topic = f"{run}.events"
    settings = kafka.changed(**{"results_prefix": prefix, "topic": events_topic})
    queries = [
        "total_count",
        "device_activity",
        "device_activity_rollup",
        "activity_stats",
        "live_vs_historical",
        "windowed_activity",
    ]
    topics.create_named([events_topic] + [settings.result_topic(q) for q in queries], partitions=2)

    producer = Producer(settings.kafka_client_config())

    def publish(record) -> None:
        producer.produce(
            settings.result_topic(record.query), key=record.key_json(), value=record.value_json()
        )

    # Older versions of a key come first: only the last one may be shown.
    publish(TotalCount(query="total_count", batch_id=1, count=10))
    publish(TotalCount(query="total_count", batch_id=4, count=1003))
    publish(
        DeviceActivity(query="device_activity", batch_id=2, Device="nexus4_1", gt="walk", count=7)
    )
    publish(
        DeviceActivity(query="device_activity", batch_id=3, Device="nexus4_1", gt="walk", count=600)
    )
    publish(
        DeviceActivity(query="device_activity", batch_id=3, Device="nexus4_2", gt="null", count=403)
    )
    for device, gt, level, count in [
        ("nexus4_1", "walk", 0, 600),
        ("nexus4_2", "null", 0, 403),
        ("nexus4_1", None, 1, 600),
        ("nexus4_2", None, 1, 403),
        (None, None, 3, 1003),
    ]:
        publish(
            DeviceActivitySubtotal(
                query="device_activity_rollup",
                batch_id=3,
                Device=device,
                gt=gt,
                grouping_id=level,
                count=count,
            )
        )
    publish(
        ActivityStats(
            query="activity_stats",
            batch_id=3,
            gt="walk",
            Model="nexus4",
            x_avg=0.25,
            y_avg=-0.125,
            z_avg=0.0,
            count=600,
        )
    )
    publish(
        ActivityStats(
            query="activity_stats",
            batch_id=3,
            gt="null",
            Model="nexus4",
            x_avg=-0.5,
            y_avg=0.0,
            z_avg=0.0,
            count=403,
        )
    )
    publish(
        LiveVsHistorical(
            query="live_vs_historical",
            batch_id=3,
            gt="walk",
            Model="nexus4",
            x_avg=0.25,
            y_avg=-0.125,
            z_avg=0.0,
            count=600,
            historical_x_avg=0.2,
            historical_y_avg=None,
            historical_z_avg=None,
            historical_count=7,
        )
    )
    publish(
        LiveVsHistorical(
            query="live_vs_historical",
            batch_id=3,
            gt="null",
            Model="nexus4",
            x_avg=-0.5,
            y_avg=0.0,
            z_avg=0.0,
            count=403,
            historical_x_avg=-0.4,
            historical_y_avg=None,
            historical_z_avg=None,
            historical_count=None,
        )
    )
    start = dt.datetime(2015, 2, 23, 10, 10, tzinfo=dt.UTC)
    publish(
        WindowedActivity(
            query="windowed_activity",
            batch_id=3,
            window_start=start,
            window_end=start + dt.timedelta(minutes=10),
            Device="nexus4_1",
            gt="walk",
            count=600,
        )
    )
    for index in range(1005):
        producer.produce(events_topic, key="nexus4_1", value=f"event {index}")
    assert producer.flush(30) == 0

    result = run_hhar(
        [
            "watch",
            "--once",
            "--results-prefix",
            prefix,
            "--topic",
            events_topic,
            *[
                arg
                for q in [
                    "total_count",
                    "device_activity",
                    "device_activity_rollup",
                    "stairs_by_user",
                    "activity_stats",
                    "live_vs_historical",
                    "windowed_activity",
                ]
                for arg in ("--query", q)
            ],
        ],
        hhar_env(settings, ["bootstrap"]),
        tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED.format(events=events_topic)


@pytest.mark.kafka
def test_watch_reports_an_unreachable_broker_in_one_line(tmp_path) -> None:
    result = run_hhar(
        ["watch", "--once"], hhar_env(HHAR_BOOTSTRAP="127.0.0.1:1"), tmp_path, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach Kafka at 127.0.0.1:1")
    assert "Traceback" not in result.stderr


def test_result_state_keeps_the_latest_row_per_key_and_sets_aside_what_it_cannot_read() -> None:
    state = ResultState()
    first = TotalCount(query="total_count", batch_id=1, count=10)
    state.apply("total_count", b"{}", first.value_json().encode())
    state.apply("total_count", b"{}", b"not json")
    wrong = DeviceActivity(query="device_activity", batch_id=2, Device="d", gt="walk", count=3)
    state.apply("total_count", b"{}", wrong.value_json().encode())
    assert state.records("total_count") == [first]
    assert state.invalid == 2
    assert state.last_invalid == "total_count: a record of query device_activity"
    state.apply("total_count", b"{}", None)  # a tombstone deletes the key
    assert state.records("total_count") == []


def test_rate_meter_measures_over_its_window_and_starts_over_with_a_smaller_total() -> None:
    meter = RateMeter(window=10.0)
    assert meter.rate is None
    for second in range(30):
        meter.add(100 * second, now=float(second))
    assert meter.rate == 100.0
    meter.add(5, now=30.0)
    assert meter.rate is None


def fleet_state(devices: int) -> ResultState:
    """``device_activity`` of a fleet: every device walked `n + 1` events."""
    state = ResultState()
    for n in range(devices):
        record = DeviceActivity(
            query="device_activity", batch_id=1, Device=f"d{n:05}", gt="walk", count=n + 1
        )
        state.apply("device_activity", record.key_json().encode(), record.value_json().encode())
    return state


def test_a_fleet_table_shows_a_page_the_busiest_first_with_its_totals() -> None:
    state = fleet_state(70_000)
    (table,) = build_tables(state, ["device_activity"])
    assert table.rows == [[f"d{n:05}", "walk", str(n + 1)] for n in range(69_999, 69_979, -1)]
    assert (table.extent, table.summary) == (
        "rows 1-20 of 70,000",
        f"70,000 devices, 1 activities, {70_000 * 70_001 // 2:,} events",
    )
    (later,) = build_tables(state, ["device_activity"], rows=5, first=20)
    assert [row[0] for row in later.rows] == ["d69979", "d69978", "d69977", "d69976", "d69975"]
    (found,) = build_tables(state, ["device_activity"], search="D0004")
    assert [row[0] for row in found.rows] == [f"d0004{n}" for n in range(9, -1, -1)]
    assert found.matched == 10 and found.extent is None
    text = render_plain([table], "status")
    assert text.startswith(
        "== device_activity (70,000 rows) · rows 1-20 of 70,000 · 70,000 devices"
    )


def test_the_views_keep_the_newest_windows_only() -> None:
    state = ResultState(newest={"windowed_activity": ("window_start", 2)})
    start = dt.datetime(2015, 2, 23, 10, tzinfo=dt.UTC)
    for minutes in (0, 10, 20):
        window = WindowedActivity(
            query="windowed_activity",
            batch_id=1,
            window_start=start + dt.timedelta(minutes=minutes),
            window_end=start + dt.timedelta(minutes=minutes + 10),
            Device="d",
            gt="sit",
            count=1,
        )
        state.apply("windowed_activity", window.key_json().encode(), window.value_json().encode())
    assert [r.window_start.minute for r in state.records("windowed_activity")] == [10, 20]


@pytest.mark.kafka
def test_watch_refuses_a_negative_number_of_rows_in_one_line(tmp_path) -> None:
    result = run_hhar(["watch", "--once", "--rows", "-1"], hhar_env(), tmp_path, timeout=60)
    assert result.returncode == 2
    assert error_line(result.stderr) == "error: --rows must be 0 (every row) or more, not -1"
