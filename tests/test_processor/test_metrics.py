"""The processor's Prometheus metrics: what the status records becomes counters, gauges and
histograms; rows out counted once whether the sinks or the engine report them; the lag against
a real broker's read_committed end offsets; a taken port refused before Spark starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from prometheus_client import generate_latest
from support.cli import error_line, hhar_env, run_hhar
from support.ports import taken_port
from support.prometheus import family_names, promtool_lint, sample_values

from hhar_stream.daemons import free_port
from hhar_stream.metrics import process_registry
from hhar_stream.processor.metrics import METRICS, Arrivals, ProcessorMetrics, epoch_seconds
from hhar_stream.processor.sinks import ResultSinks
from hhar_stream.processor.status import ProcessorStatus
from hhar_stream.settings import Settings

WATERMARK = "2015-02-23T10:21:00.000Z"


def summary(batch_id: int, **changes: Any) -> dict[str, Any]:
    """A micro-batch's figures as `summarize_progress` gives them."""
    return {
        "batch_id": batch_id,
        "timestamp": "2026-12-07T10:00:00.000Z",
        "input_rows": 100,
        "input_rows_per_second": 50.0,
        "processed_rows_per_second": 80.0,
        "duration_ms": {"triggerExecution": 1500, "addBatch": 1200, "walCommit": 30},
        "watermark": WATERMARK,
        "bad_records": 1,
        "late_rows": 2,
        "state_rows": 140,
        "state_bytes": None,
        "end_offsets": {},
    } | changes


@pytest.fixture
def watched(tmp_path: Path):
    """A status and the metrics watching it (and the sinks), without Kafka: no batch names
    where it ended, so no lag is measured."""
    settings = Settings(topic="t", bootstrap=f"127.0.0.1:{free_port()}")
    status = ProcessorStatus(tmp_path / "status.json", settings.topic)
    metrics = ProcessorMetrics(settings, status)
    with metrics.watching():
        yield status, metrics


def values_of(metrics: ProcessorMetrics) -> dict:
    text = generate_latest(process_registry(metrics)).decode()
    assert promtool_lint(text) == ""
    return sample_values(text)


def test_recorded_batches_become_metrics(watched) -> None:
    status, metrics = watched
    status.started("fused", "id-1", "run-1")
    status.progressed("fused", summary(0))
    status.counted("fused", 1, state_bytes=4096, parts_ms={"aggregate": 700, "merge": 5})
    status.progressed("fused", summary(1, input_rows=50))
    text = generate_latest(process_registry(metrics)).decode()
    assert {name for name in family_names(text) if name.startswith("hhar_")} == {
        spec.name for spec in METRICS
    }
    values = values_of(metrics)
    query = (("query", "fused"),)
    assert values[("hhar_processor_input_rows_total", (("query", "fused"), ("topic", "t")))] == 150
    assert values[("hhar_processor_batches_total", query)] == 2
    assert values[("hhar_processor_bad_records_total", query)] == 2
    assert values[("hhar_processor_late_rows_total", query)] == 4
    assert values[("hhar_processor_state_rows", query)] == 140
    assert values[("hhar_processor_state_bytes", query)] == 4096
    assert values[("hhar_processor_query_active", query)] == 1
    assert values[("hhar_processor_watermark_timestamp_seconds", query)] == 1424686860.0
    assert values[("hhar_processor_last_batch_timestamp_seconds", query)] == epoch_seconds(
        "2026-12-07T10:00:00.000Z"
    )
    assert values[("hhar_processor_batch_duration_seconds_count", query)] == 2
    assert values[("hhar_processor_batch_duration_seconds_sum", query)] == 3.0
    parts = {
        dict(labels)["part"]: value
        for (name, labels), value in values.items()
        if name == "hhar_processor_batch_part_duration_seconds_count"
    }
    assert parts == {"addBatch": 2, "walCommit": 2, "aggregate": 1, "merge": 1}

    status.terminated("id-1", None)
    assert values_of(metrics)[("hhar_processor_query_active", query)] == 0


def test_state_bytes_are_absent_when_unknown(watched) -> None:
    status, metrics = watched
    status.started("fused", "id-1", "run-1")
    status.progressed("fused", summary(0))
    assert not [name for name, _ in values_of(metrics) if name == "hhar_processor_state_bytes"]


def rows_out(metrics: ProcessorMetrics) -> dict[str, float]:
    return {
        dict(labels)["query"]: value
        for (name, labels), value in values_of(metrics).items()
        if name == "hhar_processor_rows_out_total"
    }


def test_rows_out_are_counted_once_from_the_sinks_or_the_engine(watched) -> None:
    status, metrics = watched
    sinks = ResultSinks(None, Settings(), ())  # no sink: only the watchers see the records
    status.started("fused", "id-1", "run-1")
    sinks.write({"total_count": [object()], "device_activity": [object()] * 3}, 0)
    status.progressed("fused", summary(0))  # an engine that reports nothing: the sinks count
    assert rows_out(metrics) == {"total_count": 1, "device_activity": 3}

    sinks.write({"total_count": [object()], "device_activity": [object()] * 2}, 1)
    # An engine that reports what it wrote through the sinks: nothing counted twice; what it
    # wrote elsewhere (stairs_by_user) is added.
    status.counted(
        "fused", 1, rows_out={"total_count": 1, "device_activity": 2, "stairs_by_user": 4}
    )
    status.progressed("fused", summary(1))
    assert rows_out(metrics) == {"total_count": 2, "device_activity": 5, "stairs_by_user": 4}

    sinks.write({"windowed_activity": [object()] * 6}, 1)  # windows closed between batches
    assert rows_out(metrics)["windowed_activity"] == 6


def test_arrivals_are_interpolated_between_the_ends_seen() -> None:
    arrivals = Arrivals()
    assert arrivals.arrived(0, 0) is None
    for end, moment in ((5, 100.0), (10, 110.0), (10, 120.0), (30, 130.0)):
        arrivals.record({0: end}, moment)
    assert arrivals.arrived(0, 0) == 100.0  # there at the first look: at least that old
    assert arrivals.arrived(0, 5) == pytest.approx(102.0)  # the 1st of 5 new ones by 110
    assert arrivals.arrived(0, 9) == pytest.approx(110.0)
    assert arrivals.arrived(0, 19) == pytest.approx(125.0)  # 10 came between 120 and 130
    assert arrivals.arrived(0, 30) is None  # not in the topic yet
    arrivals.record({0: 3}, 140.0)  # the topic was made again
    assert arrivals.arrived(0, 0) == 140.0


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def produce_to(producer: Producer, topic: str, counts: dict[int, int]) -> None:
    for partition, count in counts.items():
        for number in range(count):
            producer.produce(topic, value=f"{partition}-{number}".encode(), partition=partition)


def lag(metrics: ProcessorMetrics, topic: str) -> tuple[float | None, float | None]:
    values = values_of(metrics)
    labels = (("query", "fused"), ("topic", topic))
    return (
        values.get(("hhar_processor_lag_events", labels)),
        values.get(("hhar_processor_lag_seconds", labels)),
    )


@pytest.mark.kafka
def test_the_lag_is_what_a_read_committed_reader_has_not_processed(kafka, topics, tmp_path):
    topic = topics.create("lag", partitions=3)
    settings = kafka.changed(topic=topic)
    clock = Clock(1000.0)
    status = ProcessorStatus(tmp_path / "status.json", topic)
    metrics = ProcessorMetrics(settings, status, clock=clock)
    plain = Producer(settings.kafka_client_config())
    produce_to(plain, topic, {0: 10, 1: 10})
    assert plain.flush(30) == 0
    # An open transaction's records are no lag: a read_committed reader (Spark) cannot see them.
    pending = Producer(settings.kafka_client_config() | {"transactional.id": f"{topic}.open"})
    pending.init_transactions(30)
    pending.begin_transaction()
    produce_to(pending, topic, {1: 5})
    assert pending.flush(30) == 0
    try:
        status.started("fused", "id-1", "run-1")
        assert lag(metrics, topic) == (None, None)  # no batch yet: where it is is unknown
        status.progressed("fused", summary(0, end_offsets={topic: {"0": 10, "1": 4}}))
        assert lag(metrics, topic) == (6, 0)  # behind since the first look
        clock.now += 5
        assert lag(metrics, topic) == (6, 5)
        produce_to(plain, topic, {2: 10})
        assert plain.flush(30) == 0
        clock.now += 10
        status.progressed("fused", summary(1, end_offsets={topic: {"0": 10, "1": 10}}))
        # Partition 2's ten events came between the looks at 1005 and 1015: its first at 1006.
        assert lag(metrics, topic) == (10, 9)
        clock.now += 3
        assert lag(metrics, topic) == (10, 12)
        status.progressed("fused", summary(2, end_offsets={topic: {"0": 10, "1": 10, "2": 10}}))
        assert lag(metrics, topic) == (0, 0)
    finally:
        pending.abort_transaction(30)


@pytest.mark.kafka
def test_a_taken_metrics_port_stops_the_processor_before_spark(kafka, tmp_path) -> None:
    with taken_port() as port:
        result = run_hhar(
            ["process", "--checkpoint", str(tmp_path / "checkpoints"), "--metrics-port", str(port)],
            hhar_env(HHAR_BOOTSTRAP=f"127.0.0.1:{free_port()}", HHAR_HOME=str(kafka.home)),
            tmp_path,
            timeout=120,
        )
    assert result.returncode == 2
    assert error_line(result.stderr) == (
        f"error: port {port} on 127.0.0.1 is already in use: stop what listens there or "
        f"choose another --metrics-port (HHAR_PROCESSOR_METRICS_PORT)"
    )
    assert not (tmp_path / "checkpoints").exists()
    assert "Spark" not in result.stderr
