"""A stop during a micro-batch ends the processor cleanly: no StackOverflowError.

Spark decides whether a failed ``foreachBatch`` call was a stop by matching the Python
traceback with a regular expression that recurses once per character (StreamExecution's
PROXY_ERROR); with the JVM's default thread stack, the traceback of a stop during a batch
overflowed it, and the query's thread died of a StackOverflowError (issue "A crash during a
query's first batch...": the deep java.util.regex.Pattern recursion). The processor runs its
driver with a larger thread stack (processor/session.py).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from support.cli import HharProcess, hhar_env
from support.polling import poll_until
from test_processor.helpers import make_events, produce

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
