"""Watching the running queries: a progress listener, and a status file `hhar status` reads.

`ProcessorStatus` holds, per query, its name, id, active flag, Spark's status message, the
last progress and totals of this run. A `ProgressListener` (Spark's StreamingQueryListener)
feeds it and logs one line per micro-batch. Every change is written atomically to
``<checkpoint root>/status.json`` (`status_path`), so `hhar status` can show a processor that
runs in another process; the file also records the processor's pid and host, which tells a
stopped processor from a running one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import (
    QueryIdleEvent,
    QueryProgressEvent,
    QueryStartedEvent,
    QueryTerminatedEvent,
    StreamingQueryProgress,
)

from ..daemons import pid_alive
from ..errors import InputDataError
from ..settings import Settings
from .checkpoints import is_local

logger = logging.getLogger(__name__)

STATUS_FILE = "status.json"
PARSE_METRICS = "parse"
"""Name of the observed metrics (``rows``, ``bad``) that every query attaches to its input."""


def status_path(settings: Settings) -> Path:
    """Where the processor of `settings` keeps its status: in its checkpoint root when that is
    a local folder, else in ``<home>/status/`` under a name made from the root's URI."""
    root = str(settings.checkpoint)
    if is_local(root):
        return Path(root.removeprefix("file://")) / STATUS_FILE
    digest = hashlib.sha256(root.encode()).hexdigest()[:16]
    return settings.home / "status" / f"{digest}.json"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else round(value, 1)


def _end_offsets(progress: StreamingQueryProgress) -> dict[str, dict[str, int]]:
    """Where the batch's Kafka sources ended: topic -> partition -> offset (Spark's JSON)."""
    ends: dict[str, dict[str, int]] = {}
    for source in progress.sources:
        try:
            offsets = json.loads(source.endOffset or "null")
        except ValueError:
            continue
        if isinstance(offsets, dict):
            ends |= {
                topic: {str(partition): int(offset) for partition, offset in parts.items()}
                for topic, parts in offsets.items()
                if isinstance(parts, dict)
            }
    return ends


def summarize_progress(progress: StreamingQueryProgress) -> dict[str, Any]:
    """The figures of one micro-batch that people watch, as plain JSON values."""
    parse = progress.observedMetrics.get(PARSE_METRICS)
    operators = progress.stateOperators
    return {
        "batch_id": progress.batchId,
        "timestamp": progress.timestamp,
        "input_rows": progress.numInputRows or 0,
        "input_rows_per_second": _finite(progress.inputRowsPerSecond),
        "processed_rows_per_second": _finite(progress.processedRowsPerSecond),
        "duration_ms": dict(progress.durationMs),
        "watermark": progress.eventTime.get("watermark"),
        "bad_records": int(parse["bad"]) if parse is not None else 0,
        "late_rows": sum(op.numRowsDroppedByWatermark for op in operators),
        "state_rows": sum(op.numRowsTotal for op in operators),
        "state_bytes": sum(op.memoryUsedBytes for op in operators) if operators else None,
        "end_offsets": _end_offsets(progress),
    }


def describe_progress(name: str, summary: dict[str, Any]) -> str:
    """One log line for one micro-batch."""
    durations = summary["duration_ms"]
    text = (
        f"{name} batch {summary['batch_id']}: {summary['input_rows']} rows "
        f"(bad {summary['bad_records']}, late {summary['late_rows']}), "
        f"{summary['input_rows_per_second'] or 0:.0f} in/s, "
        f"{summary['processed_rows_per_second'] or 0:.0f} processed/s, "
        f"trigger {durations.get('triggerExecution', 0)} ms "
        f"(addBatch {durations.get('addBatch', 0)} ms)"
    )
    parts = summary.get("parts_ms")
    if parts:
        text = text[:-1] + ": " + ", ".join(f"{name} {ms:.0f}" for name, ms in parts.items()) + ")"
    if "written_bytes" in summary:
        text += (
            f", state {summary['state_rows']:,} rows, {summary['touched_rows']:,} touched, "
            f"{summary['written_bytes'] / 1e6:.2f} MB written"
        )
    if summary["watermark"]:
        text += f", watermark {summary['watermark']}"
    return text


class ProcessorStatus:
    """The processor's queries and their latest progress, mirrored to a status file."""

    def __init__(self, path: Path, topic: str) -> None:
        """Track queries; write the status to `path` (created with its folder)."""
        self.path = path
        self._lock = threading.Lock()
        self._engine_counts: dict[tuple[str, int], dict[str, Any]] = {}
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []
        """Called with (query name, figures) after every micro-batch is recorded (the
        processor's metrics); they must not change the figures."""
        self._closed_up_to: dict[str, str] = {}
        self._failures: dict[str, str] = {}
        self._state: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "topic": topic,
            "started_at": _now(),
            "updated_at": _now(),
            "stopped_at": None,
            "spark_ui": None,
            "queries": {},
        }

    def _query(self, name: str) -> dict[str, Any]:
        queries: dict[str, dict[str, Any]] = self._state["queries"]
        return queries.setdefault(
            name,
            {
                "name": name,
                "id": None,
                "run_id": None,
                "active": False,
                "status": None,
                "batches": 0,
                "input_rows": 0,
                "bad_records": 0,
                "late_rows": 0,
                "last_progress": None,
                "exception": None,
            },
        )

    def _save(self) -> None:
        self._state["updated_at"] = _now()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._state, indent=2))
        os.replace(temporary, self.path)

    def serving_ui(self, url: str | None) -> None:
        """Record the address of Spark's web UI (None when it is off)."""
        with self._lock:
            self._state["spark_ui"] = url
            self._save()

    def started(self, name: str, query_id: str, run_id: str) -> None:
        """Record that query `name` started."""
        with self._lock:
            query = self._query(name)
            query |= {"id": query_id, "run_id": run_id, "active": True, "exception": None}
            self._save()

    def counted(self, name: str, batch_id: int, **counts: Any) -> None:
        """Figures of micro-batch `batch_id` of query `name` that its engine counted itself
        (``bad_records``, ``late_rows``, ``state_rows``, ``watermark``, ``state_bytes``): they
        replace Spark's in its progress; others are added to it (``parts_ms``: part name ->
        milliseconds of the batch spent in it; ``rows_out``: query -> result records written;
        ``touched_rows``: state rows the batch changed; ``written_bytes``: bytes it wrote to
        the checkpoint's state)."""
        with self._lock:
            self._engine_counts[(name, batch_id)] = counts

    def progressed(self, name: str, summary: dict[str, Any]) -> dict[str, Any]:
        """Record one micro-batch of query `name` (`summarize_progress`); the figures recorded
        (with the engine's own counts)."""
        with self._lock:
            summary = summary | self._engine_counts.pop((name, summary["batch_id"]), {})
            closed = self._closed_up_to.get(name)
            if closed is not None and (summary["watermark"] or "") < closed:
                summary["watermark"] = closed  # ISO-8601 UTC texts of one format sort in time
            query = self._query(name)
            query["batches"] += 1
            query["input_rows"] += summary["input_rows"]
            query["bad_records"] += summary["bad_records"]
            query["late_rows"] += summary["late_rows"]
            query["last_progress"] = summary
            self._save()
        for observer in self.observers:
            observer(name, summary)
        return summary

    def windows_closed(self, name: str, watermark: str) -> None:
        """Record that query `name` closed its windows up to `watermark` between batches (the
        fused engine's no-data batch)."""
        with self._lock:
            self._closed_up_to[name] = watermark
            last = self._query(name)["last_progress"]
            if last is not None:
                last["watermark"] = watermark
                self._save()

    def terminated(self, query_id: str, exception: str | None) -> None:
        """Record that the query with `query_id` stopped (with the error, if it failed)."""
        with self._lock:
            for name, query in self._state["queries"].items():
                if query["id"] == query_id:
                    query |= {"active": False, "exception": self._failures.get(name, exception)}
            self._save()

    def failed(self, name: str, error: str) -> None:
        """Record that query `name` failed, for the reason `error` (in words: it stays)."""
        with self._lock:
            self._failures[name] = error
            self._query(name).update(active=False, exception=error)
            self._save()

    def annotate(self, name: str, **fields: Any) -> None:
        """Record more about query `name` (a named query's source and topic)."""
        with self._lock:
            self._query(name).update(fields)
            self._save()

    def observe(self, name: str, active: bool, message: str) -> None:
        """Record Spark's own view of query `name`: its active flag and status message."""
        with self._lock:
            query = self._query(name)
            if (query["active"], query["status"]) != (active, message):
                query |= {"active": active, "status": message}
                self._save()

    def stopped(self) -> None:
        """Record that the processor has stopped every query."""
        with self._lock:
            for query in self._state["queries"].values():
                query["active"] = False
            self._state["stopped_at"] = _now()
            self._save()

    def snapshot(self) -> dict[str, Any]:
        """A copy of the current status."""
        with self._lock:
            copy: dict[str, Any] = json.loads(json.dumps(self._state))
            return copy


class ProgressListener(StreamingQueryListener):
    """Spark listener that logs every micro-batch and keeps a `ProcessorStatus` current."""

    def __init__(self, status: ProcessorStatus, log_level: int = logging.INFO) -> None:
        """Feed `status`; log batches at `log_level` (DEBUG when a progress bar shows them)."""
        self.status = status
        self.log_level = log_level
        self._names: dict[str, str] = {}
        self._ended: set[str] = set()
        self._ended_changed = threading.Condition()

    def wait_until_ended(
        self, query_ids: set[str], timeout: float, delivering: Callable[[], bool] = lambda: True
    ) -> bool:
        """Wait until the listener has heard every query in `query_ids` end.

        Spark delivers listener events asynchronously, a query's last progress and its end
        after the query has stopped: waiting keeps them from being lost. The wait ends early
        once `delivering` says no event can come any more (Spark is gone or stopping). False
        when not every end was heard.
        """
        deadline = time.monotonic() + timeout
        with self._ended_changed:
            while not query_ids <= self._ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not delivering():
                    return False
                self._ended_changed.wait(min(remaining, 0.5))
            return True

    def onQueryStarted(self, event: QueryStartedEvent) -> None:
        """Record the query's name and ids."""
        name = event.name or str(event.id)
        self._names[str(event.id)] = name
        self.status.started(name, str(event.id), str(event.runId))
        logger.log(self.log_level, "query %s started (id %s, run %s)", name, event.id, event.runId)

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        """Log the batch and record its figures."""
        progress = event.progress
        name = progress.name or str(progress.id)
        summary = self.status.progressed(name, summarize_progress(progress))
        logger.log(self.log_level, "%s", describe_progress(name, summary))

    def onQueryIdle(self, event: QueryIdleEvent) -> None:
        """Nothing to record: the status message says the query waits for data."""

    def onQueryTerminated(self, event: QueryTerminatedEvent) -> None:
        """Record the end of the query and its error, if any."""
        name = self._names.get(str(event.id), str(event.id))
        error = event.exception.splitlines()[0] if event.exception else None
        self.status.terminated(str(event.id), error)
        with self._ended_changed:
            self._ended.add(str(event.id))
            self._ended_changed.notify_all()
        if error:
            logger.error("query %s failed: %s", name, error)
        else:
            logger.log(self.log_level, "query %s stopped", name)


def read_status(settings: Settings) -> dict[str, Any]:
    """The last status of the processor of `settings`, with ``running`` (is the pid alive).

    Raises:
        InputDataError: when no processor has written a status there.
    """
    path = status_path(settings)
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        msg = (
            f"no processor status in {path}: start `hhar process` with the same --checkpoint "
            f"root first"
        )
        raise InputDataError(msg) from None
    except (OSError, ValueError) as error:
        msg = f"cannot read the processor status {path}: {error}"
        raise InputDataError(msg) from None
    same_host = state.get("host") == socket.gethostname()
    running = state.get("stopped_at") is None and (not same_host or pid_alive(state["pid"]))
    state["running"] = running
    if not running:
        for query in state["queries"].values():
            query["active"] = False
    return state
