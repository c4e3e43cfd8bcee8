"""The producer's Prometheus metrics: dead letters by the kind of their reason, the figures a
replay reports (with workers, their sum) against what is in the topics, and `hhar produce
--metrics-port` refusing a taken or bad port in one line before any work."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from support.cli import error_line, hhar_env, run_hhar
from support.ports import taken_port
from support.prometheus import family_names, promtool_lint, sample_values

from hhar_stream.daemons import free_port
from hhar_stream.metrics import process_registry
from hhar_stream.producer.metrics import METRICS, ReplayMetrics
from hhar_stream.producer.progress import ReplayStats, combine
from hhar_stream.producer.replay import replay
from hhar_stream.producer.routing import DEAD_LETTER_KINDS, Router, reason_kind
from hhar_stream.producer.sources import MAX_LINE_BYTES, read_blocks, resolve_source
from hhar_stream.settings import Settings

from .helpers import read_topic, write_part_files
from .test_replay import row, settings_for
from .test_uci import ROW

BAD_LINES = {
    "invalid_json": '{"Arrival_Time":1424686735175,',
    "invalid_fields": row(gt="jump"),
    "line_too_long": row()[:-1] + " " * MAX_LINE_BYTES + "}",
}
"""A JSON line of each kind of reason the JSON reader gives."""


def reasons_of(path: Path) -> list[str]:
    """The reasons the source reader gives the invalid rows of `path`."""
    return [
        reason
        for block in read_blocks(resolve_source(path), "by-file")
        for *_, reason in block.rows()
        if reason is not None
    ]


def test_each_reason_the_readers_give_has_its_kind(tmp_path: Path) -> None:
    json_lines = tmp_path / "rows.json"
    json_lines.write_text("\n".join(BAD_LINES.values()) + "\n")
    assert [reason_kind(reason) for reason in reasons_of(json_lines)] == list(BAD_LINES)

    csv_rows = tmp_path / "rows.csv"
    csv_rows.write_bytes(
        (ROW + "\n").encode() + ROW.replace("stand", "st\xe4nd").encode("latin-1") + b"\n0,1,2\n"
    )
    assert [reason_kind(reason) for reason in reasons_of(csv_rows)] == [
        "not_utf8",
        "invalid_fields",
    ]


def test_an_event_the_broker_would_refuse_is_too_far_ahead(tmp_path: Path) -> None:
    source = tmp_path / "ahead.json"
    source.write_text(row() + "\n")
    [block] = list(read_blocks(resolve_source(source), "merged"))
    routed = Router().route(block, horizon=0)
    [letter] = routed.letters
    assert reason_kind(letter.reason) == "too_far_ahead"
    assert set(DEAD_LETTER_KINDS) == {*BAD_LINES, "not_utf8", "too_far_ahead"}


def test_workers_figures_add_up_per_reason() -> None:
    first = ReplayStats("t", "t.dlq", dead_letters_by_reason={"invalid_json": 2}, send_errors=1)
    second = ReplayStats(
        "t",
        "t.dlq",
        dead_letters_by_reason={"invalid_json": 1, "too_far_ahead": 4},
        transactions_committed=3,
    )
    total = combine([first, second], elapsed=1.0)
    assert total.dead_letters_by_reason == {"invalid_json": 3, "too_far_ahead": 4}
    assert (total.send_errors, total.transactions_committed) == (1, 3)


class Shown:
    """A progress display that remembers what it was shown."""

    def __init__(self) -> None:
        self.updates: list[ReplayStats] = []
        self.closed: ReplayStats | None = None

    def update(self, stats: ReplayStats) -> None:
        self.updates.append(stats)

    def close(self, stats: ReplayStats) -> None:
        self.closed = stats


def exposed(metrics: ReplayMetrics) -> str:
    return generate_latest(process_registry(metrics)).decode()


def test_the_metrics_are_the_latest_figures_and_the_display_still_gets_them() -> None:
    settings = Settings(topic="t")
    display = Shown()
    metrics = ReplayMetrics(settings, display)
    before = exposed(metrics)
    assert {name for name in family_names(before) if name.startswith("hhar_")} == {
        spec.name for spec in METRICS
    }
    assert all(
        value == 0 for (name, _), value in sample_values(before).items() if name.startswith("hhar_")
    )
    stats = ReplayStats(
        "t",
        "t.dlq",
        rows_read=10,
        invalid=3,
        events_sent=7,
        delivered=5,
        dead_lettered=3,
        dead_letters_by_reason={"invalid_json": 1, "invalid_fields": 2},
        drift=0.25,
        send_errors=1,
        transactions_committed=2,
    )
    metrics.update(stats)
    stats.rows_read = 99  # the replay goes on changing its figures: the metrics keep a copy
    metrics.close(stats)
    assert display.updates == [stats] and display.closed is stats
    metrics.update(
        ReplayStats("t", "t.dlq", rows_read=10, events_sent=7, delivered=7, dead_lettered=3)
    )
    values = sample_values(exposed(metrics))
    topic = (("topic", "t"),)
    assert values[("hhar_producer_rows_read_total", topic)] == 10
    assert values[("hhar_producer_events_delivered_total", topic)] == 7
    letters = {
        dict(labels)["reason"]: value
        for (name, labels), value in values.items()
        if name == "hhar_producer_dead_letters_total"
    }
    assert letters == dict.fromkeys(DEAD_LETTER_KINDS, 0.0)  # the last figures: none by reason
    assert promtool_lint(exposed(metrics)) == ""


@pytest.mark.kafka
@pytest.mark.parametrize("workers", [1, 2])
def test_a_replay_reports_what_reached_the_topics(kafka, topics, tmp_path, workers) -> None:
    """Counters equal the topics' committed contents: events, dead letters per reason
    (with workers, the parent's sum of theirs)."""
    paths = write_part_files(tmp_path, files=2, rows_per_file=300)
    with paths[0].open("a") as part:
        part.write("\n".join([*BAD_LINES.values(), BAD_LINES["invalid_json"]]) + "\n")
    topic = topics.name("produce")
    metrics = ReplayMetrics(settings_for(kafka, topic, tmp_path), None)
    stats = replay(settings_for(kafka, topic, tmp_path, workers=workers), progress=metrics)
    assert stats.delivered == 600 and stats.dead_lettered == 4

    values = sample_values(exposed(metrics))
    events = read_topic(kafka, topic)
    letters = read_topic(kafka, f"{topic}.dlq")
    by_topic = (("topic", topic),)
    assert values[("hhar_producer_events_sent_total", by_topic)] == len(events) == 600
    assert values[("hhar_producer_events_delivered_total", by_topic)] == 600
    assert values[("hhar_producer_rows_read_total", by_topic)] == 604
    assert values[("hhar_producer_send_errors_total", by_topic)] == 0
    assert values[("hhar_producer_transactions_committed_total", by_topic)] >= workers
    kinds = Counter(reason_kind(letter.headers["error_reason"]) for letter in letters)
    assert kinds == {"invalid_json": 2, "invalid_fields": 1, "line_too_long": 1}
    for kind in DEAD_LETTER_KINDS:
        labels = (("reason", kind), ("topic", f"{topic}.dlq"))
        assert values[("hhar_producer_dead_letters_total", labels)] == kinds[kind], kind


def test_a_taken_metrics_port_is_one_error_line_before_any_work(tmp_path: Path) -> None:
    """The port is checked first: the broker (which does not answer here) is never asked."""
    write_part_files(tmp_path / "data", files=1, rows_per_file=5)
    with taken_port() as port:
        result = run_hhar(
            ["produce", "--source", str(tmp_path / "data"), "--metrics-port", str(port)],
            hhar_env(HHAR_BOOTSTRAP=f"127.0.0.1:{free_port()}"),
            tmp_path,
            timeout=60,
        )
    assert result.returncode == 2
    assert error_line(result.stderr) == (
        f"error: port {port} on 127.0.0.1 is already in use: stop what listens there or "
        f"choose another --metrics-port (HHAR_PRODUCER_METRICS_PORT)"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--metrics-port", "70000"], {}, "producer_metrics_port (HHAR_PRODUCER_METRICS_PORT)"),
        (["--metrics-port", "nine"], {}, "argument --metrics-port: invalid int value: 'nine'"),
        ([], {"HHAR_PRODUCER_METRICS_PORT": "0"}, "HHAR_PRODUCER_METRICS_PORT"),
    ],
)
def test_a_bad_metrics_port_is_one_error_line(tmp_path: Path, args, env, says) -> None:
    result = run_hhar(
        ["produce", "--source", str(tmp_path), *args], hhar_env(**env), tmp_path, timeout=60
    )
    assert result.returncode == 2
    assert says in error_line(result.stderr)
