"""Scenario 7: data loss on the broker side. The processor has read the first 300 events of
the topic; then Kafka removes the next 150 before it reads them (``delete_records`` moves the
log start offset exactly as retention does when it deletes old segments, without waiting for
the broker's five-minute retention check).

The documented choice (README, Troubleshooting): by default (``failOnDataLoss``) the processor
stops with a clear message and its checkpoint stays where it was; with
``HHAR_FAIL_ON_DATA_LOSS=false`` it continues past the gap, and its results are those of
every event Kafka still had.

The failed run is judged by the error `Processor.wait` raised (what `hhar process` prints) and
by the errors its queries ended with, worded as `hhar process` words them
("query <name> failed: <message>").
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from pyspark.sql import functions as F
from test_processor.helpers import (
    make_events,
    produce,
    read_results,
    topic_messages,
)

from hhar_stream.processor.fused import FUSED_QUERY
from hhar_stream.processor.runner import describe_failure  # as hhar process words it
from hhar_stream.settings import Settings

from .processing import (
    assert_results_equal_batch,
    available_now_run,
    emitted_watermark,
    failed_queries,
    last_committed,
    processor_settings,
)

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

READ, REMOVED, LATER = 300, 150, 300
"""Events read before the loss, removed unread, and written after them."""


@pytest.fixture(scope="module")
def data_loss(kafka: Settings, spark, module_topics, tmp_path_factory: pytest.TempPathFactory):
    """The three runs over one single-partition topic: before the loss, after it with
    failOnDataLoss, after it without."""
    settings = processor_settings(
        kafka,
        tmp_path_factory.mktemp("data-loss"),
        module_topics.create("reliability-data-loss", partitions=1),
    )
    admin = AdminClient(kafka.kafka_client_config())
    events = make_events(READ + REMOVED + LATER, seed=51)
    produce(settings, settings.topic, events[:READ])
    first, error = available_now_run(spark, settings)
    assert error is None and not failed_queries(first), error
    checkpoint = Path(settings.checkpoint) / FUSED_QUERY
    read_up_to = last_committed(checkpoint)

    produce(settings, settings.topic, events[READ:])
    every_message = topic_messages(spark, settings)
    removal = TopicPartition(settings.topic, 0, READ + REMOVED)
    admin.delete_records([removal])[removal].result(timeout=30)

    failing, failing_error = available_now_run(spark, settings)
    failures = {
        name: f"query {name} failed: {describe_failure(query.exception())}"
        for name, query in failing.queries.items()
        if query.exception() is not None
    }
    committed_after_failure = last_committed(checkpoint)
    continuing, continue_error = available_now_run(
        spark, settings.changed(**{"fail_on_data_loss": False})
    )
    yield SimpleNamespace(
        settings=settings,
        every_message=every_message,
        failures=failures,
        failing_error=failing_error,
        read_up_to=read_up_to,
        committed_after_failure=committed_after_failure,
        continuing=continuing,
        continue_error=continue_error,
    )


def test_by_default_the_processor_stops_and_keeps_its_checkpoint(data_loss) -> None:
    assert data_loss.failures, "no query failed"
    assert data_loss.committed_after_failure == data_loss.read_up_to


def test_the_data_loss_message_is_clear_and_says_how_to_continue(data_loss) -> None:
    assert data_loss.failing_error is not None, "wait did not report the failure"
    for text in [data_loss.failing_error, *data_loss.failures.values()]:
        assert "\n" not in text
        assert "lost" in text.lower() or "data loss" in text.lower(), text
        assert "fail-on-data-loss" in text or "FAIL_ON_DATA_LOSS" in text, text


def test_without_fail_on_data_loss_it_continues_past_the_gap(data_loss, spark, ledger) -> None:
    settings = data_loss.settings
    (total,) = read_results(settings, settings.result_topic("total_count")).values()
    expected = READ + LATER
    ledger.record(
        "7. broker removed unread events",
        1,
        expected,
        total.count,
        max(expected - total.count, 0),
        max(total.count - expected, 0),
        f"{REMOVED} unread events deleted (log start moved); failOnDataLoss=true: "
        f"{len(data_loss.failures)} queries stopped, checkpoint unchanged; false: "
        f"continued without them",
    )
    assert data_loss.continue_error is None and not failed_queries(data_loss.continuing)
    assert total.count == expected
    remaining = data_loss.every_message.where(
        (F.col("offset") < READ) | (F.col("offset") >= READ + REMOVED)
    )
    watermark = emitted_watermark(Path(settings.checkpoint))
    assert_results_equal_batch(spark, settings, watermark, remaining)


def test_without_fail_on_data_loss_it_reports_how_many_events_it_skipped(data_loss) -> None:
    assert data_loss.continuing.summary()["skipped_events"] == REMOVED
