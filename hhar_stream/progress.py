"""Progress where a person waits for rows or bytes: a rich bar on a terminal, a log line every
few seconds otherwise (a container's log, a file), both with the rate and what is left."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

LOG_EVERY_S = 5.0
"""Seconds between two progress lines when stderr is not a terminal."""

Unit = Literal["rows", "bytes"]


class Meter(Protocol):
    """How far a task is: `advance` as work is done, `expect` when more work turns up."""

    def advance(self, count: int) -> None:
        """`count` more rows or bytes done."""
        ...

    def expect(self, count: int) -> None:
        """`count` more rows or bytes to do than the total said."""
        ...


@contextmanager
def progress(label: str, total: int, unit: Unit, logger: logging.Logger) -> Iterator[Meter]:
    """A meter of `total` rows or bytes labelled `label` (``synth``, ``fetch``...): a bar when
    stderr is a terminal, else a line on `logger` every `LOG_EVERY_S` seconds. Its methods may
    be called from several threads."""
    if sys.stderr.isatty():
        with _bar(label, total, unit) as meter:
            yield meter
        return
    yield _LogMeter(label, total, unit, logger)


@contextmanager
def _bar(label: str, total: int, unit: Unit) -> Iterator[Meter]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: tuple[ProgressColumn, ...] = (
        (DownloadColumn(), TransferSpeedColumn()) if unit == "bytes" else (MofNCompleteColumn(),)
    )
    with Progress(
        TextColumn(label),
        BarColumn(),
        *columns,
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        yield _BarMeter(bar, bar.add_task(label, total=total), total)


class _BarMeter:
    """Progress on a rich bar."""

    def __init__(self, bar: Progress, task: TaskID, total: int) -> None:
        self.bar, self.task, self.total = bar, task, total
        self.lock = threading.Lock()

    def advance(self, count: int) -> None:
        self.bar.advance(self.task, count)

    def expect(self, count: int) -> None:
        with self.lock:
            self.total += count
            self.bar.update(self.task, total=self.total)


class _LogMeter:
    """Progress as log lines: ``fetch: 512.0 / 1,186.5 MB (43%), 11.2 MB/s, 60 s left``."""

    def __init__(self, label: str, total: int, unit: Unit, logger: logging.Logger) -> None:
        self.label, self.total, self.unit, self.logger = label, total, unit, logger
        self.done = 0
        self.started = self.logged = time.monotonic()
        self.lock = threading.Lock()

    def advance(self, count: int) -> None:
        with self.lock:
            self.done += count
            now = time.monotonic()
            if now - self.logged < LOG_EVERY_S:
                return
            self.logged = now
            rate = self.done / max(now - self.started, 1e-9)
            left = f", {(self.total - self.done) / rate:,.0f} s left" if rate > 0 else ""
            share = 100 * self.done / self.total if self.total else 100.0
            if self.unit == "bytes":
                amounts = f"{self.done / 1e6:,.1f} / {self.total / 1e6:,.1f} MB"
                speed = f"{rate / 1e6:,.1f} MB/s"
            else:
                amounts = f"{self.done:,} / {self.total:,} rows"
                speed = f"{rate:,.0f} rows/s"
            self.logger.info("%s: %s (%.0f%%), %s%s", self.label, amounts, share, speed, left)

    def expect(self, count: int) -> None:
        with self.lock:
            self.total += count
