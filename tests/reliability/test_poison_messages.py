"""Scenario 4: poison messages on the events topic (not JSON, wrong types, empty, a null value,
a 1 MB value, invalid UTF-8, JSON arrays...) while the processor runs: it keeps running,
counts each of them as a bad record, and its results equal those of the valid events alone.

The processor is the fused engine (the default of `hhar process`) with a trigger, not
available-now: events arrive, then the poison, then more events, and it must still be
processing when the last events are counted.
"""

from __future__ import annotations

from functools import reduce
from pathlib import Path

import pytest
from confluent_kafka import Producer
from pyspark.sql import functions as F
from support.polling import poll_until
from test_processor.helpers import (
    BAD_MESSAGES,
    make_events,
    produce,
    read_results,
    topic_messages,
)

from hhar_stream.errors import QueryFailedError
from hhar_stream.processor.catalogue import BAD_RECORDS, QUERY_NAMES
from hhar_stream.processor.fused import FUSED_QUERY, watermark_text
from hhar_stream.processor.runner import Processor
from hhar_stream.settings import Settings

from .processing import (
    RUN_TIMEOUT,
    assert_results_equal_batch,
    available_now_run,
    failed_queries,
    processor_settings,
)

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

EVENTS_BEFORE, EVENTS_AFTER = 400, 400
WATERMARK_SECONDS = 30

_VALID = make_events(1, seed=3)[0].to_json()
POISON: dict[str, bytes | None] = {
    "not JSON": b"poison: this is not JSON",
    "empty value": b"",
    "null value": None,
    "invalid UTF-8": b'{"Device":"\xff\xfe","Index":1}',
    "JSON array of an event": f"[{_VALID}]".encode(),
    "JSON array": b"[1, 2, 3]",
    "JSON null": b"null",
    "a number": b"42",
    "truncated event": _VALID[:60].encode(),
    "event with a 20-digit time": _VALID.replace(
        _VALID[: _VALID.index(",")], '{"Arrival_Time":12345678901234567890'
    ).encode(),
    **{f"tests' bad message {number}": value for number, value in enumerate(BAD_MESSAGES, 1)},
}
"""What a careless or hostile producer may write to the events topic, by name. The messages
that used to stop or fool the processor have a test of their own below."""

ONE_MEGABYTE_VALUE = b'{"Arrival_Time":1,"Device":"' + b"x" * 1_000_000 + b'"}'
INVALID_UTF8_EVENT = _VALID.replace('"Model":"nexus4"', '"Model":"nex\xff\xfeus"').encode("latin-1")
"""A valid event but for two bytes of its Model that are not UTF-8."""
BEYOND_SPARK_TIMESTAMPS = (
    make_events(1, seed=3)[0].model_copy(update={"arrival_time": 10**16}).to_json().encode()
)
"""A valid `SensorEvent` (Arrival_Time is any non-negative long) whose Arrival_Time, as
milliseconds, overflows Spark's microsecond timestamps (year 318857)."""


def produce_poison(
    settings: Settings, topic: str, poison: list[bytes | None]
) -> set[tuple[int, int]]:
    """Write the poison messages (up to 2 MB each); their (partition, offset)."""
    written: list[tuple[int, int]] = []

    def delivered(error, message) -> None:  # noqa: ANN001 - confluent's callback
        assert error is None, error
        written.append((message.partition(), message.offset()))

    producer = Producer(settings.kafka_client_config() | {"message.max.bytes": 2_000_000})
    for value in poison:
        producer.produce(topic, key=b"poison", value=value, on_delivery=delivered)
    assert producer.flush(30) == 0
    assert len(written) == len(poison)
    return set(written)


def test_poison_messages_are_counted_and_change_no_result(
    kafka: Settings, spark, topics, tmp_path: Path, ledger
) -> None:
    settings = processor_settings(
        kafka,
        tmp_path,
        topics.create("reliability-poison"),
        watermark=f"{WATERMARK_SECONDS} seconds",
    )
    before = make_events(EVENTS_BEFORE, seed=41)
    after = make_events(EVENTS_AFTER, first_index=EVENTS_BEFORE, seed=42)
    final_watermark = watermark_text(after[-1].arrival_time - WATERMARK_SECONDS * 1000)
    processor = Processor(settings)

    def counted() -> int:
        processor.wait(0.5)  # raises when a query failed...
        assert not failed_queries(processor)  # ...or should (see the last test)
        totals = read_results(settings, settings.result_topic("total_count"))
        return next(iter(totals.values())).count if totals else 0

    def read_by_every_query() -> dict[str, int]:
        """Messages each streaming query has read in batches that ended."""
        processor.wait(0.5)
        assert not failed_queries(processor)
        return {
            name: query["input_rows"]
            for name, query in processor.status.snapshot()["queries"].items()
        }

    def windows_closed_up_to_the_end() -> bool:
        progress = processor.status.snapshot()["queries"][FUSED_QUERY]["last_progress"]
        return progress is not None and progress["watermark"] == final_watermark

    messages = EVENTS_BEFORE + len(POISON) + EVENTS_AFTER
    try:
        produce(settings, settings.topic, before)
        processor.start(spark)
        poll_until(lambda: counted() == EVENTS_BEFORE, RUN_TIMEOUT, "the first events counted")
        poison = produce_poison(settings, settings.topic, list(POISON.values()))
        produce(settings, settings.topic, after)
        poll_until(
            lambda: set(read_by_every_query().values()) == {messages},
            RUN_TIMEOUT,
            lambda: f"{messages} messages read by every query: {read_by_every_query()}",
        )
        poll_until(windows_closed_up_to_the_end, RUN_TIMEOUT, f"the watermark at {final_watermark}")
        still_running = {name: query.isActive for name, query in processor.queries.items()}
    finally:
        processor.stop()

    total = counted()
    expected = EVENTS_BEFORE + EVENTS_AFTER
    bad = processor.summary()["queries"]
    kept = read_results(settings, settings.result_topic(BAD_RECORDS))
    ledger.record(
        "4. poison messages",
        len(POISON),
        expected,
        total,
        max(expected - total, 0),
        max(total - expected, 0),
        f"{len(kept)} of {len(POISON)} poison messages in bad_records; processor kept running",
    )
    assert all(still_running.values()), still_running
    assert total == expected
    counts = {name: (bad[name]["bad_records"], bad[name]["input_rows"]) for name in bad}
    assert all(count == len(POISON) for count, _ in counts.values()), counts
    assert {(record.partition, record.offset) for record in kept.values()} == poison
    assert all(record.reason for record in kept.values())

    raw = topic_messages(spark, settings)
    is_poison = reduce(
        lambda either, one: either | one,
        (
            (F.col("partition") == partition) & (F.col("offset") == offset)
            for partition, offset in poison
        ),
    )
    assert_results_equal_batch(spark, settings, final_watermark, raw.where(~is_poison), QUERY_NAMES)
    assert_results_equal_batch(spark, settings, final_watermark, raw, [BAD_RECORDS])


def test_messages_that_stop_or_fool_the_processor_are_bad_records(
    kafka: Settings, spark, topics, tmp_path: Path
) -> None:
    settings = processor_settings(kafka, tmp_path, topics.create("reliability-poison-today"))
    events = make_events(50, seed=43)
    messages = [ONE_MEGABYTE_VALUE, BEYOND_SPARK_TIMESTAMPS, INVALID_UTF8_EVENT]
    produce(settings, settings.topic, events)
    offsets = sorted(produce_poison(settings, settings.topic, messages))
    processor, error = available_now_run(spark, settings)
    totals = read_results(settings, settings.result_topic("total_count"))
    kept = read_results(settings, settings.result_topic(BAD_RECORDS))
    assert error is None and not failed_queries(processor), error or failed_queries(processor)
    set_aside = {(record.partition, record.offset) for record in kept.values()}
    one_megabyte, far_future, invalid_utf8 = offsets  # in the order they were written
    assert one_megabyte in set_aside, "the 1 MB message is not a bad record"
    assert invalid_utf8 in set_aside, "the event with invalid UTF-8 is not a bad record"
    (total,) = totals.values()
    assert total.count == len(events) + (far_future not in set_aside)


def test_bad_records_before_any_event_do_not_stop_the_processor(
    kafka: Settings, spark, topics, tmp_path: Path
) -> None:
    settings = processor_settings(kafka, tmp_path, topics.create("reliability-poison-first"))
    produce(settings, settings.topic, [], BAD_MESSAGES)
    processor, error = available_now_run(spark, settings)
    totals = read_results(settings, settings.result_topic("total_count"))
    kept = read_results(settings, settings.result_topic(BAD_RECORDS))
    assert error is None and not failed_queries(processor), error or failed_queries(processor)
    assert [record.count for record in totals.values()] in ([], [0])
    assert len(kept) == len(BAD_MESSAGES)


def test_a_query_that_failed_is_reported_by_wait(
    kafka: Settings, spark, topics, tmp_path: Path
) -> None:
    """The bad_records output topic takes records of at most 64 bytes, so that query fails at
    its first bad record; `wait` is called only once the failure is known."""
    settings = processor_settings(
        kafka, tmp_path, topics.create("reliability-poison-failed"), queries="total_count"
    )
    topics.create_named(
        [settings.result_topic(BAD_RECORDS)], partitions=1, config={"max.message.bytes": "64"}
    )
    processor = Processor(settings)
    try:
        produce(settings, settings.topic, make_events(20, seed=45), [b"poison"])
        processor.start(spark)
        poll_until(lambda: failed_queries(processor), RUN_TIMEOUT, "the bad_records failure")
        with pytest.raises(QueryFailedError, match="bad_records"):
            poll_until(lambda: processor.wait(1.0), RUN_TIMEOUT, "wait to report the failure")
    finally:
        processor.stop()
