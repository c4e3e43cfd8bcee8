"""The dashboard's content as pure functions of what the feed read: charts, cards, alerts."""

from __future__ import annotations

import datetime as dt

from hhar_stream.apps.dashboard.panels import CHARTS, TOTAL, Observation, page
from hhar_stream.apps.results import PipelineFigures, ResultState
from hhar_stream.processor.catalogue import CATALOGUE
from hhar_stream.schemas.results import (
    DeviceActivity,
    LiveVsHistorical,
    TotalCount,
    WindowedActivity,
)

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
START = dt.datetime(2015, 2, 23, 10, 10, tzinfo=dt.UTC)


def state_of(*records) -> ResultState:
    state = ResultState()
    for record in records:
        state.apply(record.query, record.key_json().encode(), record.value_json().encode())
    return state


def observation(state: ResultState, **changes) -> Observation:
    defaults = {
        "figures": PipelineFigures(
            events=1010,
            events_per_second=250.0,
            processed_per_second=200.0,
            counted=1000,
            bad=0,
            last_batch=4,
        ),
        "events_topic": "events",
        "events_topic_exists": True,
        "dead_letters": 0,
        "dead_letter_topic": "events.dlq",
    }
    return Observation(state=state, **(defaults | changes))


def panel(content: dict, name: str) -> dict:
    return next(p for p in content["panels"] if p["id"] == name)


def card(content: dict, name: str) -> dict:
    return next(c for c in content["cards"] if c["id"] == name)


def test_every_chart_draws_a_query_of_the_catalogue_and_every_other_query_is_a_table() -> None:
    assert set(CHARTS) <= set(CATALOGUE) and TOTAL in CATALOGUE
    content = page(observation(ResultState()), NOW)
    kinds = {p["id"]: p["kind"] for p in content["panels"]}
    for name in CATALOGUE:
        if name != TOTAL:
            assert kinds[name] == ("chart" if name in CHARTS else "table")


def test_the_charts_hold_the_records_numbers() -> None:
    state = state_of(
        TotalCount(query="total_count", batch_id=4, count=1000),
        DeviceActivity(
            query="device_activity", batch_id=4, Device="nexus4_1", gt="walk", count=600
        ),
        DeviceActivity(query="device_activity", batch_id=4, Device="nexus4_2", gt="sit", count=400),
        LiveVsHistorical(
            query="live_vs_historical",
            batch_id=4,
            gt="walk",
            Model="nexus4",
            x_avg=0.25,
            y_avg=-0.125,
            z_avg=0.5,
            count=600,
            historical_x_avg=0.2,
            historical_y_avg=None,
            historical_z_avg=0.1,
            historical_count=7,
        ),
        *[
            WindowedActivity(
                query="windowed_activity",
                batch_id=4,
                window_start=START,
                window_end=START + dt.timedelta(minutes=10),
                Device=device,
                gt="walk",
                count=count,
            )
            for device, count in (("nexus4_1", 30), ("nexus4_2", 12))
        ],
    )
    content = page(observation(state), NOW)
    bars = {
        trace["name"]: dict(zip(trace["x"], trace["y"], strict=True))
        for trace in panel(content, "device_activity")["figure"]["data"]
    }
    assert bars == {
        "walk": {"nexus4_1": 600, "nexus4_2": 0},
        "sit": {"nexus4_1": 0, "nexus4_2": 400},
    }
    live = panel(content, "live_vs_historical")["figure"]["data"]
    assert [(t["name"], list(t["x"])) for t in live] == [
        ("live", [0.25]),
        ("historical", [0.2]),
        ("live", [-0.125]),
        ("historical", [None]),
        ("live", [0.5]),
        ("historical", [0.1]),
    ]
    [walk] = panel(content, "windowed_activity")["figure"]["data"]
    assert (walk["name"], list(walk["y"])) == ("walk", [42])
    assert card(content, TOTAL)["value"] == "1,000"
    assert card(content, "lag")["value"] == "≤ 10"
    assert card(content, "events_in")["value"] == "250 /s"
    assert panel(content, "device_activity")["table"]["rows"] == [
        ["nexus4_1", "walk", "600"],
        ["nexus4_2", "sit", "400"],
    ]


def test_an_empty_start_says_what_is_missing_in_words() -> None:
    content = page(
        observation(
            ResultState(),
            events_topic_exists=False,
            missing_queries=tuple(CATALOGUE),
            dead_letters=None,
            status_problem="no processor status in ckpt/status.json",
        ),
        NOW,
    )
    texts = [alert["text"] for alert in content["alerts"]]
    assert texts == [
        "The events topic events does not exist yet: start the producer (hhar produce, or "
        "make demo).",
        "No results yet: the result topics do not exist yet (start the processor: hhar process).",
        "No processor status: no processor status in ckpt/status.json.",
    ]
    assert panel(content, "device_activity")["figure"] is None
    assert panel(content, "device_activity")["note"] == (
        "no results yet: the topic of device_activity does not exist yet"
    )
    assert panel(content, "dead_letters")["note"] == "events.dlq does not exist yet"
    assert card(content, TOTAL)["value"] == "-"


def test_an_unreachable_broker_and_unreadable_records_are_alerts_not_errors() -> None:
    state = state_of(TotalCount(query="total_count", batch_id=1, count=5))
    state.apply("total_count", b"{}", b'{"query":"total_count","batch_id":2}')
    state.apply(
        "device_activity",
        b"{}",
        TotalCount(query="total_count", batch_id=3, count=9).value_json().encode(),
    )
    content = page(
        observation(
            state,
            figures=None,
            events_topic_exists=None,
            broker_error="cannot reach Kafka at 127.0.0.1:1: timed out",
        ),
        NOW,
    )
    levels = [(alert["level"], alert["text"].split(":")[0]) for alert in content["alerts"]]
    assert levels == [
        ("error", "Cannot reach Kafka at 127.0.0.1"),
        ("warning", "2 result record(s) set aside"),
    ]
    assert "device_activity: a record of query total_count" in content["alerts"][1]["text"]
    assert card(content, TOTAL)["value"] == "5"  # the last results read stay on the page
    assert card(content, "lag")["value"] == "-"


def test_the_spark_ui_link_shows_only_while_the_processor_runs() -> None:
    status = {"running": True, "pid": 1, "spark_ui": "http://127.0.0.1:4041", "queries": {}}
    assert page(observation(ResultState(), status=status), NOW)["spark_ui"] == (
        "http://127.0.0.1:4041"
    )
    stopped = status | {"running": False, "updated_at": "2026-01-02T03:00:00+00:00"}
    content = page(observation(ResultState(), status=stopped), NOW)
    assert content["spark_ui"] is None
    assert "The processor (pid 1) is not running" in content["alerts"][-1]["text"]
