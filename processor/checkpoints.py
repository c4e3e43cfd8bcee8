"""The processor's checkpoints: where each streaming query keeps its progress, read and written
through Hadoop's FileSystem, so a local folder, HDFS and S3 work the same way.

Layout under the checkpoint root (``HHAR_CHECKPOINT``), one folder per streaming query:

- Spark's own files: ``offsets/<batch>`` (written, by a rename, when a batch starts),
  ``commits/<batch>`` (when it ended), ``state/`` (state stores of stateful operators),
  ``sources/``, ``metadata``;
- ``hhar-query``: the name of the query the folder belongs to (`QueryCheckpoint.claim`);
- ``engine/``: the fused engine's own state, one file per version (`EngineStateFiles`).

A crash can cut any write short. Spark writes a log entry to a hidden temporary file
(``offsets/.0.<uuid>.tmp``) and renames it: a kill before the rename leaves only the temporary
file, and Spark then refuses to start batch 0 in a folder that is not empty
(``STATE_STORE_CHECKPOINT_LOCATION_NOT_EMPTY``). `QueryCheckpoint.clear_interrupted_start`
removes exactly those leftovers, and only while no batch has started (see its docstring).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from ..errors import QueryFailedError

logger = logging.getLogger(__name__)

OWNER_FILE = "hhar-query"
"""File in a query's checkpoint folder naming the query it belongs to."""

ENGINE_STATE_DIR = "engine"
"""Folder of the fused engine's own state in its query's checkpoint folder."""

_SPARK_LOGS = ("offsets", "commits")
_SPARK_STATE = "state"
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_TEMPORARY = re.compile(r"^\..*\.tmp(\.crc)?$")
"""Hidden temporary files of an interrupted write (Spark's and ours), and their checksums."""


def is_local(root: str | Path) -> bool:
    """True for a checkpoint root on this machine's file system (no ``scheme://``)."""
    return not _URI.match(str(root)) or str(root).startswith("file://")


def resolve_root(root: str | Path) -> str:
    """The checkpoint root as Hadoop should see it: a local folder made absolute, a URI as is."""
    if _URI.match(str(root)):
        return str(root).rstrip("/")
    return str(Path(root).resolve())


class _LocalFolder:
    """Files under a folder of this machine, by Python itself (no call into the JVM)."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def exists(self, relative: str) -> bool:
        return (self.root / relative).exists()

    def names(self, relative: str) -> list[str]:
        folder = self.root / relative
        return sorted(item.name for item in folder.iterdir()) if folder.is_dir() else []

    def size(self, relative: str) -> int:
        return (self.root / relative).stat().st_size

    def read(self, relative: str) -> bytes | None:
        try:
            return (self.root / relative).read_bytes()
        except FileNotFoundError:
            return None

    def create(self, relative: str, data: bytes) -> None:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())

    def rename(self, source: str, target: str) -> bool:
        os.replace(self.root / source, self.root / target)
        return True

    def files_below(self, relative: str) -> list[str]:
        folder = self.root / relative
        return [
            path.relative_to(self.root).as_posix() for path in folder.rglob("*") if path.is_file()
        ]

    def delete(self, relative: str) -> bool:
        target = self.root / relative
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
            return True
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        return True


class _HadoopFolder:
    """Files under a Hadoop URI (``hdfs://``, ``s3a://``, ``file://``), through the running
    Spark's Hadoop FileSystem."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.root = root
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        self._jvm = jvm
        fs = jvm.org.apache.hadoop.fs.Path(root).getFileSystem(
            spark.sparkContext._jsc.hadoopConfiguration()
        )
        # On this machine's disk, the raw file system: it writes no .crc files beside ours and
        # lists the ones Spark's writes leave (a checksum file system hides them).
        self._fs = fs.getRawFileSystem() if fs.getScheme() == "file" else fs

    def _path(self, relative: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(
            f"{self.root}/{relative}" if relative else self.root
        )

    def exists(self, relative: str) -> bool:
        return bool(self._fs.exists(self._path(relative)))

    def names(self, relative: str) -> list[str]:
        folder = self._path(relative)
        if not self._fs.exists(folder):
            return []
        return sorted(str(status.getPath().getName()) for status in self._fs.listStatus(folder))

    def size(self, relative: str) -> int:
        return int(self._fs.getFileStatus(self._path(relative)).getLen())

    def read(self, relative: str) -> bytes | None:
        path = self._path(relative)
        if not self._fs.exists(path):
            return None
        stream = self._fs.open(path)
        try:
            data = self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
        finally:
            stream.close()
        return bytes(data)

    def create(self, relative: str, data: bytes) -> None:
        stream = self._fs.create(self._path(relative), True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def rename(self, source: str, target: str) -> bool:
        if self._fs.rename(self._path(source), self._path(target)):
            return True
        self._fs.delete(self._path(source), False)
        return False

    def files_below(self, relative: str) -> list[str]:
        folder = self._path(relative)
        if not self._fs.exists(folder):
            return []
        found = []
        listing = self._fs.listFiles(folder, True)
        while listing.hasNext():
            found.append(str(listing.next().getPath().toUri().getPath()))
        base = folder.toUri().getPath()
        return [f"{relative}/{path.removeprefix(base).lstrip('/')}" for path in found]

    def delete(self, relative: str) -> bool:
        return bool(self._fs.delete(self._path(relative), True))


class CheckpointFiles:
    """Files under a checkpoint root: a folder of this machine, read and written by Python
    itself (a micro-batch's writes cost no call into the JVM), or a Hadoop URI (``hdfs://``,
    ``s3a://``, ``file://``) through the running Spark's Hadoop FileSystem.

    Paths are relative to the root, ``/``-separated. Writes are atomic: a hidden temporary
    file, then a rename.
    """

    def __init__(self, spark: SparkSession | None, root: str | Path) -> None:
        """Open `root`: a local folder, or a Hadoop URI such as ``hdfs://...``, ``s3a://...``
        (which needs the running `spark`)."""
        self.root = resolve_root(root)
        self._folder: _LocalFolder | _HadoopFolder = _LocalFolder(self.root)
        if _URI.match(self.root):
            if spark is None:
                msg = f"{self.root} is read through Hadoop: it needs a running Spark"
                raise QueryFailedError(msg)
            self._folder = _HadoopFolder(spark, self.root)

    def path(self, relative: str = "") -> str:
        """The full path of `relative`."""
        return f"{self.root}/{relative}" if relative else self.root

    def exists(self, relative: str) -> bool:
        """True when a file or folder exists at `relative`."""
        return self._folder.exists(relative)

    def names(self, relative: str = "") -> list[str]:
        """The names in folder `relative` (empty when it does not exist), sorted."""
        return self._folder.names(relative)

    def size(self, relative: str) -> int:
        """The size in bytes of file `relative` (which exists)."""
        return self._folder.size(relative)

    def read_bytes(self, relative: str) -> bytes | None:
        """The contents of file `relative`, or None when it does not exist."""
        return self._folder.read(relative)

    def read_text(self, relative: str) -> str | None:
        """The text of file `relative`, or None when it does not exist."""
        data = self.read_bytes(relative)
        return None if data is None else data.decode()

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write file `relative` atomically (it must not exist yet)."""
        if self.exists(relative):
            msg = f"cannot write {self.path(relative)}: it exists already"
            raise QueryFailedError(msg)
        folder, _, name = relative.rpartition("/")
        temporary = f"{folder}/" if folder else ""
        temporary += f".{name}.{uuid.uuid4().hex}.tmp"
        self._folder.create(temporary, data)
        if not self._folder.rename(temporary, relative):
            msg = f"cannot write {self.path(relative)}: renaming {temporary} to it failed"
            raise QueryFailedError(msg)

    def write_text(self, relative: str, text: str) -> None:
        """Write file `relative` atomically (it must not exist yet)."""
        self.write_bytes(relative, text.encode())

    def files_below(self, relative: str) -> list[str]:
        """Every file (not folder) below folder `relative`, at any depth, sorted."""
        return sorted(self._folder.files_below(relative))

    def delete(self, relative: str) -> bool:
        """Delete file or folder `relative` (recursively); False when there was none."""
        return self._folder.delete(relative)


@dataclass
class QueryCheckpoint:
    """The checkpoint folder of one streaming query."""

    files: CheckpointFiles
    query: str

    @property
    def location(self) -> str:
        """The folder, as Spark's ``checkpointLocation`` option takes it."""
        return self.files.path(self.query)

    def _batches(self, log: str) -> list[int]:
        return sorted(
            int(name) for name in self.files.names(f"{self.query}/{log}") if name.isdigit()
        )

    def started_batches(self) -> list[int]:
        """Batch ids in Spark's offset log (a batch is logged there before it runs)."""
        return self._batches("offsets")

    def committed_batches(self) -> list[int]:
        """Batch ids in Spark's commit log (a batch is logged there once it is done)."""
        return self._batches("commits")

    def logged_offsets(self, batch: int, topic: str) -> dict[int, int]:
        """The end offsets of `topic` that batch `batch` reads up to, per partition (empty
        when the batch is not logged).

        Spark logs a batch's end offsets in ``offsets/<batch>`` (a version line, the batch
        metadata, then one JSON line per source) before the batch runs.
        """
        text = self.files.read_text(f"{self.query}/offsets/{batch}") or ""
        source = json.loads(text.splitlines()[-1]) if text else {}
        return {int(partition): offset for partition, offset in source.get(topic, {}).items()}

    def batch_watermark_ms(self, batch: int) -> int:
        """The watermark (epoch ms) batch `batch` ran with: Spark's offset log metadata."""
        lines = (self.files.read_text(f"{self.query}/offsets/{batch}") or "").splitlines()
        return int(json.loads(lines[1]).get("batchWatermarkMs", 0)) if len(lines) > 1 else 0

    def committed_offsets(self, topic: str) -> dict[int, int]:
        """Where the query resumes in `topic`: the end offsets of its last committed batch
        (empty before the first)."""
        committed = self.committed_batches()
        return self.logged_offsets(committed[-1], topic) if committed else {}

    def claim(self) -> None:
        """Mark the folder as this query's; refuse a folder of another query.

        Spark notices a foreign checkpoint only when a micro-batch touches its state, and not
        at all when there is nothing new to read: this check makes the mistake an error at
        start. The mark is written atomically: a crash leaves it whole or absent.

        Raises:
            QueryFailedError: when the folder belongs to another query.
        """
        owner = self.files.read_text(f"{self.query}/{OWNER_FILE}")
        if owner is None:
            self.files.write_text(f"{self.query}/{OWNER_FILE}", f"{self.query}\n")
            return
        if owner.strip() != self.query:
            msg = (
                f"query {self.query} cannot start: its checkpoint {self.location} belongs to "
                f"query {owner.strip()}; choose another --checkpoint, or start over with --reset"
            )
            raise QueryFailedError(msg)

    def holds_spark_state(self) -> bool:
        """True when a stateful Spark operator wrote state stores here."""
        return bool(self.files.names(f"{self.query}/{_SPARK_STATE}"))

    def clear_interrupted_start(self) -> list[str]:
        """Remove what a crash during the query's first batch left, when that is all there is.

        Spark starts a batch by renaming its offset log entry into place; a folder whose
        offset log holds no complete entry has started no batch: nothing was read, written
        or committed on its account. What it can hold then is the hidden temporary files of
        writes that a crash cut short (``offsets/.0.<uuid>.tmp``, ``commits/...``,
        ``state/...``, ``engine/...`` and their ``.crc`` checksums), which Spark refuses
        on batch 0. Those, and only those, are removed; ``sources/`` (the starting offsets
        Spark fixed for batch 0) and ``metadata`` (the query id) are kept, so the restarted
        query plans the same first batch. Nothing is removed once a batch has started, nor
        when anything else is found (that is not the leftover of a crash; Spark's own error
        then says what it found).

        Returns:
            The paths removed, relative to the root.
        """
        if self.started_batches():
            return []
        folders = [
            f"{self.query}/{name}" for name in (*_SPARK_LOGS, _SPARK_STATE, ENGINE_STATE_DIR)
        ]
        found = [relative for folder in folders for relative in self.files.files_below(folder)]
        if any(not _TEMPORARY.match(relative.rpartition("/")[2]) for relative in found):
            return []
        removed = [f"{folder}/{name}" for folder in folders for name in self.files.names(folder)]
        for relative in removed:
            self.files.delete(relative)
        if removed:
            logger.warning(
                "query %s: removed what a crash during its first batch left in %s: %s",
                self.query,
                self.location,
                ", ".join(relative.removeprefix(f"{self.query}/") for relative in removed),
            )
        return removed

    def delete(self) -> bool:
        """Remove the whole folder; False when there was none."""
        return self.files.delete(self.query)
