"""Scenario 3: `hhar produce` killed with SIGKILL twice in one replay, resumed each time with
``--resume``: every row reaches the topic exactly once, every invalid row the dead-letter
topic exactly once.

tests/test_producer/test_cli.py kills once; here the replay is killed at two points (early,
after its first commits, and past the middle, in a resumed run), and the topic is checked by an
independent reader on the row identity (User, Device, Index, Arrival_Time) as well as on the
source file and line.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from pathlib import Path

import pytest
from test_processor.helpers import delete_topics
from test_producer.helpers import CommittedCounter, line_places, write_part_files

from hhar_stream.settings import Settings

from .harness import (
    HharProcess,
    count_exactness,
    error_line,
    hhar_env,
    poll_until,
    read_messages,
    row_identities,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

INVALID_LINE = '{"Arrival_Time":"broken"'
KILL_AFTER_COMMITTED = (600, 2400)
"""Committed events after which each run is killed (the second run is a resumed one)."""


def crash_after(settings: Settings, topic: str, committed: int, args: list[str],
                env: dict[str, str], workdir) -> HharProcess:
    """Run `hhar <args>` and SIGKILL it once `topic` holds `committed` committed events."""
    producer = HharProcess(args, env, workdir, f"produce-crashed-at-{committed}")
    counter = CommittedCounter(settings, topic)
    try:
        poll_until(lambda: counter() >= committed or not producer.running(), 60,
                   f"{committed} committed events")
        assert producer.running(), producer.stderr[-2000:]
    finally:
        counter.close()
        producer.crash()
    return producer


def test_kill_9_twice_then_resume_delivers_every_row_exactly_once(
    kafka: Settings, tmp_path, ledger
) -> None:
    data = tmp_path / "data"
    paths = write_part_files(data, files=3, rows_per_file=1500)
    lines = paths[2].read_text().splitlines()
    for number in (1450, 800, 5):
        lines.insert(number, INVALID_LINE)
    paths[2].write_text("\n".join(lines) + "\n")
    places = line_places(paths)
    valid_lines = {place for line, place in places.items() if line != INVALID_LINE.encode()}
    prefix = f"reliability-producer-crash-{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}.events"
    common = ["--source", str(data), "--topic", topic, "--state-topic", f"{prefix}.state",
              "--commit-interval", "0.2"]
    env = hhar_env(kafka, ["bootstrap"])
    try:
        for trial, committed in enumerate(KILL_AFTER_COMMITTED):
            resume = ["--resume"] if trial else []
            crashed = crash_after(kafka, topic, committed, ["produce", *common, *resume,
                                                            "--rate", "1500"], env, tmp_path)
            assert crashed.process.returncode == -signal.SIGKILL

        resumed = HharProcess(["produce", *common, "--resume", "--max"], env, tmp_path, "final")
        assert resumed.wait(120) == 0, resumed.stderr[-3000:]
        assert "rows of earlier runs" in resumed.stdout

        events = read_messages(kafka, topic)
        by_line = Counter(places.get(m.value, ("?", 0)) for m in events)
        lost, duplicated, unexpected = count_exactness(valid_lines, by_line)
        identities = row_identities(m.value for m in events)
        ledger.record("3. producer kill -9, --resume", len(KILL_AFTER_COMMITTED),
                      len(valid_lines), len(events), lost, duplicated,
                      f"killed after {' and '.join(map(str, KILL_AFTER_COMMITTED))} "
                      f"committed events")
        assert (lost, duplicated, unexpected) == (0, 0, 0)
        assert len(identities) == len(valid_lines) and max(identities.values()) == 1

        letters = read_messages(kafka, f"{topic}.dlq")
        assert sorted(int(m.headers["source_line"]) for m in letters) == [6, 802, 1453]
        assert {m.value for m in letters} == {INVALID_LINE.encode()}
    finally:
        delete_topics(kafka, prefix)


def worker_pids(parent: int) -> list[int]:
    """The pids of a process's children (``hhar produce --workers``: its workers), in order."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def test_kill_9_of_one_worker_then_resume_delivers_every_row_exactly_once(
    kafka: Settings, tmp_path, ledger
) -> None:
    """Two workers share three files line by line; one is killed with SIGKILL mid-replay. The
    other finishes its share, the command ends with one error line naming the killed worker,
    and ``--resume`` delivers the rest: every row once, every invalid row dead-lettered once."""
    data = tmp_path / "data"
    paths = write_part_files(data, files=3, rows_per_file=1500)
    lines = paths[1].read_text().splitlines()
    for number in (1200, 601, 4):
        lines.insert(number, INVALID_LINE)
    paths[1].write_text("\n".join(lines) + "\n")
    places = line_places(paths)
    valid_lines = {place for line, place in places.items() if line != INVALID_LINE.encode()}
    prefix = f"reliability-worker-crash-{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}.events"
    common = ["produce", "--source", str(data), "--topic", topic, "--state-topic",
              f"{prefix}.state", "--commit-interval", "0.2", "--workers", "2"]
    env = hhar_env(kafka, ["bootstrap"])
    try:
        producer = HharProcess([*common, "--rate", "1500"], env, tmp_path, "produce-2-workers")
        counter = CommittedCounter(kafka, topic)
        try:
            poll_until(lambda: counter() >= 1200 or not producer.running(), 60,
                       "1200 committed events")
            assert producer.running(), producer.stderr[-2000:]
            killed = worker_pids(producer.pid)[1]
            os.kill(killed, signal.SIGKILL)
        finally:
            counter.close()
        assert producer.wait(60) == 1, producer.stderr[-3000:]
        assert error_line(producer.stderr) == (
            "error: worker 2/2: was killed by SIGKILL before it finished: run again with "
            "--resume to replay the rest of its share")
        assert len(read_messages(kafka, topic)) < len(valid_lines)

        resumed = HharProcess([*common, "--resume", "--max"], env, tmp_path, "resumed")
        assert resumed.wait(120) == 0, resumed.stderr[-3000:]
        assert "rows of earlier runs" in resumed.stdout

        events = read_messages(kafka, topic)
        by_line = Counter(places.get(m.value, ("?", 0)) for m in events)
        lost, duplicated, unexpected = count_exactness(valid_lines, by_line)
        identities = row_identities(m.value for m in events)
        ledger.record("3. producer worker kill -9 (--workers 2), --resume", 1,
                      len(valid_lines), len(events), lost, duplicated,
                      "worker 2 of 2 killed after 1200 committed events")
        assert (lost, duplicated, unexpected) == (0, 0, 0)
        assert len(identities) == len(valid_lines) and max(identities.values()) == 1

        letters = read_messages(kafka, f"{topic}.dlq")
        assert sorted(int(m.headers["source_line"]) for m in letters) == [5, 603, 1203]
        assert {m.value for m in letters} == {INVALID_LINE.encode()}
    finally:
        delete_topics(kafka, prefix)
