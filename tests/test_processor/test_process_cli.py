"""`hhar process` and `hhar status` as a user runs them: the real CLI in its own process."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from support.cli import LOG_LINE, hhar_env, run_hhar

from hhar_stream.daemons import free_port
from hhar_stream.processor.session import spark_log_path
from hhar_stream.settings import Settings

from .helpers import BAD_MESSAGES, make_events, produce, read_results

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def cli_env(kafka: Settings) -> dict[str, str]:
    """The environment of a user whose settings point at the test broker and jars."""
    return hhar_env(kafka, ["bootstrap", "home", "master", "shuffle_partitions", "driver_memory"])


def test_process_available_now_then_status(kafka: Settings, cli_env, topics, tmp_path) -> None:
    topic = topics.create("processor-cli")
    spark_log = spark_log_path(kafka, "hhar-process")
    spark_log_before = spark_log.stat().st_size if spark_log.exists() else 0
    events = make_events(300, seed=31)
    produce(kafka, topic, events, BAD_MESSAGES[:2])
    checkpoint = tmp_path / "checkpoints"
    result = run_hhar(
        [
            "process",
            "--engine",
            "per-query",
            "--topic",
            topic,
            "--available-now",
            "--json",
            "--queries",
            "stairs_by_user,device_activity",
            "--results-prefix",
            f"{topic}.r.",
            "--checkpoint",
            str(checkpoint),
            "--stairs-users",
            "a,c",
            "--stairs-device",
            "nexus4_2",
            "--spark-ui",
            "--spark-ui-port",
            str(free_port()),
        ],
        cli_env,
        tmp_path / "cli",
        "process",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Quiet: hhar's own log lines only; Spark's start-up noise is in its log file.
    noise = [line for line in result.stderr.splitlines() if not LOG_LINE.match(line)]
    assert noise == [], noise[:10]
    with spark_log.open("rb") as log:
        log.seek(spark_log_before)
        assert b"Using incubator modules" in log.read()
    summary = json.loads(result.stdout)
    assert summary["events"] == 302
    assert summary["queries"]["device_activity"]["bad_records"] == 2
    assert summary["events_per_second"] > 0
    assert "device_activity batch 0: 302 rows (bad 2, late 0)" in result.stderr

    settings = kafka.changed(**{"results_prefix": f"{topic}.r."})
    stairs = read_results(settings, settings.result_topic("stairs_by_user"))
    expected: dict[str, int] = {}
    for event in events:
        if "stairs" in event.gt and event.user in "ac" and event.device == "nexus4_2":
            expected[event.user] = expected.get(event.user, 0) + 1
    assert {record.user: record.count for record in stairs.values()} == expected
    activity = read_results(settings, settings.result_topic("device_activity"))
    assert sum(record.count for record in activity.values()) == 300
    assert len(read_results(settings, settings.result_topic("bad_records"))) == 2

    status = run_hhar(
        ["status", "--checkpoint", str(checkpoint), "--json"],
        cli_env,
        tmp_path / "cli",
        "status-json",
    )
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["running"] is False and state["topic"] == topic
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", state["spark_ui"]), state["spark_ui"]
    assert f"INFO    hhar_stream.processor.session: Spark UI at {state['spark_ui']}" in (
        result.stderr
    )
    assert sorted(state["queries"]) == ["bad_records", "device_activity", "stairs_by_user"]
    for query in state["queries"].values():
        assert query["active"] is False and uuid.UUID(query["id"])
        assert query["last_progress"]["input_rows"] == 302
    table = run_hhar(
        ["status", "--checkpoint", str(checkpoint)], cli_env, tmp_path / "cli", "status-table"
    )
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"processor pid {state['pid']} on ")
    assert ": not running; topic " in lines[0]
    stairs_id = state["queries"]["stairs_by_user"]["id"]
    assert f"stairs_by_user: id {stairs_id}, active no, status Stopped" in lines
    assert any(
        line.startswith("  last batch 0 at ") and ": 302 rows (bad 2, late 0)" in line
        for line in lines
    )


def test_status_without_a_processor_is_one_error_line(cli_env, tmp_path) -> None:
    result = run_hhar(["status", "--checkpoint", str(tmp_path)], cli_env, tmp_path / "cli")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: no processor status in {tmp_path / 'status.json'}: start `hhar process` "
        f"with the same --checkpoint root first\n"
    )


def test_process_of_a_missing_topic_is_one_error_line(kafka: Settings, cli_env, tmp_path) -> None:
    result = run_hhar(
        ["process", "--topic", "no-such-topic", "--available-now", "--queries", "total_count"],
        cli_env,
        tmp_path / "cli",
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: topic 'no-such-topic' does not exist at {kafka.bootstrap}: produce events "
        f"first (hhar produce) or choose --topic"
    )


def test_process_without_history_says_how_to_go_on(kafka: Settings, cli_env, tmp_path) -> None:
    missing = tmp_path / "no-history"
    result = run_hhar(
        ["process", "--history", str(missing), "--available-now"], cli_env, tmp_path / "cli"
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: live_vs_historical needs a static history, but {missing} does not exist: "
        f"pass --history PATH, or leave the query out: --queries all,-live_vs_historical\n"
    )
