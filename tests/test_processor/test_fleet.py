"""A fleet, not two phones: both engines over recorded rows fanned out by the real producer to
hundreds of virtual devices (`hhar produce --devices`), several micro-batches, the fused
engine's state written as deltas with snapshots between them, the per-query engine's in Spark's
RocksDB state store. Every result equals the query run in batch over the same events, and a
fused run continued from such a checkpoint does too.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from support.cli import hhar_env, run_hhar

from hhar_stream.processor.catalogue import CATALOGUE
from hhar_stream.settings import Settings

from .helpers import (
    BAD_MESSAGES,
    assert_same_rows,
    assert_topics_equal_batch,
    make_events,
    produce,
    read_results,
    run_available_now,
)

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

ROWS = 60
DEVICES = 100
"""Virtual devices per recorded one: 2 recorded phones become 200 devices."""
MAX_OFFSETS = 2_500


def fan_out(settings: Settings, rows: int, first_index: int, workdir) -> int:
    """`rows` recorded events, replayed by `hhar produce --devices` into the events topic; the
    events it delivered."""
    source = workdir / f"rows-{first_index}.json"
    events = make_events(rows, first_index=first_index, seed=first_index + 3, step_ms=4_000)
    source.write_text("".join(event.to_json() + "\n" for event in events))
    fields = ("bootstrap", "topic", "partitions")
    done = run_hhar(
        ["produce", "--source", str(source), "--devices", str(DEVICES), "--max"],
        hhar_env(settings, fields),
        workdir,
        f"produce-{first_index}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return rows * DEVICES


@pytest.fixture(scope="module")
def fleet(kafka: Settings, spark, module_topics, tmp_path_factory: pytest.TempPathFactory):
    """The same fanned-out events (and malformed messages) processed by both engines."""
    topic = module_topics.create("fleet")
    work = tmp_path_factory.mktemp("fleet")
    history = work / "history"
    history.mkdir()
    (history / "part-00000.json").write_text(
        "".join(event.to_json() + "\n" for event in make_events(200, seed=21))
    )
    common = {
        "topic": topic,
        "history": history,
        "available_now": True,
        "window": "1 minute",
        "watermark": "30 seconds",
        "max_offsets_per_trigger": MAX_OFFSETS,
    }
    fused = kafka.changed(
        **common
        | {
            "engine": "fused",
            "results_prefix": f"{topic}.fused.",
            "checkpoint": work / "fused",
            "snapshot_interval": 2,
        }
    )
    per_query = kafka.changed(
        **common
        | {
            "engine": "per-query",
            "results_prefix": f"{topic}.per-query.",
            "checkpoint": work / "per-query",
            "state_store": "rocksdb",
        }
    )
    events = fan_out(fused, ROWS, 0, work)
    produce(fused, topic, [], BAD_MESSAGES)
    yield SimpleNamespace(
        work=work,
        events=events,
        fused=fused,
        per_query=per_query,
        fused_run=run_available_now(spark, fused),
        per_query_run=run_available_now(spark, per_query),
    )


def test_the_fleet_spans_hundreds_of_devices_and_several_batches(fleet) -> None:
    devices = read_results(fleet.fused, fleet.fused.result_topic("device_activity"))
    assert len({record.device for record in devices.values()}) == 2 * DEVICES
    (fused,) = fleet.fused_run.summary()["queries"].values()
    assert fused["batches"] >= fleet.events // MAX_OFFSETS
    engine = Path(fleet.fused.checkpoint) / "fused" / "engine"
    assert any(path.name.endswith(".snapshot.json.gz") for path in engine.iterdir())


def test_the_per_query_engine_kept_its_state_in_rocksdb(fleet) -> None:
    state = Path(fleet.per_query.checkpoint) / "device_activity" / "state"
    assert any(path.suffix == ".changelog" for path in state.rglob("*")), "no RocksDB changelog"


def test_fused_results_of_a_fleet_equal_the_batch_computation(fleet, spark) -> None:
    assert_topics_equal_batch(spark, fleet.fused, fleet.fused_run)


def test_per_query_results_of_a_fleet_equal_the_batch_computation(fleet, spark) -> None:
    assert_topics_equal_batch(spark, fleet.per_query, fleet.per_query_run)


def test_both_engines_give_the_same_results_for_a_fleet(fleet) -> None:
    for query in CATALOGUE:
        fused = read_results(fleet.fused, fleet.fused.result_topic(query))
        per_query = read_results(fleet.per_query, fleet.per_query.result_topic(query))
        assert fused, query
        assert_same_rows(fused, per_query)


def test_a_fleet_run_continued_from_snapshot_and_deltas_equals_the_batch_computation(
    fleet, spark
) -> None:
    fan_out(fleet.fused, ROWS // 2, 10_000, fleet.work)
    again = run_available_now(spark, fleet.fused)
    assert_topics_equal_batch(spark, fleet.fused, again)
