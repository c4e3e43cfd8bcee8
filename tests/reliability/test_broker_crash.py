"""Scenario 2: the broker is killed with SIGKILL during a ``--max`` replay and stays down for
at least 10 s; once it is back the producer finishes by itself, and an independent reader
finds every valid row in the topic exactly once.

The broker is this test's own (`LocalKafka` in a temporary folder, on free ports), never the
session's: killing it must not disturb other tests.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from support.cli import HharProcess, hhar_env
from support.polling import poll_until
from test_producer.helpers import CommittedCounter, write_part_files

from hhar_stream.local.kafka import LocalKafka

from .harness import ROW_IDENTITY, count_exactness, read_messages, row_identities

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

OUTAGE_SECONDS = 10.0
FILES, ROWS_PER_FILE = 3, 50_000
"""150,000 rows: a --max replay that lasts a few seconds, long enough to be cut by the outage."""
INVALID_LINES = ('{"Arrival_Time":"broken"', "not json", '{"Index":-1}')


def source_rows(paths: list[Path]) -> tuple[set[tuple], int]:
    """The identities of the valid rows of the files, and the number of invalid lines."""
    valid: set[tuple] = set()
    invalid = 0
    for path in paths:
        for line in path.read_text().splitlines():
            if line in INVALID_LINES:
                invalid += 1
            else:
                event = json.loads(line)
                valid.add(tuple(event[name] for name in ROW_IDENTITY))
    return valid, invalid


def test_a_broker_outage_during_a_max_replay_loses_and_duplicates_nothing(
    own_broker: LocalKafka, tmp_path: Path, ledger
) -> None:
    data = tmp_path / "data"
    paths = write_part_files(data, files=FILES, rows_per_file=ROWS_PER_FILE, step_ms=1)
    for number, path in enumerate(paths[: len(INVALID_LINES)]):
        lines = path.read_text().splitlines()
        lines.insert(ROWS_PER_FILE // 2, INVALID_LINES[number])
        path.write_text("\n".join(lines) + "\n")
    expected, invalid = source_rows(paths)
    settings = own_broker.client_settings("admin")
    topic = "reliability.broker-crash"

    producer = HharProcess(
        ["produce", "--source", str(data), "--topic", topic, "--max", "--commit-interval", "0.2"],
        hhar_env(settings, ["bootstrap"]),
        tmp_path,
        "produce",
    )
    counter = CommittedCounter(settings, topic)
    try:
        committed = poll_until(
            lambda: counter() or not producer.running(), 60, "the first committed transaction"
        )
        assert producer.running(), f"the replay ended before the outage:\n{producer.stdout}"
        own_broker.kill_node(1)
        down_since = time.monotonic()
        counter.close()
        while time.monotonic() - down_since < OUTAGE_SECONDS:
            assert producer.running(), f"the producer gave up:\n{producer.stderr[-3000:]}"
            time.sleep(0.2)  # the outage itself: the broker stays down this long
        own_broker.start_node(1)
        down_for = time.monotonic() - down_since
        code = producer.wait(300)
    finally:
        counter.close()
        if producer.running():
            producer.crash()

    events = read_messages(settings, topic)
    seen = row_identities(m.value for m in events)
    lost, duplicated, unexpected = count_exactness(expected, seen)
    uncommitted = len(read_messages(settings, topic, isolation="read_uncommitted"))
    ledger.record(
        "2. broker kill -9 during --max",
        1,
        len(expected),
        len(events),
        lost,
        duplicated,
        f"unavailable {down_for:.0f} s (killed, restarted) after {committed:,} committed events; "
        f"{uncommitted - len(events):,} records of aborted transactions invisible to "
        f"read_committed readers",
    )
    assert code == 0, producer.stderr[-3000:]
    assert (lost, duplicated, unexpected) == (0, 0, 0)
    letters = Counter(m.value for m in read_messages(settings, f"{topic}.dlq"))
    assert letters == Counter(line.encode() for line in INVALID_LINES[:invalid])
    assert f"delivered {len(expected):,} events" in producer.stdout
