"""The processor's input: the events topic (Spark's Kafka source) and the static history."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    BinaryType,
    IntegerType,
    LongType,
    StructField,
    StructType,
    TimestampType,
)

from ..errors import BrokerError, InputDataError
from ..kafka_client import check_broker, list_topics, watermark_offsets
from ..settings import Settings
from . import queries as q
from .parse import parse_events, valid_events

logger = logging.getLogger(__name__)

_WAIT_REPORT_SECONDS = 30.0

FETCH_MAX_WAIT_MS = 10
"""``fetch.max.wait.ms`` of the source's consumer. A micro-batch's last fetch of a
transactional topic read ``read_committed`` often finds only a transaction marker, and would
wait Kafka's default 500 ms for more before the batch can end."""

MESSAGE_COLUMNS = ("partition", "offset", "timestamp", "value")
"""The columns of the events topic's messages that the processor reads."""

MESSAGE_SCHEMA = StructType(
    [
        StructField("partition", IntegerType()),
        StructField("offset", LongType()),
        StructField("timestamp", TimestampType()),
        StructField("value", BinaryType()),
    ]
)
"""`MESSAGE_COLUMNS` as Spark's Kafka source types them (for messages made up: a warm-up, tests)."""


def read_event_stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """The events topic as a stream of raw messages: partition, offset, timestamp, value.

    Reads committed messages only (``isolation.level=read_committed``), so events of an
    aborted producer transaction never count.
    """
    reader = (
        spark.readStream.format("kafka")
        .options(**settings.spark_kafka_options())
        .option("subscribe", settings.topic)
        .option("startingOffsets", settings.starting_offsets)
        .option("failOnDataLoss", str(settings.fail_on_data_loss).lower())
        .option("kafka.isolation.level", "read_committed")
        .option("kafka.fetch.max.wait.ms", str(FETCH_MAX_WAIT_MS))
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
    return reader.load().select(*MESSAGE_COLUMNS)


def read_event_lines(spark: SparkSession, path: Path) -> DataFrame:
    """The lines of a JSON-lines file or folder (``.gz`` too) as a static ``value`` column.

    Spark skips the folder's ``_SUCCESS``-style marker files.

    Raises:
        InputDataError: when `path` does not exist or holds no file.
    """
    if not path.exists():
        msg = f"{path} does not exist"
        raise InputDataError(msg)
    if path.is_dir() and not any(
        item.is_file() and not item.name.startswith(("_", ".")) for item in path.rglob("*")
    ):
        msg = f"{path} holds no data file"
        raise InputDataError(msg)
    return spark.read.text(str(path))


def history_path(settings: Settings) -> Path:
    """The static history of ``live_vs_historical``: --history, else the data folder."""
    return settings.history or settings.data


_HISTORY_ADVICE = "pass --history PATH, or leave the query out: --queries all,-live_vs_historical"


def check_history(settings: Settings) -> None:
    """Fail before Spark starts when the history of ``live_vs_historical`` does not exist.

    Raises:
        InputDataError: naming the missing path and what to do.
    """
    path = history_path(settings)
    if not path.exists():
        msg = (
            f"live_vs_historical needs a static history, but {path} does not exist: "
            f"{_HISTORY_ADVICE}"
        )
        raise InputDataError(msg)


def load_historical_stats(spark: SparkSession, settings: Settings) -> DataFrame:
    """`queries.historical_stats` of the history, computed once and kept in memory.

    Raises:
        InputDataError: when the history is missing or holds no valid event.
    """
    path = history_path(settings)
    try:
        lines = read_event_lines(spark, path)
    except InputDataError as error:
        msg = f"live_vs_historical needs a static history, but {error}: {_HISTORY_ADVICE}"
        raise InputDataError(msg) from None
    stats = q.historical_stats(valid_events(parse_events(lines)))
    logger.info("reading the history %s ...", path)
    rows = stats.collect()
    if not rows:
        msg = f"live_vs_historical needs a static history, but {path} holds no valid event"
        raise InputDataError(msg)
    logger.info("history %s: %d (gt, Model) groups", path, len(rows))
    return spark.createDataFrame(rows, schema=stats.schema)


def check_events_topic(settings: Settings, wait: bool = False) -> None:
    """Fail with a clear message unless the broker answers and the events topic exists.

    With `wait`, a missing topic is waited for (a processor may start before its producer).
    """
    missing = (
        f"topic {settings.topic!r} does not exist at {settings.bootstrap}: produce events "
        f"first (hhar produce) or choose --topic"
    )
    check_broker(settings)  # names refused credentials as such
    reported_at = None
    while settings.topic not in list_topics(settings):
        if not wait:
            raise BrokerError(missing)
        if reported_at is None or time.monotonic() - reported_at > _WAIT_REPORT_SECONDS:
            logger.info("waiting for topic %s to exist (start the producer)", settings.topic)
            reported_at = time.monotonic()
        time.sleep(1.0)


def removed_unread(settings: Settings, resume: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Offsets of the events topic a query has not read and Kafka no longer holds.

    `resume`: per partition, where the query resumes (its committed position). Per partition,
    (from, to): from that position up to the partition's earliest offset, which retention (or
    deleted records) moved past it.
    """
    if not resume:
        return {}
    earliest = {
        partition: low
        for partition, (low, _) in watermark_offsets(settings, settings.topic, resume).items()
    }
    return {
        partition: (offset, earliest[partition])
        for partition, offset in resume.items()
        if earliest[partition] > offset
    }
