"""Scale-out for real, on one machine: a three-broker KRaft cluster and a Spark standalone
cluster with two workers, both started by the project (`hhar kafka up --brokers 3`,
`hhar spark up --workers 2`), running the real `hhar produce` and `hhar process`."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from support.cli import HharProcess, hhar_env, run_hhar
from test_processor.helpers import assert_same_rows, read_results

from hhar_stream.daemons import free_port_base
from hhar_stream.local.kafka import LocalKafka
from hhar_stream.local.spark import LocalSpark
from hhar_stream.processor.catalogue import BAD_RECORDS, QUERY_NAMES
from hhar_stream.processor.runner import Processor
from hhar_stream.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

ROWS = 24_000
RATE = 4_000  # events/s of the paced replays: about 6 s of replay
DEADLINE = 420.0


def finish(process: HharProcess, timeout: float = DEADLINE) -> str:
    """Wait for a command to end by itself; its stdout (fails with its stderr if it failed)."""
    assert process.wait(timeout) == 0, process.stderr[-3000:]
    return process.stdout


def stop(process: HharProcess) -> str:
    """SIGTERM a command's process group (a clean stop) and wait for it; its stdout."""
    assert process.stop(timeout=120) == 0, process.stderr[-3000:]
    return process.stdout


def committed_rows(settings: Settings, topic: str) -> list[dict]:
    """Every committed event of `topic`, read by an independent read_committed consumer."""
    consumer = Consumer(
        settings.kafka_client_config()
        | {
            "group.id": f"check-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        rows, ended = [], set()
        deadline = time.monotonic() + 120
        while len(ended) < len(partitions):
            assert time.monotonic() < deadline, "the events topic was not read to its end"
            message = consumer.poll(5)
            if message is None:
                continue
            if message.error():
                ended.add(message.partition())
                continue
            rows.append(json.loads(message.value()))
        return rows
    finally:
        consumer.close()


def wait_for_result(
    settings: Settings,
    query: str,
    summarize: Callable[[dict], Any],
    expected: Any,
    process: HharProcess,
) -> None:
    """Poll a result topic until `summarize(its current state)` equals `expected` (the processor
    runs on)."""
    deadline = time.monotonic() + DEADLINE
    seen = None
    while time.monotonic() < deadline:
        assert process.running(), process.stderr[-3000:]
        try:
            state = read_results(settings, settings.result_topic(query))
        except (AssertionError, KeyError, KafkaException):  # a broker may be coming back
            state = {}
        seen = summarize(state)
        if seen == expected:
            return
        time.sleep(2)
    pytest.fail(f"{query} stayed at {seen}, expected {expected}")


def wait_for_total(settings: Settings, expected: int, process: HharProcess) -> None:
    """Poll the total_count result topic until it says `expected`."""
    wait_for_result(
        settings,
        "total_count",
        lambda state: [record.count for record in state.values()],
        [expected],
        process,
    )


@pytest.fixture(scope="module")
def clusters(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Three Kafka nodes and a Spark master with two workers, and an HHAR-like data folder."""
    work = tmp_path_factory.mktemp("cluster")
    step = LocalKafka.PORT_STEP
    kafka_base = free_port_base(*(node * step + offset for node in range(3) for offset in (0, 1)))
    spark_base = free_port_base(0, 1, 2, 3)  # master, its web UI, the two workers' web UIs
    settings = base_settings.changed(
        **{
            "kafka_brokers": 3,
            "kafka_port": kafka_base,
            "kafka_controller_port": kafka_base + 1,
            "kafka_heap": "320m",
            "replication_factor": 3,
            "min_insync_replicas": 2,
            "spark_workers": 2,
            "spark_master_port": spark_base,
            "spark_master_ui_port": spark_base + 1,
            "spark_worker_memory": "1g",
        }
    )
    data = work / "data"
    synth = run_hhar(
        ["data", "synth", "--out", str(data), "--rows", str(ROWS), "--files", "4"],
        hhar_env(),
        work / "cli",
        "synth",
    )
    assert synth.returncode == 0, synth.stderr[-3000:]
    kafka = LocalKafka(settings, run_dir=work / "kafka")
    spark = LocalSpark(settings, run_dir=work / "spark")
    try:
        kafka.up()
        spark.up()
        settings = settings.changed(**{"bootstrap": kafka.bootstrap, "data": data})
        yield SimpleNamespace(settings=settings, kafka=kafka, spark=spark, data=data, work=work)
    finally:
        spark.down()
        kafka.down()


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a user whose HHAR_* settings are `settings` (plus `extra`)."""
    return hhar_env(
        settings,
        [
            "bootstrap",
            "home",
            "topic",
            "results_prefix",
            "replication_factor",
            "min_insync_replicas",
            "checkpoint",
        ],
        **{
            "HHAR_PARTITIONS": "3",
            "HHAR_HISTORY": str(settings.data),
            "HHAR_DRIVER_MEMORY": "768m",
            "HHAR_EXECUTOR_MEMORY": "512m",
            "HHAR_SHUFFLE_PARTITIONS": "4",
            "HHAR_WINDOW": "1 minute",
            "HHAR_WATERMARK": "30 seconds",
        }
        | extra,
    )


def run_settings(clusters, name: str) -> Settings:
    """Settings of one scenario: its own topics and checkpoints on the clusters."""
    run = f"cluster-{name}-{uuid.uuid4().hex[:6]}"
    return clusters.settings.changed(
        **{
            "topic": f"{run}.events",
            "results_prefix": f"{run}.results.",
            "checkpoint": clusters.work / run / "checkpoints",
        }
    )


def assert_exactly_once(settings: Settings) -> None:
    rows = committed_rows(settings, settings.topic)
    keys = Counter((r["User"], r["Device"], r["Index"], r["Arrival_Time"]) for r in rows)
    duplicated = sum(count - 1 for count in keys.values() if count > 1)
    assert (len(keys), duplicated) == (ROWS, 0)


def test_pipeline_on_the_clusters_equals_the_single_node_default(
    clusters, kafka: Settings, spark
) -> None:
    on_clusters = run_settings(clusters, "exact")
    env = cli_env(on_clusters)
    cli = clusters.work / "cli"
    finish(
        HharProcess(["produce", "--source", str(clusters.data), "--max"], env, cli, "exact-produce")
    )
    processed = json.loads(
        finish(
            HharProcess(
                ["process", "--available-now", "--json", "--master", clusters.spark.master_url],
                env,
                cli,
                "exact-process",
            )
        )
    )
    assert processed["events"] == ROWS
    assert_exactly_once(on_clusters)

    # The same replay and processing on the single-node default: the session's broker and
    # local Spark.
    single = kafka.changed(
        **{
            "topic": on_clusters.topic,
            "results_prefix": on_clusters.results_prefix,
            "checkpoint": clusters.work / "single" / "checkpoints",
            "history": clusters.data,
            "available_now": True,
            "window": "1 minute",
            "watermark": "30 seconds",
        }
    )
    finish(
        HharProcess(
            ["produce", "--source", str(clusters.data), "--max"],
            cli_env(single, HHAR_REPLICATION_FACTOR="1", HHAR_MIN_INSYNC_REPLICAS="1"),
            cli,
            "single-produce",
        )
    )
    processor = Processor(single)
    try:
        processor.start(spark)
        deadline = time.monotonic() + DEADLINE
        while not processor.wait(2.0):
            assert time.monotonic() < deadline
    finally:
        processor.stop()
    for query in (*QUERY_NAMES, BAD_RECORDS):
        assert_same_rows(
            read_results(on_clusters, on_clusters.result_topic(query)),
            read_results(single, single.result_topic(query)),
        )


def test_a_broker_killed_mid_replay_loses_and_duplicates_nothing(clusters) -> None:
    settings = run_settings(clusters, "broker")
    env = cli_env(settings, HHAR_TRIGGER="1 second")
    cli = clusters.work / "cli"
    producer = HharProcess(
        ["produce", "--source", str(clusters.data), "--rate", str(RATE)], env, cli, "broker-produce"
    )
    processor = HharProcess(
        ["process", "--master", clusters.spark.master_url], env, cli, "broker-process"
    )
    try:
        time.sleep(3)  # part of the replay is delivered before the crash
        clusters.kafka.kill_node(2)
        time.sleep(10)  # the broker stays down for 10 s while both clients carry on
        clusters.kafka.start_node(2)
        finish(producer)
        wait_for_total(settings, ROWS, processor)
    finally:
        if processor.running():
            stop(processor)
        clusters.kafka.start_node(2)
    assert_exactly_once(settings)


def test_a_spark_worker_killed_mid_stream_is_recovered_exactly(clusters) -> None:
    settings = run_settings(clusters, "worker")
    env = cli_env(settings, HHAR_TRIGGER="1 second")
    first = min(clusters.data.glob("part-*"))
    cli = clusters.work / "cli"
    finish(HharProcess(["produce", "--source", str(first), "--max"], env, cli, "worker-produce"))
    processor = HharProcess(
        ["process", "--master", clusters.spark.master_url], env, cli, "worker-process"
    )
    try:
        # The stream runs (its first results are out) before the worker dies; the other part
        # files arrive while one worker is gone.
        wait_for_result(
            settings,
            "total_count",
            lambda state: any(record.count > 0 for record in state.values()),
            True,
            processor,
        )
        clusters.spark.kill_worker(1)
        producer = HharProcess(
            ["produce", "--source", str(clusters.data / "part-0000[1-9]-*"), "--rate", str(RATE)],
            env,
            cli,
            "worker-produce-rest",
        )
        finish(producer)
        expected_counts = Counter(
            (row["Device"], row["gt"]) for row in committed_rows(settings, settings.topic)
        )
        assert sum(expected_counts.values()) == ROWS
        # The fused query writes total_count, then device_activity, ... from the same batch:
        # wait for both (stopping between the two would leave device_activity a batch behind).
        wait_for_total(settings, ROWS, processor)
        wait_for_result(
            settings,
            "device_activity",
            lambda state: {(r.device, r.gt): r.count for r in state.values()},
            dict(expected_counts),
            processor,
        )
        stop(processor)
    finally:
        if processor.running():
            stop(processor)
        clusters.spark.start_worker(1)
