"""The processor under test and the reference its results are held to.

- in-process runs of the fused engine (the default of `hhar process`) on the test session's
  Spark, with settings of their own (topic, result topics, checkpoint, history);
- the reference: every query run once, in batch, over the messages of the events topic
  (tests/test_processor's helpers);
- Spark's checkpoint read as data: which batches ran, up to which offsets, with which
  watermark.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from support.polling import poll_until
from test_processor.helpers import (
    assert_same_rows,
    batch_results,
    closed_windows,
    make_events,
    read_results,
    topic_messages,
)

from hhar_stream.errors import QueryFailedError
from hhar_stream.processor.catalogue import CATALOGUE
from hhar_stream.processor.checkpoints import CheckpointFiles
from hhar_stream.processor.fused import FUSED_QUERY, watermark_text
from hhar_stream.processor.fused_state import StateLog
from hhar_stream.processor.runner import Processor
from hhar_stream.settings import Settings

RUN_TIMEOUT = 600.0
"""Seconds an in-process run may take (a busy two-core machine is slow)."""
PROCESSOR_FIELDS = (
    "bootstrap",
    "home",
    "master",
    "shuffle_partitions",
    "driver_memory",
    "topic",
    "results_prefix",
    "checkpoint",
    "history",
    "window",
    "watermark",
    "trigger",
)
"""The settings a `hhar process` child of the tests gets as HHAR_* variables: the test broker,
jars and Spark, and what `processor_settings` sets."""


def logged_batches(query_checkpoint: Path, kind: str) -> set[int]:
    """The batch ids in a query checkpoint's ``offsets`` or ``commits`` log.

    Spark logs a batch's offsets before it runs it, and its commit once every sink took it.
    """
    folder = query_checkpoint / kind
    if not folder.is_dir():
        return set()
    return {int(path.name) for path in folder.iterdir() if path.name.isdigit()}


def open_batch(query_checkpoint: Path) -> int | None:
    """The batch that has started and not committed, if any."""
    offsets = logged_batches(query_checkpoint, "offsets")
    if not offsets or max(offsets) in logged_batches(query_checkpoint, "commits"):
        return None
    return max(offsets)


def last_committed(query_checkpoint: Path) -> int:
    """The newest committed batch (-1 before the first)."""
    return max(logged_batches(query_checkpoint, "commits"), default=-1)


def _offset_log(query_checkpoint: Path, batch: int) -> list[str]:
    return (query_checkpoint / "offsets" / str(batch)).read_text().splitlines()


def logged_offsets(query_checkpoint: Path, batch: int, topic: str) -> dict[int, int]:
    """The offsets of `topic` that batch `batch` reads up to."""
    source = json.loads(_offset_log(query_checkpoint, batch)[-1])
    return {int(partition): offset for partition, offset in source[topic].items()}


def committed_watermark(query_checkpoint: Path) -> str:
    """The watermark the newest committed batch of a Spark windowed query ran with, as Spark's
    progress writes it.

    An append-mode window query has emitted exactly the windows that end at or before it.
    """
    metadata = json.loads(_offset_log(query_checkpoint, last_committed(query_checkpoint))[1])
    return watermark_text(metadata["batchWatermarkMs"])


def emitted_watermark(checkpoint_root: Path) -> str:
    """The watermark up to which the fused engine closed (and wrote) its windows, from the
    newest version of its state in the checkpoint (the epoch before its first batch)."""
    newest = StateLog(CheckpointFiles(None, checkpoint_root), FUSED_QUERY).newest_entry()
    return watermark_text(0 if newest is None else newest["late_watermark_ms"])


def assert_results_equal_batch(
    spark, settings: Settings, watermark: str, raw=None, queries: Sequence[str] = tuple(CATALOGUE)
) -> None:
    """The result topic of each of `queries` equals the query run in batch over `raw`
    (default: every message of the events topic); windows only up to `watermark`."""
    raw = raw if raw is not None else topic_messages(spark, settings)
    for query in queries:
        actual = read_results(settings, settings.result_topic(query))
        expected = batch_results(spark, settings, query, raw)
        if query == "windowed_activity":
            expected = closed_windows(expected, watermark)
            assert expected, "no window closed: the test data spans too little event time"
        assert_same_rows(actual, expected)


def processor_settings(kafka: Settings, workdir: Path, topic: str, **changes: Any) -> Settings:
    """Settings of a processor of the events topic `topic` (its results named under it):
    30-second windows and watermark, a 1-second trigger, a history of 300 events."""
    history = workdir / "history"
    history.mkdir()
    (history / "part-00000.json").write_text(
        "\n".join(event.to_json() for event in make_events(300, seed=5)) + "\n"
    )
    return kafka.changed(
        **{
            "topic": topic,
            "results_prefix": f"{topic}.results.",
            "checkpoint": workdir / "checkpoints",
            "history": history,
            "window": "30 seconds",
            "watermark": "30 seconds",
            "trigger": "1 second",
        }
        | changes
    )


def available_now_run(spark, settings: Settings) -> tuple[Processor, str | None]:
    """One available-now run of the processor to its end; the error it raised, if any."""
    processor = Processor(settings.changed(**{"available_now": True}))
    try:
        processor.start(spark)
        poll_until(lambda: processor.wait(1.0), RUN_TIMEOUT, "the available-now run ended")
    except QueryFailedError as error:
        return processor, str(error)
    finally:
        processor.stop()
    return processor, None


def failed_queries(processor: Processor) -> dict[str, str]:
    """The queries that ended with an error, as the progress listener saw them."""
    return {
        name: query["exception"]
        for name, query in processor.status.snapshot()["queries"].items()
        if query["exception"]
    }
