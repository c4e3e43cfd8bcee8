"""A real Prometheus (Debian's ``prometheus``) scrapes a real producer and processor run; its
HTTP API then says what the run did: rows sent = events in the topic, dead letters = the
invalid rows (by reason), input rows = events counted in the results, and the lag back at 0
once the processor has caught up."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from reliability.harness import read_messages
from support.cli import HharProcess, hhar_env
from support.polling import poll_until
from support.prometheus import PrometheusServer
from test_processor.helpers import read_results
from test_producer.helpers import write_part_files
from test_producer.test_metrics import BAD_LINES

from hhar_stream.daemons import free_port
from hhar_stream.producer.routing import reason_kind
from hhar_stream.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.slow]

VALID_ROWS = 2000
PROCESSOR_TIMEOUT = 300.0
"""Seconds for the processor's Spark to start and read every event (a busy 2-core machine)."""


def test_prometheus_sees_what_the_producer_and_the_processor_did(
    kafka: Settings, topics, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    paths = write_part_files(data, files=2, rows_per_file=VALID_ROWS // 2)
    with paths[1].open("a") as part:
        part.write("\n".join([*BAD_LINES.values(), BAD_LINES["invalid_json"]]) + "\n")
    topic = topics.name("prometheus")
    by_topic = f'topic="{topic}"'
    producer_port, processor_port = free_port(), free_port()
    prometheus = PrometheusServer(
        tmp_path / "prometheus",
        {"producer": f"127.0.0.1:{producer_port}", "processor": f"127.0.0.1:{processor_port}"},
    )
    env = hhar_env(kafka, ["bootstrap", "home", "master", "shuffle_partitions", "driver_memory"])
    producer = processor = None
    try:
        # The producer replays for about eight seconds; Prometheus scrapes it every half second
        # and, once the replay ended, once more for its final figures (the producer waits for
        # that scrape because it was scraped before: the test sees a scrape during the replay).
        producer = HharProcess(
            ["produce", "--source", str(data), "--topic", topic, "--rate", "250"]
            + ["--commit-interval", "0.5", "--metrics-port", str(producer_port)],
            env,
            tmp_path / "producer",
            "produce",
        )
        poll_until(
            lambda: prometheus.value('up{job="producer"}') == 1 or not producer.running(),
            60,
            "Prometheus scraping the producer",
        )
        assert producer.running(), "the replay ended before Prometheus scraped it once"
        assert producer.wait(120) == 0, producer.stderr[-3000:]
        assert "waiting up to 30 s for the last scrape" in producer.stderr
        events = read_messages(kafka, topic)
        letters = read_messages(kafka, f"{topic}.dlq")
        assert len(events) == VALID_ROWS and len(letters) == len(BAD_LINES) + 1

        def last(metric: str) -> float | None:
            """The producer's last value (its series went stale when it exited)."""
            return prometheus.value(f"last_over_time({metric}{{{by_topic}}}[10m])")

        assert last("hhar_producer_events_sent_total") == len(events)
        assert last("hhar_producer_events_delivered_total") == len(events)
        assert last("hhar_producer_rows_read_total") == VALID_ROWS + len(letters)
        assert last("hhar_producer_send_errors_total") == 0
        assert last("hhar_producer_transactions_committed_total") >= 1
        dead_letters = prometheus.query(
            f'last_over_time(hhar_producer_dead_letters_total{{topic="{topic}.dlq"}}[10m]) > 0'
        )
        kinds = Counter(reason_kind(letter.headers["error_reason"]) for letter in letters)
        assert {dict(labels)["reason"]: value for labels, value in dead_letters.items()} == kinds
        assert sum(kinds.values()) == len(letters)

        # The processor reads the topic in batches of at most 500 events, a batch a second.
        results_prefix = f"{topic}.results."
        processor = HharProcess(
            ["process", "--topic", topic, "--results-prefix", results_prefix]
            + ["--checkpoint", str(tmp_path / "checkpoints"), "--queries", "total_count"]
            + ["--max-offsets-per-trigger", "500", "--metrics-port", str(processor_port)],
            env,
            tmp_path / "processor",
            "process",
        )
        query = f'query="fused",{by_topic}'

        def caught_up() -> bool:
            assert processor.running(), processor.stderr[-3000:]
            return (
                prometheus.value(f"hhar_processor_input_rows_total{{{query}}}") == len(events)
                and prometheus.value(f"hhar_processor_lag_events{{{query}}}") == 0
                and prometheus.value(f"hhar_processor_lag_seconds{{{query}}}") == 0
            )

        poll_until(caught_up, PROCESSOR_TIMEOUT, "Prometheus seeing the processor caught up")
        [total] = read_results(kafka, f"{results_prefix}total_count").values()
        assert total.count == prometheus.value(f"hhar_processor_input_rows_total{{{query}}}")
        assert prometheus.value(f"max_over_time(hhar_processor_lag_events{{{query}}}[10m])") > 0
        batches = prometheus.value('hhar_processor_batches_total{query="fused"}')
        assert batches >= len(events) / 500
        assert (
            prometheus.value('hhar_processor_batch_duration_seconds_count{query="fused"}')
            == batches
        )
        assert prometheus.value('hhar_processor_bad_records_total{query="fused"}') == 0
        assert prometheus.value('hhar_processor_rows_out_total{query="total_count"}') >= 1
        assert prometheus.value('hhar_processor_query_active{query="fused"}') == 1
    finally:
        for process in (producer, processor):
            if process is not None and process.running():
                process.stop(60)
        prometheus.stop()
