"""The catalogue of queries and the processor's plan, without Spark: what runs, in which
output mode, from what; how a failed query is told."""

from __future__ import annotations

import pytest

from hhar_stream.errors import ConfigError
from hhar_stream.processor.catalogue import BAD_RECORDS, CATALOGUE, QUERY_NAMES
from hhar_stream.processor.runner import Processor, describe_failure
from hhar_stream.schemas.results import RESULT_RECORDS
from hhar_stream.settings import Settings


def test_every_query_is_in_the_catalogue_with_its_output_mode() -> None:
    assert list(CATALOGUE) == [*QUERY_NAMES, BAD_RECORDS]
    modes = {name: query.output_mode for name, query in CATALOGUE.items()}
    assert modes == {
        "total_count": "complete",
        "device_activity": "complete",
        "device_activity_cube": "complete",
        "device_activity_rollup": "complete",
        "stairs_by_user": "update",
        "activity_stats": "complete",
        "live_vs_historical": "complete",
        "windowed_activity": "append",
        BAD_RECORDS: "append",
    }
    assert {name: query.record for name, query in CATALOGUE.items()} == RESULT_RECORDS


def test_every_query_on_the_totals_has_both_functions() -> None:
    for query in CATALOGUE.values():
        if query.reads == "totals":
            assert query.on_events is not None and query.derive is not None, query.name
            assert query.on_events.__name__ == query.derive.__name__ == query.name
        else:
            assert query.derive is None, query.name
    assert [q.name for q in CATALOGUE.values() if q.uses_history] == ["live_vs_historical"]


def test_the_processor_checks_its_selection_before_any_io() -> None:
    processor = Processor(Settings(queries="total_count,stairs_by_user", sink="memory"))
    assert processor.outputs == ["total_count", "stairs_by_user", BAD_RECORDS]
    assert processor.streaming_names() == ["fused"]
    with pytest.raises(ConfigError, match=r"^unknown query 'total' in queries"):
        Processor(Settings(queries="total"))


def test_a_failed_query_is_told_in_one_line() -> None:
    spark_error = Exception(
        "[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: "
        "[STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE] Provided key schema does not match.\n"
        "\tat org.apache.spark..."
    )
    assert describe_failure(spark_error) == (
        "[STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE] Provided key schema does not match. "
        "(the checkpoint holds another query's state: start over with --reset)"
    )
    ours = Exception(
        "An exception was raised by the Python Proxy.\nTraceback (most recent call last):\n"
        "hhar_stream.errors.QueryFailedError: writing total_count results failed: timed out\n"
    )
    assert describe_failure(ours) == "writing total_count results failed: timed out"


def test_a_batch_zero_in_a_folder_with_files_is_not_called_another_querys() -> None:
    spark_error = Exception(
        "[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: "
        "[STATE_STORE_CHECKPOINT_LOCATION_NOT_EMPTY] The checkpoint location /c/fused/offsets "
        "should be empty on batch 0\n\tat org.apache.spark..."
    )
    text = describe_failure(spark_error)
    assert text.startswith("[STATE_STORE_CHECKPOINT_LOCATION_NOT_EMPTY] The checkpoint location")
    assert "another query" not in text and "--reset" in text


def test_data_loss_is_told_with_how_to_go_on() -> None:
    wrapped = Exception(
        "An exception was raised by the Python Proxy. Return Message: Traceback (most recent "
        "call last):\n  ...\npy4j.protocol.Py4JJavaError: An error occurred while calling "
        "o97.collectToPython.\n: org.apache.spark.SparkException: Job aborted\n"
        "Caused by: org.apache.spark.sql.kafka010.KafkaIllegalStateException: [KAFKA_DATA_LOSS] "
        "Some data may have been lost because they are not available in Kafka any more; "
        "either the data was aged out by Kafka or the topic may have been deleted before all "
        "the data in the topic was processed. If you don't want your streaming query to fail "
        "on such cases, set the source option failOnDataLoss to false.\nReason: Cannot fetch "
        "offset 300 (GroupId: spark-kafka-source-1, TopicPartition: events-0).\n"
    )
    text = describe_failure(wrapped)
    assert text.startswith("data was lost from the input topic (events-0): ")
    assert "HHAR_FAIL_ON_DATA_LOSS=false" in text and "--no-fail-on-data-loss" in text
    assert "\n" not in text
