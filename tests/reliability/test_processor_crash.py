"""Scenario 1: `hhar process` killed with SIGKILL at four points of a replay, restarted each
time with the same checkpoint; the final results equal the batch computation over all rows.
It runs twice: on the recorded rows as they are, and on a fleet (every row fanned out to 40
virtual devices per recorded one by `hhar produce --devices`, batches 40 times as large), with
the fused engine snapshotting its state every two batches, so that kills fall between deltas
and snapshots too.

One topic, one checkpoint, one story:

1. `hhar produce` replays the first 600 rows; the processor is killed **during its first
   micro-batch** (batch 0's offsets are logged, its commit is not);
2. restarted, it is killed again **during the first micro-batch**, now Spark's replay of it
   (its query has started, batch 0 is still not committed);
3. restarted, it redoes batch 0 and idles: it is killed **between batches** (every logged
   batch committed, the logged offsets at the end of the topic);
4. the replay resumes (900 more rows, then malformed messages); restarted, the processor reads
   them in two batches (at most 700 offsets each) and is killed **during the second one**;
5. a last run (available-now, in this test's Spark session) redoes that batch.

The moments a kill cannot be timed to (inside Spark's write of an offset log entry, between
the engine's state and Spark's commit) are built exactly in test_interrupted_batches.py.

Few batches on purpose: a micro-batch of the fused engine runs a handful of Spark jobs, which
takes seconds on a busy two-core machine.

Kill points are read from the fused query's checkpoint (``offsets/N`` is written when batch N
starts, ``commits/N`` when it ends) and checked again after the kill, when the checkpoint can
no longer change. Every ``hhar process`` runs in its own process group, and the kill takes the
Python driver and its Spark JVM down together.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.cli import HharProcess, hhar_env
from support.polling import poll_until
from test_processor.helpers import BAD_MESSAGES, produce, read_results
from test_producer.helpers import write_part_files

from hhar_stream.processor.fused import FUSED_QUERY
from hhar_stream.processor.runner import Processor
from hhar_stream.processor.status import status_path
from hhar_stream.settings import Settings

from .harness import end_offsets
from .processing import (
    PROCESSOR_FIELDS,
    assert_results_equal_batch,
    emitted_watermark,
    last_committed,
    logged_offsets,
    open_batch,
)

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

FILES, ROWS_PER_FILE = 2, 750
FIRST_ROWS = 600
MAX_OFFSETS_PER_TRIGGER = 700
"""Per virtual device: a fleet's batches hold as many rows of the recording."""
START_TIMEOUT = 240.0
"""Seconds for a processor to start its JVM and reach a kill point (CI machines are slow)."""


def idle_and_caught_up(settings: Settings, query_checkpoint: Path) -> bool:
    """Every logged batch committed, and the last one read to the end of the topic."""
    batch = last_committed(query_checkpoint)
    if batch < 0 or open_batch(query_checkpoint) is not None:
        return False
    ends = end_offsets(settings, settings.topic)
    return logged_offsets(query_checkpoint, batch, settings.topic) == ends


def query_started_by(process: HharProcess, settings: Settings) -> bool:
    """The fused query of `process` has started (its status says so)."""
    try:
        state = json.loads(status_path(settings).read_text())
    except (OSError, ValueError):
        return False
    query = state["queries"].get(FUSED_QUERY) or {}
    return state["pid"] == process.pid and bool(query.get("active"))


def replay(settings: Settings, data: Path, workdir: Path, name: str, *args: str) -> None:
    """`hhar produce` of `data` into the events topic, as fast as possible, to its end."""
    producer = HharProcess(
        [
            "produce",
            "--source",
            str(data),
            "--max",
            "--state-topic",
            f"{settings.results_prefix}producer-state",
            *args,
        ],
        hhar_env(settings, ["bootstrap", "topic", "devices"]),
        workdir,
        name,
    )
    assert producer.wait(120) == 0, producer.stderr[-3000:]


@pytest.mark.parametrize("devices", [1, 40], ids=["recorded devices", "fleet of 80"])
def test_kill_9_during_the_first_batch_between_batches_and_during_a_batch(
    kafka: Settings, spark, topics, tmp_path: Path, ledger, devices: int
) -> None:
    prefix = topics.name(f"reliability-processor-crash-{devices}")
    data = tmp_path / "data"
    write_part_files(data, files=FILES, rows_per_file=ROWS_PER_FILE, step_ms=200)
    settings = kafka.changed(
        **{
            "topic": f"{prefix}.events",
            "results_prefix": f"{prefix}.results.",
            "checkpoint": tmp_path / "checkpoints",
            "history": data,
            "window": "30 seconds",
            "watermark": "1 minute",
            "max_offsets_per_trigger": MAX_OFFSETS_PER_TRIGGER * devices,
            "trigger": "1 second",
            "snapshot_interval": 2,
            "devices": devices,
        }
    )
    fused = Path(settings.checkpoint) / FUSED_QUERY
    env = hhar_env(settings, [*PROCESSOR_FIELDS, "max_offsets_per_trigger", "snapshot_interval"])
    processes: list[HharProcess] = []

    def start_processor() -> HharProcess:
        process = HharProcess(["process"], env, tmp_path, f"process-{len(processes) + 1}")
        processes.append(process)
        return process

    def kill_when(process: HharProcess, condition, what: str) -> None:
        poll_until(lambda: condition() or not process.running(), START_TIMEOUT, what, interval=0.02)
        assert process.running(), f"the processor ended by itself:\n{process.stderr[-3000:]}"
        process.crash()

    kills = []
    try:
        replay(settings, data, tmp_path, "produce-1", "--limit", str(FIRST_ROWS))

        first = start_processor()
        kill_when(first, lambda: open_batch(fused) == 0, "batch 0 started")
        assert open_batch(fused) == 0 and last_committed(fused) == -1
        kills.append("during batch 0")

        again = start_processor()
        kill_when(
            again,
            lambda: query_started_by(again, settings) and open_batch(fused) == 0,
            "the restarted query redoing batch 0",
        )
        assert open_batch(fused) == 0 and last_committed(fused) == -1
        kills.append("during batch 0 again (its replay)")

        second = start_processor()
        kill_when(second, lambda: idle_and_caught_up(settings, fused), "caught up, idle")
        assert idle_and_caught_up(settings, fused)
        caught_up_at = last_committed(fused)
        kills.append(f"between batches {caught_up_at} and {caught_up_at + 1}")

        replay(settings, data, tmp_path, "produce-2", "--resume")
        produce(settings, settings.topic, [], BAD_MESSAGES)
        third = start_processor()
        kill_when(
            third,
            lambda: (open_batch(fused) or -1) >= caught_up_at + 2,
            f"batch {caught_up_at + 2} started",
        )
        during = open_batch(fused)
        assert during is not None and during >= caught_up_at + 2
        kills.append(f"during batch {during}")

        processor = Processor(settings.changed(**{"available_now": True}))
        try:
            processor.start(spark)
            deadline = time.monotonic() + START_TIMEOUT
            while not processor.wait(1.0):
                assert time.monotonic() < deadline, "the last run did not end"
        finally:
            processor.stop()

        (total,) = read_results(settings, settings.result_topic("total_count")).values()
        expected = FILES * ROWS_PER_FILE * devices
        ledger.record(
            "1. processor kill -9, restart" + ("" if devices == 1 else f", {2 * devices} devices"),
            len(kills),
            expected,
            total.count,
            max(expected - total.count, 0),
            max(total.count - expected, 0),
            f"killed {', '.join(kills)}; every result topic compared with the batch run",
        )
        assert total.count == expected
        watermark = emitted_watermark(Path(settings.checkpoint))
        assert_results_equal_batch(spark, settings, watermark)
    finally:
        for process in processes:
            if process.running():
                process.crash()
