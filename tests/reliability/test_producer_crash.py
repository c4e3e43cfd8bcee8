"""Scenario 3: `hhar produce` killed with SIGKILL twice in one replay, resumed each time with
``--resume``: every row reaches the topic exactly once, every invalid row the dead-letter
topic exactly once.

tests/test_producer/test_cli.py kills once; here the replay is killed at two points (early,
after its first commits, and past the middle, in a resumed run), and the topic is checked by an
independent reader on the row identity (User, Device, Index, Arrival_Time) as well as on the
source file and line.
"""

from __future__ import annotations

import signal
import uuid
from collections import Counter

import pytest
from test_processor.helpers import delete_topics
from test_producer.helpers import CommittedCounter, write_part_files

from hhar_stream.settings import Settings

from .harness import (
    HharProcess,
    count_exactness,
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
    valid_lines = {
        (path.name, number)
        for path in paths for number, line in enumerate(path.read_text().splitlines(), 1)
        if line != INVALID_LINE
    }
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
        by_line = Counter((m.headers["source_file"], int(m.headers["source_line"]))
                          for m in events)
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
