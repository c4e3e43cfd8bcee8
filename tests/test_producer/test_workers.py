"""``hhar produce --workers N``: shares, one summary, the total rate, a bad file (a stop is in
test_cli, a killed worker in the reliability tests)."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path

import pytest
from support.cli import hhar_env, run_hhar

from hhar_stream.producer.workers import Share, plan_shares
from hhar_stream.schemas import parse_event
from hhar_stream.settings import Settings

from .helpers import line_places, read_topic, write_part_files


def test_whole_files_are_dealt_by_size_when_there_are_enough() -> None:
    sizes = [10, 50, 20, 20, 30, 10, 40, 20]
    shares = plan_shares(sizes, 2)
    assert [share.files for share in shares] == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert [sum(sizes[number] for number in share.files) for share in shares] == [100, 100]
    assert [(share.stride, share.rate_fraction, share.suffix) for share in shares] == [
        (1, 0.5, ".worker-1-of-2"),
        (1, 0.5, ".worker-2-of-2"),
    ]


def test_the_limit_is_the_total() -> None:
    assert [share.limit for share in plan_shares([10, 50, 20, 20, 30, 10, 40, 20], 2, 7)] == [4, 3]
    assert [share.limit for share in plan_shares([100, 5], 3, 7)] == [3, 2, 2]
    assert [share.limit for share in plan_shares([100, 5], 3, 1)] == [1, 0, 0]
    assert plan_shares([100, 5], 1, 7)[0].limit == 7


def test_fewer_files_are_shared_by_lines() -> None:
    assert plan_shares([100, 5], 3) == [
        Share((0, 1), stride=3, offset=worker, worker=worker, workers=3, rate_fraction=1 / 3)
        for worker in range(3)
    ]
    assert plan_shares([100, 5], 1) == [Share((0, 1))]
    assert plan_shares([100, 5], 1)[0].suffix == ""  # one process keeps the replay's own id


def produce(kafka: Settings, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """Run ``hhar produce`` to its end: its exit code, stdout and stderr."""
    process = run_hhar(
        ["produce", "--bootstrap", kafka.bootstrap, "--commit-interval", "0.2", *args],
        hhar_env(),
        tmp_path / "cli",
        "produce",
        timeout=120,
    )
    return process.returncode, process.stdout, process.stderr


@pytest.mark.kafka
@pytest.mark.parametrize("files", [1, 8])
def test_two_workers_deliver_every_row_once(kafka, topics, tmp_path, files) -> None:
    """One file (every other line each) or eight (four files each); then --resume has
    nothing left to do, and a resume with another number of workers is refused."""
    paths = write_part_files(tmp_path, files=files, rows_per_file=4000 // files)
    topic = topics.name("produce")
    code, out, err = produce(
        kafka, tmp_path, "--source", str(tmp_path), "--topic", topic, "--workers", "2", "--max"
    )
    assert code == 0, err
    assert "2 workers" in out and "delivered 4,000 events" in out
    places = line_places(paths)
    seen = Counter(places[record.value] for record in read_topic(kafka, topic))
    assert set(seen) == set(places.values()) and max(seen.values()) == 1

    code, out, err = produce(
        kafka,
        tmp_path,
        "--source",
        str(tmp_path),
        "--topic",
        topic,
        "--workers",
        "2",
        "--max",
        "--resume",
    )
    assert code == 0, err
    assert "read 0 rows" in out and "(after 4,000 rows of earlier runs)" in out
    code, out, err = produce(
        kafka, tmp_path, "--source", str(tmp_path), "--topic", topic, "--max", "--resume"
    )
    assert code == 1
    assert err.splitlines()[-1] == (
        "error: the stopped replay of this topic and source ran with --workers 2: resume it "
        "with as many, or replay without --resume to start again"
    )
    assert len(read_topic(kafka, topic)) == 4000


@pytest.mark.kafka
def test_a_limit_is_the_total_of_the_workers(kafka, topics, tmp_path) -> None:
    [path] = write_part_files(tmp_path, files=1, rows_per_file=3000)
    topic = topics.name("produce")
    code, out, err = produce(
        kafka,
        tmp_path,
        "--source",
        str(path),
        "--topic",
        topic,
        "--workers",
        "2",
        "--max",
        "--limit",
        "1001",
    )
    assert code == 0, err
    assert "read 1,001 rows" in out and "stopped by limit, 2 workers" in out
    indexes = sorted(parse_event(record.value).index for record in read_topic(kafka, topic))
    assert indexes == list(range(1001))  # the first 1,001 lines: 501 of one worker, 500 of two


@pytest.mark.kafka
@pytest.mark.slow
def test_the_rate_is_the_total_of_the_workers(kafka, topics, tmp_path) -> None:
    """--rate 1000 with two workers: the broker appends 1,000 events a second in all (each
    worker sends 500), to within 5 %."""
    [path] = write_part_files(tmp_path, files=1, rows_per_file=3000)
    topic = topics.create(
        "produce", partitions=1, config={"message.timestamp.type": "LogAppendTime"}
    )
    code, out, err = produce(
        kafka, tmp_path, "--source", str(path), "--topic", topic, "--workers", "2", "--rate", "1000"
    )
    assert code == 0, err
    appended = sorted(record.timestamp for record in read_topic(kafka, topic))
    assert len(appended) == 3000
    rate = (len(appended) - 1) / ((appended[-1] - appended[0]) / 1000)
    assert rate == pytest.approx(1000, rel=0.05)
    halves = [appended[:1500], appended[1500:]]
    for half in halves:  # steady: each half second of the run holds its share, not a burst
        assert (len(half) - 1) / ((half[-1] - half[0]) / 1000) == pytest.approx(1000, rel=0.1)


@pytest.mark.kafka
def test_a_corrupt_file_ends_its_worker_and_the_others_finish(kafka, topics, tmp_path) -> None:
    paths = write_part_files(tmp_path, files=8, rows_per_file=500)
    places = line_places(paths)
    broken = paths[3]
    packed = gzip.compress(broken.read_bytes())
    broken.unlink()
    (tmp_path / f"{broken.name}.gz").write_bytes(packed[: len(packed) // 2])
    topic = topics.name("produce")
    code, out, err = produce(
        kafka, tmp_path, "--source", str(tmp_path), "--topic", topic, "--workers", "2", "--max"
    )
    assert code == 1
    lines = err.splitlines()
    assert re.fullmatch(
        r"error: worker [12]/2: cannot read part-00003-c000\.json\.gz: "
        r"Compressed file ended before the end-of-stream marker was reached",
        lines[-1],
    ), err
    assert "Traceback" not in err
    assert "2 workers" in out
    failed = int(lines[-1].split()[2][0]) - 1
    sizes = sorted(tmp_path.glob("part-*"))
    healthy = plan_shares([path.stat().st_size for path in sizes], 2)[1 - failed]
    expected = {
        place
        for place in places.values()
        if place[0] in {sizes[number].name for number in healthy.files}
    }
    seen = Counter(places.get(record.value) for record in read_topic(kafka, topic))
    assert expected <= set(seen) and max(seen.values()) == 1
    assert len(expected) == 2000
