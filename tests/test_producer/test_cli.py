"""`hhar produce` as a real process: signals, a crash and --resume, and one-line errors."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from support.cli import LOG_LINE, HharProcess, hhar_env, run_hhar

from hhar_stream.daemons import free_port
from hhar_stream.generator.synth import write_dataset
from hhar_stream.schemas import parse_event
from hhar_stream.settings import Settings

from .helpers import CommittedCounter, line_places, read_topic, write_part_files


def wait_for_committed(settings: Settings, topic: str, rows: int, timeout: float = 60) -> None:
    """Wait until the topic holds at least `rows` committed records."""
    counter = CommittedCounter(settings, topic)
    deadline = time.monotonic() + timeout
    try:
        while counter() < rows:
            assert time.monotonic() < deadline, f"{topic}: {counter.count} of {rows} rows"
            time.sleep(0.05)
    finally:
        counter.close()


def summary_number(text: str, pattern: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return int(match.group(1).replace(",", ""))


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_commits_what_was_read_and_prints_the_summary(
    kafka, topics, tmp_path, workers
) -> None:
    """SIGTERM: every worker stops and commits what it read; one summary. Each worker's rows
    (with two, every other line) are a prefix of its share."""
    [path] = write_part_files(tmp_path, files=1, rows_per_file=20_000)  # 20 s at 1000/s
    topic = topics.name("produce")
    process = HharProcess(
        [
            "produce",
            "--source",
            str(path),
            "--topic",
            topic,
            "--workers",
            str(workers),
            "--bootstrap",
            kafka.bootstrap,
            "--rate",
            "1000",
            "--commit-interval",
            "0.2",
        ],
        hhar_env(),
        tmp_path / "cli",
        "produce",
    )
    try:
        wait_for_committed(kafka, topic, 300)
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    finally:
        process.crash()
    out, err = process.stdout, process.stderr
    assert process.returncode == 0, err
    assert "SIGTERM: stopping" in err
    assert out.count("stopped by signal") == 1
    assert (", 2 workers" in out) == (workers == 2)
    delivered = summary_number(out, r"delivered ([\d,]+) events")
    assert summary_number(out, r"read ([\d,]+) rows") == delivered
    indexes = sorted(parse_event(r.value).index for r in read_topic(kafka, topic))
    assert 300 <= delivered == len(indexes) < 20_000
    for worker in range(workers):  # row n is line n + 1: worker w has the rows n = w mod 2
        mine = [index for index in indexes if index % workers == worker]
        assert mine == list(range(worker, workers * len(mine), workers))


@pytest.mark.kafka
@pytest.mark.slow
def test_resume_after_kill_9_delivers_every_row_exactly_once(kafka, topics, tmp_path) -> None:
    data = tmp_path / "data"
    paths = write_part_files(data, files=3, rows_per_file=3000)  # 6 s at 1500/s
    lines = paths[1].read_text().splitlines()
    for number in (1400, 700, 10):
        lines.insert(number, '{"Arrival_Time":"broken"')
    paths[1].write_text("\n".join(lines) + "\n")
    places = line_places(paths)
    expected_valid = {place for line, place in places.items() if b"broken" not in line}
    topic = topics.name("produce")
    common = [
        "--source",
        str(data),
        "--topic",
        topic,
        "--bootstrap",
        kafka.bootstrap,
        "--commit-interval",
        "0.2",
    ]

    crashed = HharProcess(
        ["produce", *common, "--rate", "1500"], hhar_env(), tmp_path / "cli", "produce-crashed"
    )
    try:
        wait_for_committed(kafka, topic, 600)
        crashed.send_signal(signal.SIGKILL)
        crashed.wait(30)
    finally:
        crashed.crash()
    assert crashed.returncode == -signal.SIGKILL
    assert len(read_topic(kafka, topic)) < len(expected_valid)

    resumed = run_hhar(
        ["produce", *common, "--resume", "--max"],
        hhar_env(),
        tmp_path / "cli",
        "produce-resumed",
        timeout=120,
    )
    out, err = resumed.stdout, resumed.stderr
    assert resumed.returncode == 0, err
    assert "after" in out and "rows of earlier runs" in out

    records = read_topic(kafka, topic)
    seen = Counter(places[r.value] for r in records)
    assert set(seen) == expected_valid
    assert max(seen.values()) == 1, [key for key, count in seen.items() if count > 1][:5]
    letters = read_topic(kafka, f"{topic}.dlq")
    assert sorted(int(r.headers["source_line"]) for r in letters) == [11, 702, 1403]


@pytest.mark.kafka
def test_the_first_line_says_which_data_set_is_replayed(kafka, topics, tmp_path) -> None:
    generated = tmp_path / "activity-data"
    write_dataset(generated, rows=2000, files=4, seed=1)
    process = run_hhar(
        [
            "produce",
            "--bootstrap",
            kafka.bootstrap,
            "--topic",
            topics.name("produce"),
            "--max",
            "--limit",
            "10",
        ],
        hhar_env(HHAR_DATA=str(generated)),
        tmp_path / "cli",
    )
    assert process.returncode == 0, process.stderr
    first = process.stderr.splitlines()[0]
    assert LOG_LINE.match(first), first
    assert LOG_LINE.sub("", first).startswith(
        "replaying a generated HHAR-like data set (4 part files of commit "
    )
    assert first.endswith(f"hhar data fetch gets the real one) in {generated}")


def test_an_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    [path] = write_part_files(tmp_path, files=1, rows_per_file=3)
    port = free_port()
    process = run_hhar(
        ["produce", "--source", str(path), "--bootstrap", f"127.0.0.1:{port}", "--max"],
        hhar_env(),
        tmp_path / "cli",
        timeout=60,
    )
    out, err = process.stdout, process.stderr
    assert process.returncode == 1
    assert out == ""
    assert err.startswith(f"error: cannot reach Kafka at 127.0.0.1:{port}: ")
    assert err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["--source", "{tmp}/missing"], {}, 1, "error: source not found: {tmp}/missing\n"),
        (["--source", "{tmp}/*.parquet"], {}, 1, "error: no data files in {tmp}/*.parquet (looked"),
        (
            ["--source", "{tmp}", "--speedup", "2", "--max"],
            {},
            2,
            "error: invalid setting settings: Value error, choose one pacing",
        ),
        (
            ["--source", "{tmp}"],
            {"HHAR_RATE": "5", "HHAR_MAX_SPEED": "true"},
            2,
            "error: invalid setting settings: Value error, choose one pacing",
        ),
        (
            ["--source", "{tmp}", "--devices", "0"],
            {},
            2,
            "error: invalid setting devices (HHAR_DEVICES): Input should be greater than or equal",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, args, env, code, message) -> None:
    process = run_hhar(
        [
            "produce",
            *(arg.format(tmp=tmp_path) for arg in args),
            "--bootstrap",
            f"127.0.0.1:{free_port()}",
        ],
        hhar_env(**env),
        tmp_path / "cli",
        timeout=60,
    )
    err = process.stderr
    assert process.returncode == code
    assert err.startswith(message.format(tmp=tmp_path))
    assert err.count("\n") == 1 and "Traceback" not in err
