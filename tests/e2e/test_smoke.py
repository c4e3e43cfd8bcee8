"""Foundation smoke test: events produced with confluent-kafka come back through Spark's Kafka
source, parsed with the schema derived from SensorEvent, exactly as produced."""

from __future__ import annotations

import random

import pytest
from confluent_kafka import Consumer, Producer
from support.cli import hhar_env, run_hhar

from hhar_stream.schemas import ACTIVITY_LABELS, SensorEvent
from hhar_stream.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e]


def make_events(count: int, seed: int = 7) -> list[SensorEvent]:
    rng = random.Random(seed)
    events = []
    for index in range(count):
        device = rng.choice(["nexus4_1", "nexus4_2"])
        arrival = 1424686735175 + index * 5
        events.append(
            SensorEvent(
                Arrival_Time=arrival,
                Creation_Time=arrival * 1_000_000 + rng.randrange(1_000_000) - 2_000_000_000,
                Device=device,
                Index=index,
                Model="nexus4",
                User=rng.choice("abcdefghi"),
                gt=rng.choice(ACTIVITY_LABELS),
                x=rng.randint(-65536, 65536) / 65536,
                y=rng.randint(-655, 655) / 65536,
                z=rng.uniform(-1, 1),
            )
        )
    return events


def produce(settings: Settings, topic: str, events: list[SensorEvent]) -> None:
    producer = Producer(settings.kafka_client_config() | {"enable.idempotence": True})
    for event in events:
        producer.produce(
            topic, key=event.device, value=event.to_json(), timestamp=event.arrival_time
        )
    assert producer.flush(30) == 0


def test_events_round_trip_through_kafka_and_spark(kafka: Settings, topics, spark) -> None:
    from pyspark.sql import functions as F

    from hhar_stream.schemas.spark import to_spark_schema

    topic = topics.create("smoke")
    events = make_events(1000)
    produce(kafka, topic, events)

    raw = (
        spark.read.format("kafka")
        .options(**kafka.spark_kafka_options())
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
    )
    schema = to_spark_schema(SensorEvent)
    parsed = raw.select(
        F.col("key").cast("string").alias("key"),
        F.col("timestamp"),
        F.from_json(F.col("value").cast("string"), schema).alias("event"),
    )
    rows = parsed.collect()
    assert len(rows) == 1000
    for row in rows:
        assert row["key"] == row["event"]["Device"]
        assert int(row["timestamp"].timestamp() * 1000) == row["event"]["Arrival_Time"]
    read_back = sorted(
        (SensorEvent.model_validate(row["event"].asDict()) for row in rows),
        key=lambda event: event.index,
    )
    assert read_back == events


def test_console_consumer_shows_keys(kafka: Settings, topics, tmp_path) -> None:
    """Kafka's own console consumer, from the project's jars, reads what the producer wrote."""
    import subprocess

    from hhar_stream.local.kafka import LocalKafka

    topic = topics.create("console", partitions=1)
    produce(kafka, topic, make_events(5))
    result = LocalKafka(kafka, run_dir=tmp_path).run_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        [
            "--bootstrap-server",
            kafka.bootstrap,
            "--topic",
            topic,
            "--from-beginning",
            "--max-messages",
            "5",
            "--timeout-ms",
            "20000",
            "--formatter-property",
            "print.key=true",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert len(lines) == 5
    assert all(line.split("\t")[0] in ("nexus4_1", "nexus4_2") for line in lines)
    assert all('"Arrival_Time":' in line for line in lines)


def test_independent_consumer_sees_every_event(kafka: Settings, topics) -> None:
    topic = topics.create("plain")
    events = make_events(50, seed=3)
    produce(kafka, topic, events)
    consumer = Consumer(
        kafka.kafka_client_config()
        | {"group.id": f"check-{topic}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    seen = []
    try:
        while len(seen) < 50:
            message = consumer.poll(10)
            assert message is not None, f"only {len(seen)} of 50 events arrived"
            assert message.error() is None
            seen.append(SensorEvent.model_validate_json(message.value()))
    finally:
        consumer.close()
    assert sorted(seen, key=lambda event: event.index) == events


def test_consume_command_ends_quietly_at_the_end_of_a_topic(
    kafka: Settings, topics, tmp_path
) -> None:
    """`hhar kafka consume` (what `make consume` runs) on a topic with fewer records than asked
    for: the records, then one line saying none came in time, no Java error, exit 0."""
    topic = topics.create("consume", partitions=1)
    produce(kafka, topic, make_events(2))
    result = run_hhar(
        ["kafka", "consume", topic, "--max", "5", "--timeout-ms", "3000"],
        hhar_env(kafka, ["bootstrap", "home"]),
        tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr.splitlines()[-1] == "no more records within 3 s", result.stderr
    assert "ERROR" not in result.stderr and "Exception" not in result.stderr
