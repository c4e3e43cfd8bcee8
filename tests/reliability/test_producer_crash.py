"""Scenario 3: `hhar produce` killed with SIGKILL, resumed with ``--resume``: every row reaches
the topic exactly once, every invalid row the dead-letter topic exactly once.

tests/test_producer/test_cli.py kills once; here the replay is killed at two points (early,
after its first commits, and past the middle, in a resumed run), and one worker of two is
killed while the other goes on. The topic is checked by an independent reader on the row
identity (User, Device, Index, Arrival_Time) as well as on the source line (an event's value is
its line as read).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.cli import HharProcess, error_line, hhar_env
from support.polling import poll_until
from test_producer.helpers import CommittedCounter, line_places, write_part_files

from hhar_stream.settings import Settings

from .harness import count_exactness, read_messages, row_identities

if TYPE_CHECKING:
    from .conftest import Ledger

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

INVALID_LINE = '{"Arrival_Time":"broken"'
KILL_AFTER_COMMITTED = (600, 2400)
"""Committed events after which each run is killed (the second run is a resumed one)."""


@dataclass(frozen=True)
class Source:
    """Three part files of 1,500 rows, three invalid lines in one of them, and fresh topics."""

    folder: Path
    places: dict[bytes, tuple[str, int]]
    valid_lines: set[tuple[str, int]]
    topic: str
    args: list[str]
    """``produce`` with the source, topics and a short commit interval."""

    @classmethod
    def write(cls, folder: Path, broken_file: int, at: tuple[int, ...], prefix: str) -> Source:
        """The files in `folder`, `INVALID_LINE` at lines `at` of file `broken_file`; the topics
        (events, dead letters, state) named under `prefix`."""
        paths = write_part_files(folder, files=3, rows_per_file=1500)
        lines = paths[broken_file].read_text().splitlines()
        for number in at:
            lines.insert(number, INVALID_LINE)
        paths[broken_file].write_text("\n".join(lines) + "\n")
        places = line_places(paths)
        valid = {place for line, place in places.items() if line != INVALID_LINE.encode()}
        args = [
            "produce",
            "--source",
            str(folder),
            "--topic",
            f"{prefix}.events",
            "--state-topic",
            f"{prefix}.state",
            "--commit-interval",
            "0.2",
        ]
        return cls(folder, places, valid, f"{prefix}.events", args)

    def check_exactly_once(
        self,
        kafka: Settings,
        ledger: Ledger,
        scenario: str,
        trials: int,
        note: str,
        letter_lines: list[int],
    ) -> None:
        """Every valid row once in the topic (by line and by identity), every invalid one once
        in the dead-letter topic; the ledger records what was seen."""
        events = read_messages(kafka, self.topic)
        by_line = Counter(self.places.get(m.value, ("?", 0)) for m in events)
        lost, duplicated, unexpected = count_exactness(self.valid_lines, by_line)
        identities = row_identities(m.value for m in events)
        ledger.record(scenario, trials, len(self.valid_lines), len(events), lost, duplicated, note)
        assert (lost, duplicated, unexpected) == (0, 0, 0)
        assert len(identities) == len(self.valid_lines) and max(identities.values()) == 1

        letters = read_messages(kafka, f"{self.topic}.dlq")
        assert sorted(int(m.headers["source_line"]) for m in letters) == letter_lines
        assert {m.value for m in letters} == {INVALID_LINE.encode()}


def when_committed(settings: Settings, topic: str, committed: int, producer: HharProcess) -> None:
    """Wait until `topic` holds `committed` committed events, the producer still running."""
    counter = CommittedCounter(settings, topic)
    try:
        poll_until(
            lambda: counter() >= committed or not producer.running(),
            60,
            f"{committed} committed events",
        )
        assert producer.running(), producer.stderr[-2000:]
    finally:
        counter.close()


def resume(args: list[str], env: dict[str, str], workdir: Path) -> None:
    """``--resume --max`` to the end: it must succeed after resuming earlier runs."""
    resumed = HharProcess([*args, "--resume", "--max"], env, workdir, "resumed")
    assert resumed.wait(120) == 0, resumed.stderr[-3000:]
    assert "rows of earlier runs" in resumed.stdout


def test_kill_9_twice_then_resume_delivers_every_row_exactly_once(
    kafka: Settings, topics, tmp_path, ledger
) -> None:
    source = Source.write(
        tmp_path / "data", 2, (1450, 800, 5), topics.name("reliability-producer-crash")
    )
    env = hhar_env(kafka, ["bootstrap"])
    for trial, committed in enumerate(KILL_AFTER_COMMITTED):
        args = [*source.args, *(["--resume"] if trial else []), "--rate", "1500"]
        crashed = HharProcess(args, env, tmp_path, f"produce-crashed-at-{committed}")
        try:
            when_committed(kafka, source.topic, committed, crashed)
        finally:
            crashed.crash()
        assert crashed.process.returncode == -signal.SIGKILL
    resume(source.args, env, tmp_path)
    source.check_exactly_once(
        kafka,
        ledger,
        "3. producer kill -9, --resume",
        len(KILL_AFTER_COMMITTED),
        f"killed after {' and '.join(map(str, KILL_AFTER_COMMITTED))} committed events",
        [6, 802, 1453],
    )


def worker_pids(parent: int) -> list[int]:
    """The pids of a process's children (``hhar produce --workers``: its workers), in order."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def test_kill_9_of_one_worker_then_resume_delivers_every_row_exactly_once(
    kafka: Settings, topics, tmp_path, ledger
) -> None:
    """Two workers share three files line by line; one is killed with SIGKILL mid-replay. The
    other finishes its share, the command ends with one error line naming the killed worker,
    and ``--resume`` delivers the rest: every row once, every invalid row dead-lettered once."""
    source = Source.write(
        tmp_path / "data", 1, (1200, 601, 4), topics.name("reliability-worker-crash")
    )
    args = [*source.args, "--workers", "2"]
    env = hhar_env(kafka, ["bootstrap"])
    producer = HharProcess([*args, "--rate", "1500"], env, tmp_path, "produce-2-workers")
    try:
        when_committed(kafka, source.topic, 1200, producer)
        os.kill(worker_pids(producer.pid)[1], signal.SIGKILL)
        assert producer.wait(60) == 1, producer.stderr[-3000:]
    finally:
        producer.crash()
    assert error_line(producer.stderr) == (
        "error: worker 2/2: was killed by SIGKILL before it finished: run again with "
        "--resume to replay the rest of its share"
    )
    assert len(read_messages(kafka, source.topic)) < len(source.valid_lines)
    resume(args, env, tmp_path)
    source.check_exactly_once(
        kafka,
        ledger,
        "3. producer worker kill -9 (--workers 2), --resume",
        1,
        "worker 2 of 2 killed after 1200 committed events; the other one finished",
        [5, 603, 1203],
    )
