"""A stop during a micro-batch, or during the start, ends the processor cleanly.

Spark decides whether a failed ``foreachBatch`` call was a stop by matching the Python
traceback with a regular expression that recurses once per character (StreamExecution's
PROXY_ERROR); with the JVM's default thread stack, the traceback of a stop during a batch
overflowed it, and the query's thread died of a StackOverflowError (issue "A crash during a
query's first batch...": the deep java.util.regex.Pattern recursion). The processor runs its
driver with a larger thread stack (processor/session.py).

A SIGTERM to the processor's whole process group (the end of `hhar demo`, systemd) also ends
Spark's JVM: while the processor reads its history, the lost JVM is the stop, not a traceback.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from support.cli import HharProcess, hhar_env
from support.polling import poll_until
from test_processor.helpers import make_events, produce
from test_producer.helpers import write_part_files

from hhar_stream.processor.fused import FUSED_QUERY
from hhar_stream.processor.status import read_status
from hhar_stream.settings import Settings

from .processing import PROCESSOR_FIELDS, processor_settings

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

EVENTS = 60_000
"""Enough for a first micro-batch of some seconds."""


def test_a_stop_during_the_first_batch_ends_cleanly(
    kafka: Settings, topics, tmp_path: Path
) -> None:
    settings = processor_settings(kafka, tmp_path, topics.create("reliability-stop"))
    for first in range(0, EVENTS, 20_000):
        produce(settings, settings.topic, make_events(20_000, first_index=first, seed=91))
    process = HharProcess(
        ["process"],
        hhar_env(settings, PROCESSOR_FIELDS),
        tmp_path,
        "process",
    )
    batch_zero = Path(settings.checkpoint) / FUSED_QUERY / "offsets" / "0"
    poll_until(
        lambda: batch_zero.exists() or not process.running(), 240, "the first micro-batch started"
    )
    assert process.running(), process.stderr[-3000:]
    process.send_signal(signal.SIGTERM)
    code = process.wait(120)
    stderr = process.stderr
    assert code == 0, stderr[-3000:]
    assert "StackOverflowError" not in stderr and "java.util.regex" not in stderr, stderr[-3000:]
    assert "query fused failed" not in stderr
    state = read_status(settings)
    assert state["running"] is False
    assert state["queries"][FUSED_QUERY]["exception"] is None


HISTORY_ROWS = 600_000
"""A history that takes some seconds to read: the stop lands while Spark reads it."""


def test_a_stop_of_the_process_group_while_reading_the_history_ends_cleanly(
    kafka: Settings, topics, tmp_path: Path
) -> None:
    settings = processor_settings(kafka, tmp_path, topics.create("reliability-stop-start"))
    history = tmp_path / "long-history"
    write_part_files(history, files=4, rows_per_file=HISTORY_ROWS // 4)
    settings = settings.changed(history=history)
    produce(settings, settings.topic, make_events(100, seed=92))
    process = HharProcess(["process"], hhar_env(settings, PROCESSOR_FIELDS), tmp_path, "process")
    poll_until(
        lambda: "reading the history" in process.stderr or not process.running(),
        240,
        "the history being read",
        interval=0.05,
    )
    assert process.running(), process.stderr[-3000:]
    code = process.stop(120)  # SIGTERM to the group: the JVM too
    stderr = process.stderr
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "history" in stderr and "groups" not in stderr, "the stop came after the history"
