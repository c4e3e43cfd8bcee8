"""`replay` against the real broker: what lands in the events, dead-letter and state topics."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from hhar_stream.cli import main
from hhar_stream.errors import InputDataError
from hhar_stream.producer.delivery import REACH_TIMEOUT
from hhar_stream.producer.replay import replay
from hhar_stream.producer.sources import read_rows, resolve_source
from hhar_stream.schemas import parse_event
from hhar_stream.settings import Settings

from .helpers import START_MS, line_places, read_topic, write_part_files

pytestmark = pytest.mark.kafka

EVENT = {
    "Arrival_Time": START_MS,
    "Creation_Time": 1424686733176178965,
    "Device": "nexus4_1",
    "Index": 35,
    "Model": "nexus4",
    "User": "g",
    "gt": "stand",
    "x": 0.0014038086,
    "y": 5.0354e-4,
    "z": -0.0124053955,
}


def settings_for(kafka: Settings, topic: str, source: Path | str, **changes) -> Settings:
    """The test broker's settings replaying `source` into `topic`, as fast as possible."""
    return Settings(
        **(
            kafka.model_dump()
            | {
                "topic": topic,
                "source": source,
                "max_speed": True,
                "commit_interval": 0.2,
            }
            | changes
        )
    )


def row(**changes) -> str:
    return json.dumps(EVENT | changes, separators=(",", ":"))


def test_the_topic_holds_exactly_the_valid_rows(kafka, topics, tmp_path) -> None:
    paths = write_part_files(tmp_path, files=3, rows_per_file=150)
    topic = topics.name("produce")
    stats = replay(settings_for(kafka, topic, tmp_path))

    places = line_places(paths)
    records = read_topic(kafka, topic)
    assert (stats.rows_read, stats.invalid, stats.delivered, stats.failed) == (450, 0, 450, 0)
    assert len(records) == 450
    seen = Counter(places[record.value] for record in records)  # the value is the line as read
    assert set(seen) == set(places.values()) and max(seen.values()) == 1
    for record in records:
        event = parse_event(record.value)
        assert record.key == event.device
        assert (record.timestamp_type, record.timestamp) == (1, event.arrival_time)
        assert record.headers == {"schema_version": "1"}
    assert {record.partition for record in records} <= set(range(kafka.partitions))

    # Per device, the events sit in one partition in the order of the recording.
    by_device = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_device[record.key].append((record.partition, parse_event(record.value).arrival_time))
    for device, placed in by_device.items():
        assert len({partition for partition, _ in placed}) == 1, device
        times = [arrival for _, arrival in placed]
        assert times == sorted(times), device


def test_invalid_rows_go_to_the_dead_letter_topic(kafka, topics, tmp_path) -> None:
    invalid = {
        2: (
            '{"Arrival_Time":1424686735175,',
            "row: Invalid JSON: EOF while parsing a value at line 1 column 30",
        ),
        3: (row(z=None).replace(',"z":null', ""), "z: Field required"),
        5: (row(geolocation="Nanjing"), "geolocation: Extra inputs are not permitted"),
        6: (row(Index="35"), "Index: Input should be a valid integer"),
        7: (row().replace('"x":0.0014038086', '"x":NaN'), "x: Input should be a finite number"),
        8: (row().replace('"y":0.00050354', '"y":1e999'), "y: Input should be a finite number"),
        9: (
            row(gt="jump"),
            "gt: Input should be 'stand', 'sit', 'walk', 'bike', 'stairsup', "
            "'stairsdown' or 'null'",
        ),
        10: (
            row().replace("1424686733176178965", "1.424686733176179E18"),
            "Creation_Time: Input should be a valid integer",
        ),
        12: ("[1, 2]", "row: Input should be an object"),
    }
    valid = {number: row(Index=number, Arrival_Time=START_MS + number) for number in (1, 4, 11)}
    lines = valid | {number: line for number, (line, _) in invalid.items()}
    source = tmp_path / "crafted.json"
    source.write_text("\n".join(lines[number] for number in sorted(lines)) + "\n")
    topic = topics.name("produce")
    stats = replay(settings_for(kafka, topic, source))

    assert (stats.rows_read, stats.invalid, stats.dead_lettered) == (12, 9, 9)
    events = read_topic(kafka, topic)
    assert sorted(r.value for r in events) == sorted(line.encode() for line in valid.values())
    letters = read_topic(kafka, f"{topic}.dlq")
    assert len(letters) == len(invalid)
    for letter in letters:
        number = int(letter.headers["source_line"])
        assert letter.value == invalid[number][0].encode()
        assert letter.headers["error_reason"] == invalid[number][1]
        assert letter.headers["source_file"] == "crafted.json"
        assert letter.headers["schema_version"] == "1"


def test_fail_on_invalid_stops_at_the_first_invalid_row(kafka, topics, tmp_path) -> None:
    source = tmp_path / "crafted.json"
    source.write_text("\n".join([row(Index=1), row(Index=2), row(gt="jump"), row(Index=4)]))
    topic = topics.name("produce")
    with pytest.raises(InputDataError) as caught:
        replay(settings_for(kafka, topic, source, fail_on_invalid=True))
    assert str(caught.value).startswith("invalid row at crafted.json:3: gt: Input should be")
    assert sorted(parse_event(r.value).index for r in read_topic(kafka, topic)) == [1, 2]
    assert read_topic(kafka, f"{topic}.dlq") == []


def test_speedup_holds_in_event_time(kafka, topics, tmp_path) -> None:
    """The broker stamps each record on arrival (LogAppendTime): the replay's wall-clock
    spacing must be the recording's spacing divided by the speedup.

    A record can arrive late (it waits for its batch, for the partition to join the
    transaction, for a busy broker) but never before it was sent: so the earliest arrivals,
    relative to the schedule, must be the same in each half second of the replay (after the
    first, when the first transaction opens). A pacer 20 % off would shift them by 200 ms.
    """
    [path] = write_part_files(tmp_path, files=1, rows_per_file=400, step_ms=10)  # 3.99 s
    topic = topics.create(
        "produce", partitions=1, config={"message.timestamp.type": "LogAppendTime"}
    )
    stats = replay(
        settings_for(
            kafka, topic, path, max_speed=False, speedup=2.0, linger_ms=5, commit_interval=1.0
        )
    )

    records = sorted(read_topic(kafka, topic), key=lambda r: r.offset)
    assert len(records) == 400 and all(r.timestamp_type == 2 for r in records)
    # Arrival (wall ms) minus scheduled offset (event ms / speedup), in replay order.
    lateness = [r.timestamp - parse_event(r.value).arrival_time / 2.0 for r in records]
    earliest = [min(lateness[start : start + 100]) for start in (100, 200, 300)]
    assert max(earliest) - min(earliest) < 100, earliest
    assert stats.elapsed == pytest.approx(1.995, abs=0.5)  # a commit may hold it back a little
    assert stats.max_drift < 1.0


def test_loop_devices_and_now_shift_and_fan_out(kafka, topics, tmp_path) -> None:
    [path] = write_part_files(tmp_path, files=1, rows_per_file=20, step_ms=5)
    originals = [parse_event(line) for line in path.read_text().splitlines()]
    span = originals[-1].arrival_time - originals[0].arrival_time + 1
    topic = topics.name("produce")
    stats = replay(settings_for(kafka, topic, path, loop=True, limit=50, devices=2))

    assert (stats.rows_read, stats.passes, stats.delivered) == (50, 2, 100)
    records = read_topic(kafka, topic)
    runs = Counter(r.headers["run_id"].rsplit(".", 1)[1] for r in records)
    assert runs == {"0": 40, "1": 40, "2": 20}  # 20 rows x 2 devices per pass
    for record in records:
        event = parse_event(record.value)
        shift = int(record.headers["run_id"].rsplit(".", 1)[1]) * span
        original = originals[event.index]  # line n + 1 holds Index n
        assert record.key == event.device
        assert event.device in (original.device, f"{original.device}-v2")
        assert record.timestamp == event.arrival_time == original.arrival_time + shift
        assert event.creation_time == original.creation_time + shift * 1_000_000
        assert (event.index, event.x, event.gt) == (original.index, original.x, original.gt)
    assert Counter(r.key for r in records) == {
        "nexus4_1": 32,
        "nexus4_1-v2": 32,
        "nexus4_2": 18,
        "nexus4_2-v2": 18,
    }

    rebased = topics.name("produce")
    before = time.time() * 1000
    replay(settings_for(kafka, rebased, path, rebase_now=True))
    after = time.time() * 1000
    stamped = read_topic(kafka, rebased)
    assert len(stamped) == 20
    assert all(before <= r.timestamp <= after for r in stamped)  # --max: the time it is sent
    for record in stamped:
        event = parse_event(record.value)
        original = originals[event.index]
        assert event.arrival_time == record.timestamp
        assert event.creation_time - original.creation_time == (
            (record.timestamp - original.arrival_time) * 1_000_000
        )


def test_a_fleet_commits_as_often_in_events_as_one_device(kafka, topics, tmp_path) -> None:
    """A row is `--devices` events: the replay checks its clock (commits, progress, stop
    requests) by events, so a fleet's transactions stay short (a broker aborts and fences one
    older than its transaction timeout: a 10,000-device replay was, before)."""
    [path] = write_part_files(tmp_path, files=1, rows_per_file=40, step_ms=5)
    topic = topics.name("produce")
    stats = replay(settings_for(kafka, topic, path, devices=1024, commit_interval=0.001))
    assert stats.delivered == 40 * 1024
    # A check every 4,096 events (4 rows here): ten commits, where one row count of 4,096
    # rows between checks made the whole replay one transaction.
    assert stats.transactions_committed >= 5


def test_now_with_a_rate_stamps_each_event_when_it_is_sent(kafka, topics, tmp_path) -> None:
    """Rows a minute apart in the recording, sent 100 a second: the rate runs the recording's
    time 6,000 times faster than the clock. With --now every event is stamped when the rate
    sends it, so its time stays at the clock (rebasing once would put the 56th row more than
    55 minutes ahead, and it would be dead-lettered)."""
    [path] = write_part_files(tmp_path, files=1, rows_per_file=120, step_ms=60_000)
    topic = topics.name("produce")
    before = time.time() * 1000
    stats = replay(settings_for(kafka, topic, path, max_speed=False, rate=100.0, rebase_now=True))
    after = time.time() * 1000
    records = sorted(read_topic(kafka, topic), key=lambda r: parse_event(r.value).index)
    assert (stats.delivered, stats.dead_lettered, len(records)) == (120, 0, 120)
    assert read_topic(kafka, f"{topic}.dlq") == []
    stamps = [r.timestamp for r in records]
    assert before <= stamps[0] and stamps[-1] <= after
    assert [parse_event(r.value).arrival_time for r in records] == stamps
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert set(gaps) <= {9, 10, 11}, gaps  # 10 ms apart, to the millisecond
    assert stamps[-1] - stamps[0] == pytest.approx(1190, abs=1)


def test_a_real_uci_file_and_its_spreadsheet_copy(kafka, topics, real_samples) -> None:
    source = real_samples / "uci_Phones_gyroscope_*.csv"
    topic = topics.name("produce")
    stats = replay(settings_for(kafka, topic, source, limit=12_000))
    assert (stats.rows_read, stats.invalid) == (12_000, 7008)
    events = read_topic(kafka, topic)
    assert len(events) == 4992
    [first_rows] = resolve_source(real_samples / "uci_Phones_gyroscope_first10000rows_*.csv")
    valid_rows = [row for row in read_rows([first_rows], "by-file") if row[4] is not None]
    assert sorted(r.value for r in events) == sorted(row[3] for row in valid_rows[:4992])
    assert parse_event(valid_rows[0][3]).creation_time == 1424696631914042029
    letters = read_topic(kafka, f"{topic}.dlq")
    assert len(letters) == 7008
    assert all("scientific notation" in r.headers["error_reason"] for r in letters)
    assert letters[0].value.count(b"\t") == 9


def test_a_rejected_delivery_is_counted_as_failed(kafka, topics, tmp_path, capsys) -> None:
    """The broker refuses records over max.message.bytes: the transaction fails, nothing is
    committed, the summary says so and `hhar produce` exits non-zero."""
    [path] = write_part_files(tmp_path, files=1, rows_per_file=30)
    topic = topics.create("produce", partitions=1, config={"max.message.bytes": "100"})
    stats = replay(settings_for(kafka, topic, path, compression="none"))
    assert stats.failed == 30 and stats.delivered == 0
    assert stats.stopped_by == "failure"
    assert "too large" in stats.failure.lower()
    assert read_topic(kafka, topic) == []

    code = main(
        [
            "produce",
            "--source",
            str(path),
            "--topic",
            topic,
            "--bootstrap",
            kafka.bootstrap,
            "--max",
            "--compression",
            "none",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "30 failed" in out
    assert err.splitlines()[-1].startswith(
        "error: 30 events or dead letters were not delivered: a transaction failed"
    )
    assert "too large" in err.splitlines()[-1]


def test_resume_continues_after_a_limit_and_ends_at_the_end(kafka, topics, tmp_path) -> None:
    write_part_files(tmp_path, files=2, rows_per_file=100)
    topic = topics.name("produce")
    first = replay(settings_for(kafka, topic, tmp_path, limit=70))
    rest = replay(settings_for(kafka, topic, tmp_path, resume=True))
    again = replay(settings_for(kafka, topic, tmp_path, resume=True))
    assert (first.rows_read, first.stopped_by) == (70, "limit")
    assert (rest.resumed_rows, rest.rows_read, rest.stopped_by) == (70, 130, "end")
    assert (again.rows_read, again.delivered) == (0, 0)
    records = read_topic(kafka, topic)
    assert sorted(parse_event(r.value).index for r in records) == list(range(200))


def test_resume_on_a_new_state_topic_is_a_first_replay(kafka, topics, tmp_path) -> None:
    """``--resume`` before any replay (a new broker, compose's first start): nothing to resume
    from, every row delivered, without waiting for the end of an empty state topic."""
    write_part_files(tmp_path, files=2, rows_per_file=50)
    topic = topics.name("produce")
    started = time.monotonic()
    stats = replay(settings_for(kafka, topic, tmp_path, resume=True, state_topic=f"{topic}.state"))
    assert (stats.resumed_rows, stats.delivered) == (0, 100)
    assert time.monotonic() - started < REACH_TIMEOUT
    assert len(read_topic(kafka, topic)) == 100


def test_long_gaps_are_waited_out_or_capped(kafka, topics, tmp_path) -> None:
    """A gap in the recording longer than several commit intervals: the replay waits it out
    (committing nothing meanwhile) in real time, or skips most of it with max_gap."""
    source = tmp_path / "gap.json"
    times = [0, 5, 10, 1510, 1515]
    source.write_text(
        "\n".join(row(Index=n, Arrival_Time=START_MS + t) for n, t in enumerate(times)) + "\n"
    )
    waited = replay(
        settings_for(kafka, topics.name("produce"), source, max_speed=False, speedup=1.0)
    )
    capped = replay(
        settings_for(
            kafka, topics.name("produce"), source, max_speed=False, speedup=1.0, max_gap=0.1
        )
    )
    assert (waited.delivered, capped.delivered) == (5, 5)
    assert waited.elapsed == pytest.approx(1.515, abs=0.3)
    assert capped.elapsed == pytest.approx(0.115, abs=0.3)


def test_resuming_a_loop_continues_its_pass_and_time_shift(kafka, topics, tmp_path) -> None:
    [path] = write_part_files(tmp_path, files=1, rows_per_file=20, step_ms=5)
    span = 19 * 5 + 1
    topic = topics.name("produce")
    replay(settings_for(kafka, topic, path, loop=True, limit=30))
    resumed = replay(settings_for(kafka, topic, path, loop=True, limit=50, resume=True))
    assert (resumed.resumed_rows, resumed.rows_read) == (30, 20)
    records = read_topic(kafka, topic)
    placed = sorted(
        (int(r.headers["run_id"].rsplit(".", 1)[1]), parse_event(r.value).index + 1, r.timestamp)
        for r in records
    )
    assert [(run, line) for run, line, _ in placed] == [
        (run, line) for run in (0, 1, 2) for line in range(1, 21)
    ][:50]
    assert [stamp for *_, stamp in placed] == [
        START_MS + n * 5 + run * span for run in (0, 1, 2) for n in range(20)
    ][:50]


def test_looping_over_no_valid_row_is_an_error(kafka, topics, tmp_path) -> None:
    source = tmp_path / "broken.json"
    source.write_text('{"Arrival_Time":1}\n[]\n')
    topic = topics.name("produce")
    with pytest.raises(InputDataError, match="nothing to loop over: the source holds no valid"):
        replay(settings_for(kafka, topic, source, loop=True))
    assert len(read_topic(kafka, f"{topic}.dlq")) == 2
