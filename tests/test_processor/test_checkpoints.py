"""Checkpoint files, in a local folder (by Python) and under a URI (through Hadoop's
FileSystem): atomic writes, claims, and what is (and is not) cleared after a crash during a
query's first batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hhar_stream.errors import QueryFailedError
from hhar_stream.processor.checkpoints import (
    CheckpointFiles,
    QueryCheckpoint,
    is_local,
    resolve_root,
)

pytestmark = pytest.mark.spark

OFFSET_ENTRY = "\n".join(
    [
        "v1",
        json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 1, "conf": {}}),
        json.dumps({"events": {"0": 5, "1": 7}}),
    ]
)


def test_local_roots_and_uris() -> None:
    assert is_local("checkpoints") and is_local("/data/c") and is_local("file:///data/c")
    assert not is_local("hdfs://namenode:8020/c") and not is_local("s3a://bucket/c")
    assert resolve_root("s3a://bucket/c/") == "s3a://bucket/c"
    assert resolve_root("c").startswith("/")


@pytest.mark.parametrize("uri", [False, True], ids=["local folder", "hadoop uri"])
def test_files_are_written_atomically_read_listed_and_deleted(
    spark, tmp_path: Path, uri: bool
) -> None:
    root = tmp_path / "root"
    files = CheckpointFiles(spark, root.as_uri() if uri else root)
    assert files.read_text("q/a.json") is None and files.names("q") == []
    files.write_text("q/a.json", "{}")
    files.write_text("q/deep/b.json", "[1]")
    assert files.read_text("q/a.json") == "{}"
    assert files.names("q") == ["a.json", "deep"]
    assert files.files_below("q") == ["q/a.json", "q/deep/b.json"]
    assert sorted(p.name for p in (tmp_path / "root" / "q").iterdir()) == ["a.json", "deep"]
    with pytest.raises(QueryFailedError, match="exists already"):
        files.write_text("q/a.json", "{}")
    assert files.delete("q/deep") and not files.delete("q/deep")
    assert files.names("q") == ["a.json"]
    files.write_bytes("q/c.gz", b"\x00\xff")
    assert files.read_bytes("q/c.gz") == b"\x00\xff"
    assert not [p.name for p in (tmp_path / "root" / "q").iterdir() if p.name.endswith(".tmp")]


def test_a_claim_is_kept_and_a_foreign_folder_refused(spark, tmp_path: Path) -> None:
    files = CheckpointFiles(spark, tmp_path)
    QueryCheckpoint(files, "fused").claim()
    QueryCheckpoint(files, "fused").claim()  # its own: fine
    assert (tmp_path / "fused" / "hhar-query").read_text() == "fused\n"
    (tmp_path / "fused").rename(tmp_path / "total_count")
    with pytest.raises(QueryFailedError, match="belongs to query fused"):
        QueryCheckpoint(files, "total_count").claim()


def test_committed_offsets_are_those_of_the_last_committed_batch(spark, tmp_path: Path) -> None:
    checkpoint = QueryCheckpoint(CheckpointFiles(spark, tmp_path), "q")
    assert checkpoint.committed_offsets("events") == {}
    (tmp_path / "q" / "offsets").mkdir(parents=True)
    (tmp_path / "q" / "commits").mkdir()
    (tmp_path / "q" / "offsets" / "0").write_text(OFFSET_ENTRY)
    (tmp_path / "q" / "offsets" / "1").write_text(OFFSET_ENTRY.replace("5", "9"))
    (tmp_path / "q" / "commits" / "0").write_text("v1\n{}")
    assert checkpoint.started_batches() == [0, 1] and checkpoint.committed_batches() == [0]
    assert checkpoint.committed_offsets("events") == {0: 5, 1: 7}


def crashed_first_batch(root: Path, query: str) -> list[Path]:
    """What a kill during batch 0 can leave: temporary files only (and a kept sources log)."""
    folder = root / query
    leftovers = [
        folder / "offsets" / ".0.1b2c3d4e-aaaa-bbbb-cccc-000000000000.tmp",
        folder / "offsets" / "..0.1b2c3d4e-aaaa-bbbb-cccc-000000000000.tmp.crc",
        folder / "commits" / ".0.99999999-aaaa-bbbb-cccc-000000000000.tmp",
        folder / "state" / "0" / "1" / ".1.delta.5e6f-0000.tmp",
        folder / "engine" / ".0.0.json.0123456789abcdef.tmp",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('v1\n{"batchWatermarkMs"')  # cut short
    (folder / "sources" / "0").mkdir(parents=True)
    (folder / "sources" / "0" / "0").write_text('v1\n{"events":{"0":0}}')
    (folder / "metadata").write_text('{"id":"query-id"}')
    return leftovers


def test_what_a_crash_during_the_first_batch_left_is_cleared(spark, tmp_path: Path) -> None:
    leftovers = crashed_first_batch(tmp_path, "fused")
    removed = QueryCheckpoint(CheckpointFiles(spark, tmp_path), "fused").clear_interrupted_start()
    assert sorted(removed) == sorted(
        [
            "fused/commits/.0.99999999-aaaa-bbbb-cccc-000000000000.tmp",
            "fused/engine/.0.0.json.0123456789abcdef.tmp",
            "fused/offsets/..0.1b2c3d4e-aaaa-bbbb-cccc-000000000000.tmp.crc",
            "fused/offsets/.0.1b2c3d4e-aaaa-bbbb-cccc-000000000000.tmp",
            "fused/state/0",
        ]
    )
    assert not any(path.exists() for path in leftovers)
    for folder in ("offsets", "commits", "state", "engine"):
        assert not any((tmp_path / "fused" / folder).iterdir()), folder
    # Spark's starting offsets and the query id stay: the same first batch is planned again.
    assert (tmp_path / "fused" / "sources" / "0" / "0").exists()
    assert (tmp_path / "fused" / "metadata").exists()


def test_nothing_is_cleared_once_a_batch_has_started(spark, tmp_path: Path) -> None:
    leftovers = crashed_first_batch(tmp_path, "fused")
    (tmp_path / "fused" / "offsets" / "0").write_text(OFFSET_ENTRY)
    checkpoint = QueryCheckpoint(CheckpointFiles(spark, tmp_path), "fused")
    assert checkpoint.clear_interrupted_start() == []
    assert all(path.exists() for path in leftovers)


def test_nothing_is_cleared_beside_files_that_are_no_crash_leftover(spark, tmp_path: Path) -> None:
    leftovers = crashed_first_batch(tmp_path, "total_count")
    stray = tmp_path / "total_count" / "state" / "0" / "1" / "1.delta"
    stray.write_text("state of a batch no offset log knows")
    checkpoint = QueryCheckpoint(CheckpointFiles(spark, tmp_path), "total_count")
    assert checkpoint.clear_interrupted_start() == []
    assert stray.exists() and all(path.exists() for path in leftovers)
