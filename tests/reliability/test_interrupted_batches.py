"""Scenario 1b: the exact checkpoints a crash leaves during a query's first batch, for both
engines; every restart gives exact results.

A kill can land at any moment of a first micro-batch. Spark writes ``offsets/0`` to a hidden
temporary file and renames it; then the batch reads, writes its state (Spark's state store for
the per-query engine, ``engine/0.0.delta.json.gz`` for the fused engine) and its results, and Spark
writes ``commits/0``. Each case below builds what a kill at one of those moments leaves, from a
finished run's checkpoint cut back, then restarts the processor on it, writing to result
topics of its own (so nothing the first run wrote can stand in for what the restart must
write), and compares every result with the batch run of the query functions:

- the offset log entry cut short (only ``offsets/.0.<uuid>.tmp``, with its ``.crc``), with
  Spark's starting offsets (``sources/0/0``) already fixed;
- the same, with the ``hhar-query`` claim cut short too (the folder is claimed again);
- batch 0 logged, nothing written yet;
- batch 0's state written, results partly or not written, no commit.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_processor.helpers import (
    BAD_MESSAGES,
    make_events,
    produce,
    read_results,
    windows_watermark,
)

from hhar_stream.processor.catalogue import CATALOGUE
from hhar_stream.settings import Settings

from .processing import assert_results_equal_batch, available_now_run, processor_settings

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

EVENTS = 900
TEMPORARY = ".0.{uuid}.tmp"


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _keep_batch_zero_logs(query: Path, offsets: bool) -> None:
    """Remove every commit and the offset log entries after batch 0 (all of them unless
    `offsets`)."""
    for log in ("offsets", "commits"):
        for entry in (query / log).iterdir():
            if log == "commits" or entry.name != "0" or not offsets:
                _remove(entry)


def _remove_state(query: Path, keep_batch_zero: bool) -> None:
    """Remove the state written by batches (all of it, or all but batch 0's)."""
    state = query / "state"
    if state.is_dir():
        for store in state.rglob("*"):
            # Spark's store version N is batch N-1's: keep version 1 and the metadata.
            version = store.name.split(".")[0]
            if (
                store.is_file()
                and store.suffix in (".delta", ".snapshot", ".zip")
                and (not keep_batch_zero or version != "1")
            ):
                store.unlink()
    engine = query / "engine"
    if engine.is_dir():
        for version in engine.iterdir():
            if not keep_batch_zero or not version.name.startswith("0.0."):
                version.unlink()


def offset_log_cut_short(query: Path) -> None:
    """Killed while Spark wrote ``offsets/0``: only its temporary file (cut short). No state
    yet: Spark plans a batch's stateful operators (and writes their metadata) after its offset
    log entry."""
    _keep_batch_zero_logs(query, offsets=False)
    _remove_state(query, keep_batch_zero=False)
    if (query / "state").is_dir():
        shutil.rmtree(query / "state")
    temporary = query / "offsets" / TEMPORARY.format(uuid=uuid.uuid4())
    temporary.write_text('v1\n{"batchWatermarkMs":0,"batchTi')
    (query / "offsets" / f".{temporary.name}.crc").write_bytes(b"crc\x00")


def claim_and_offset_log_cut_short(query: Path) -> None:
    """Killed at once after the claim began: no ``hhar-query`` yet, its temporary file, and the
    offset log entry cut short."""
    offset_log_cut_short(query)
    (query / "hhar-query").unlink()
    (query / f".hhar-query.{uuid.uuid4().hex}.tmp").write_text("fu")


def batch_zero_logged(query: Path) -> None:
    """Killed after ``offsets/0``: nothing of batch 0 written yet."""
    _keep_batch_zero_logs(query, offsets=True)
    _remove_state(query, keep_batch_zero=False)


def state_written_no_commit(query: Path) -> None:
    """Killed after batch 0 wrote its state, before ``commits/0`` (its results partly written
    at most: the restart writes to result topics of its own)."""
    _keep_batch_zero_logs(query, offsets=True)
    _remove_state(query, keep_batch_zero=True)


CRASHES: dict[str, Callable[[Path], None]] = {
    "offset log cut short": offset_log_cut_short,
    "claim and offset log cut short": claim_and_offset_log_cut_short,
    "batch 0 logged": batch_zero_logged,
    "state written, no commit": state_written_no_commit,
}


@pytest.fixture(scope="module")
def finished(kafka: Settings, spark, module_topics, tmp_path_factory: pytest.TempPathFactory):
    """One topic, and a finished available-now run of each engine over it."""
    work = tmp_path_factory.mktemp("interrupted")
    settings = processor_settings(kafka, work, module_topics.create("reliability-interrupted"))
    produce(settings, settings.topic, make_events(EVENTS, seed=71), BAD_MESSAGES)
    runs = {}
    for engine in ("fused", "per-query"):
        engine_settings = settings.changed(
            **{
                "engine": engine,
                "checkpoint": work / engine / "checkpoints",
                "results_prefix": f"{settings.topic}.{engine}.first.",
            }
        )
        processor, error = available_now_run(spark, engine_settings)
        assert error is None, error
        runs[engine] = engine_settings, processor.streaming_names()
    yield SimpleNamespace(settings=settings, runs=runs, work=work)


CASES = [
    (engine, crash)
    for crash in CRASHES
    for engine in ("fused", "per-query")
    if engine == "fused" or crash in ("offset log cut short", "state written, no commit")
]
"""Every case for the fused engine; for the per-query engine (nine streaming queries, slower
to restart) the two that differ for Spark's own state store: nothing started, and its state
written without a commit. The claim and the logged batch are the same for both engines."""


@pytest.mark.parametrize(("engine", "crash"), CASES)
def test_a_restart_after_a_crash_in_the_first_batch_gives_exact_results(
    finished, spark, engine: str, crash: str, ledger
) -> None:
    first, names = finished.runs[engine]
    root = finished.work / engine / crash.replace(" ", "-").replace(",", "")
    shutil.copytree(first.checkpoint, root)
    for name in names:
        CRASHES[crash](root / name)
    settings = first.changed(
        **{
            "checkpoint": root,
            "results_prefix": f"{finished.settings.topic}.{engine}.{uuid.uuid4().hex[:6]}.",
        }
    )
    processor, error = available_now_run(spark, settings)
    assert error is None, error
    assert all((root / name / "hhar-query").read_text() == f"{name}\n" for name in names)
    (total,) = read_results(settings, settings.result_topic("total_count")).values()
    ledger.record(
        f"1b. {engine}: crash, {crash}",
        1,
        EVENTS,
        total.count,
        max(EVENTS - total.count, 0),
        max(total.count - EVENTS, 0),
        "restart on the checkpoint a kill leaves there; every result topic compared "
        "with the batch run",
    )
    assert_results_equal_batch(
        spark, settings, windows_watermark(processor), queries=tuple(CATALOGUE)
    )
