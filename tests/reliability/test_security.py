"""Scenario 8: security. A broker of this module's own, started as `hhar kafka up --secure`
starts it (SASL/SCRAM on the client port, ACLs per client user): a client without credentials
and a client with a wrong password are refused; each user may do its part and nothing else;
and the whole pipeline runs with credentials taken from settings (``HHAR_SASL_*``): `hhar
produce` as hhar-producer, `hhar process` as hhar-processor, `hhar watch --once` as
hhar-watch. No password appears in anything they print or write.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr
from support.cli import HharProcess, error_line, hhar_env
from test_processor.helpers import read_results
from test_producer.helpers import write_part_files

from hhar_stream.daemons import free_port
from hhar_stream.kafka_client import NO_TIME_RETENTION
from hhar_stream.local.kafka import (
    ADMIN_USER,
    PROCESSOR_USER,
    PRODUCER_USER,
    WATCH_USER,
    LocalKafka,
)
from hhar_stream.processor.session import spark_log_path
from hhar_stream.settings import Settings

from .harness import count_exactness, read_messages, row_identities

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROWS_PER_FILE = 300
CLIENT_FIELDS = (
    "bootstrap",
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password",
)
SPARK_FIELDS = ("home", "master", "shuffle_partitions", "driver_memory")


@pytest.fixture(scope="module")
def secure(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """A secure single-node broker of this module's own."""
    settings = base_settings.changed(
        **{
            "kafka_port": free_port(),
            "kafka_controller_port": free_port(),
            "kafka_secure": True,
            "kafka_ready_timeout": 120.0,
        }
    )
    broker = LocalKafka(settings, run_dir=tmp_path_factory.mktemp("secure-broker"))
    broker.up()
    try:
        yield broker
    finally:
        broker.down()


def refusals(config: dict, timeout: float = 10.0) -> list[KafkaError]:
    """The errors a client with `config` meets when it asks for metadata (it must fail)."""
    reported: list[KafkaError] = []
    admin = AdminClient(config | {"error_cb": reported.append, "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=timeout)
    admin.poll(0)
    return reported


def produce_command(
    broker: LocalKafka, source: Path, env: dict[str, str], workdir: Path, name: str, *args: str
) -> HharProcess:
    """`hhar produce` of `source` to the secure broker, to its end."""
    process = HharProcess(["produce", "--source", str(source), "--max", *args], env, workdir, name)
    process.wait(120)
    return process


def test_a_client_without_credentials_is_refused(secure: LocalKafka, tmp_path: Path) -> None:
    assert refusals({"bootstrap.servers": secure.bootstrap})
    [source] = write_part_files(tmp_path / "data", files=1, rows_per_file=5)
    process = produce_command(
        secure, source, hhar_env(HHAR_BOOTSTRAP=secure.bootstrap), tmp_path, "produce"
    )
    assert process.process.returncode == 1
    assert error_line(process.stderr).startswith(f"error: cannot reach Kafka at {secure.bootstrap}")


def test_a_wrong_password_is_refused(secure: LocalKafka, tmp_path: Path) -> None:
    wrong = secure.client_settings(PRODUCER_USER).model_copy(
        update={"sasl_password": SecretStr("not-the-password")}
    )
    errors = refusals(wrong.kafka_client_config())
    assert KafkaError._AUTHENTICATION in {error.code() for error in errors}, errors
    [source] = write_part_files(tmp_path / "data", files=1, rows_per_file=5)
    process = produce_command(secure, source, hhar_env(wrong, CLIENT_FIELDS), tmp_path, "produce")
    assert process.process.returncode == 1
    line = error_line(process.stderr)
    assert line.startswith(f"error: cannot reach Kafka at {secure.bootstrap}: ")
    assert "not-the-password" not in process.stderr + process.stdout


@pytest.mark.parametrize(
    ("user", "command"),
    [
        (PRODUCER_USER, ["produce", "--source", "{source}", "--max"]),
        (PROCESSOR_USER, ["process", "--available-now", "--history", "{source}"]),
        (WATCH_USER, ["watch", "--once"]),
    ],
)
def test_a_wrong_password_is_named_as_such(
    secure: LocalKafka, tmp_path: Path, user: str, command: list[str]
) -> None:
    wrong = secure.client_settings(user).model_copy(
        update={"sasl_password": SecretStr("not-the-password")}
    )
    [source] = write_part_files(tmp_path / "data", files=1, rows_per_file=5)
    args = [str(source) if arg == "{source}" else arg for arg in command]
    process = HharProcess(args, hhar_env(wrong, CLIENT_FIELDS), tmp_path, command[0])
    assert process.wait(120) == 1
    line = error_line(process.stderr)
    assert f"authentication as user '{user}' failed" in line, line
    assert "not-the-password" not in process.stderr + process.stdout


def refused_write(settings: Settings, topic: str) -> KafkaError | None:
    """The error of one write to `topic` as `settings`' user (None: it was written)."""
    outcome: list[KafkaError | None] = []
    producer = Producer(
        settings.kafka_client_config()
        | {"message.timeout.ms": 10_000, "on_delivery": lambda error, _: outcome.append(error)}
    )
    producer.produce(topic, b"acl-check")
    producer.flush(20)
    return outcome[0]


GROUPS = {
    PRODUCER_USER: "hhar-acl-check",
    PROCESSOR_USER: "spark-kafka-acl-check",
    WATCH_USER: "hhar-watch",
}
"""A consumer group each user may use, so that a refusal is about the topic."""


def refused_read(settings: Settings, topic: str) -> KafkaError | None:
    """The error of a read of `topic` as `settings`' user (None: it could read)."""
    consumer = Consumer(
        settings.kafka_client_config()
        | {
            "group.id": GROUPS[settings.sasl_username],
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, -2)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error():
                error = message.error()
                return None if error.code() == KafkaError._PARTITION_EOF else error
            if message is not None:
                return None
        return None
    finally:
        consumer.close()


def test_each_user_may_do_its_part_only(secure: LocalKafka) -> None:
    admin_settings = secure.client_settings(ADMIN_USER)
    events, letters = admin_settings.topic, admin_settings.dead_letter_topic
    results = admin_settings.result_topic("acl_check")
    admin = AdminClient(admin_settings.kafka_client_config())
    for topic in (events, letters, results):
        # As the producer creates them: the events carry 2015 timestamps, which time-based
        # retention would delete at once.
        future = admin.create_topics([NewTopic(topic, 1, 1, config=NO_TIME_RETENTION)])[topic]
        try:
            future.result(timeout=30)
        except KafkaException as error:
            assert error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    producer, processor, watch = (
        secure.client_settings(user) for user in (PRODUCER_USER, PROCESSOR_USER, WATCH_USER)
    )
    denied = KafkaError.TOPIC_AUTHORIZATION_FAILED

    assert refused_write(producer, letters) is None  # events stay clean for the pipeline
    assert refused_read(processor, events) is None
    assert refused_write(processor, results) is None
    assert refused_read(watch, results) is None

    assert refused_read(producer, events).code() == denied
    assert refused_write(processor, events).code() == denied
    assert refused_write(watch, results).code() == denied
    assert refused_read(watch, events).code() == denied
    assert refused_write(producer, results).code() == denied


def test_the_pipeline_runs_with_credentials_and_never_shows_them(
    secure: LocalKafka, tmp_path: Path, ledger
) -> None:
    passwords = set(secure.credentials().values())
    data = tmp_path / "data"
    paths = write_part_files(data, files=2, rows_per_file=ROWS_PER_FILE)
    expected = row_identities(line for path in paths for line in path.read_text().splitlines())
    producer_settings = secure.client_settings(PRODUCER_USER)
    processor_settings = secure.client_settings(PROCESSOR_USER).changed(
        **{"checkpoint": tmp_path / "checkpoints", "history": data}
    )
    watch_settings = secure.client_settings(WATCH_USER)

    produced = produce_command(
        secure,
        data,
        hhar_env(producer_settings, CLIENT_FIELDS, HHAR_LOG_LEVEL="DEBUG"),
        tmp_path,
        "produce",
    )
    assert produced.process.returncode == 0, produced.stderr[-3000:]

    processed = HharProcess(
        ["process", "--available-now", "--json"],
        hhar_env(processor_settings, (*CLIENT_FIELDS, *SPARK_FIELDS, "checkpoint", "history")),
        tmp_path,
        "process",
    )
    assert processed.wait(600) == 0, processed.stderr[-3000:]
    assert json.loads(processed.stdout)["queries"]["fused"]["bad_records"] == 0

    watched = HharProcess(
        ["watch", "--once", "--query", "total_count"],
        hhar_env(watch_settings, CLIENT_FIELDS),
        tmp_path,
        "watch",
    )
    assert watched.wait(120) == 0, watched.stderr[-3000:]
    configured = HharProcess(
        ["config"], hhar_env(producer_settings, CLIENT_FIELDS), tmp_path, "config"
    )
    assert configured.wait(60) == 0

    admin = secure.client_settings(ADMIN_USER)
    events = read_messages(admin, admin.topic)
    seen = row_identities(m.value for m in events)
    lost, duplicated, unexpected = count_exactness(set(expected), seen)
    (total,) = read_results(admin, admin.result_topic("total_count")).values()
    ledger.record(
        "8. SASL/SCRAM pipeline (producer, processor, watch users)",
        1,
        len(expected),
        total.count,
        lost + max(len(expected) - total.count, 0),
        duplicated + max(total.count - len(expected), 0),
        f"{len(events)} events in the topic; total_count {total.count}; no password in "
        f"output, logs or checkpoint",
    )
    assert (lost, duplicated, unexpected) == (0, 0, 0)
    assert total.count == len(expected)
    assert watched.stdout.startswith(f"== total_count\ncount\n{len(expected)}\n")
    assert "HHAR_SASL_PASSWORD=**********" in configured.stdout

    shown = [
        process.stdout + process.stderr for process in (produced, processed, watched, configured)
    ]
    shown += [
        path.read_text(errors="replace")
        for path in (tmp_path / "checkpoints").rglob("*")
        if path.is_file()
    ]
    spark_log = spark_log_path(processor_settings, "hhar-process")  # Spark's own output
    assert spark_log.is_file()
    shown.append(spark_log.read_text(errors="replace"))
    assert not [password for password in passwords if any(password in text for text in shown)]
