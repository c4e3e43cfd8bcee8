"""Scenario 5: fuzzed input files. Hypothesis writes files of malformed and edge-case lines
(truncated JSON, NaN, Infinity, huge numbers, 20-digit times, unicode, extra and missing
fields, BOMs, invalid UTF-8, CRLF, blank lines...); the producer's reading and validation
never raise, route every non-blank line exactly once by its kind (event or dead letter, with a
reason) and skip blank lines. Then one generated file of 3,000 such lines goes through a real
`hhar produce` into the broker, and an independent reader finds each line where it belongs.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.cli import HharProcess, hhar_env

from hhar_stream.producer.sources import read_rows, resolve_source
from hhar_stream.settings import Settings

from .fuzz_lines import (
    BLANK,
    FIELDS,
    INVALID,
    VALID,
    Line,
    dump,
    generated_lines,
    lines,
    random_event,
)
from .harness import count_exactness, read_messages

FILE_LINES = 1500
"""Lines of each of the two files replayed into the broker."""

ATTRIBUTES = {name: name.lower() for name in FIELDS}
"""Wire name -> the attribute name the producer's rows use (Arrival_Time -> arrival_time)."""


BOM = b"\xef\xbb\xbf"


def write_files(
    folder: Path, files: list[list[tuple[Line, bytes]]], final_newline: bool, bom: bool = False
) -> list[Path]:
    """Write each file's lines with their terminators (the last one dropped unless
    `final_newline`), after a byte order mark with `bom`; their paths.

    A file whose first line starts with a BOM gets one more in front, which the reader drops:
    the line then reads as written."""
    paths = []
    for number, file_lines in enumerate(files):
        content = b"".join(line + ending for (line, _, _), ending in file_lines)
        if file_lines and not final_newline:
            content = content.removesuffix(file_lines[-1][1])
        if bom or content.startswith(BOM):
            content = BOM + content
        path = folder / f"part-{number:05d}.json"
        path.write_bytes(content)
        paths.append(path)
    return paths


endings = st.sampled_from([b"\n", b"\r\n"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(st.lists(st.tuples(lines, endings), max_size=25), min_size=1, max_size=3),
    order=st.sampled_from(["merged", "by-file"]),
    final_newline=st.booleans(),
    bom=st.booleans(),
)
def test_every_fuzzed_line_is_routed_once_by_its_kind(files, order, final_newline, bom) -> None:
    with tempfile.TemporaryDirectory() as folder:
        write_files(Path(folder), files, final_newline, bom)
        rows = list(read_rows(resolve_source(folder), order))

    expected = {
        (file_no, line_no): line
        for file_no, file_lines in enumerate(files)
        for line_no, (line, _) in enumerate(file_lines, 1)
        if line[1] != BLANK
    }
    places = Counter((file_no, line_no) for _, file_no, line_no, *_ in rows)
    assert places.keys() == expected.keys() and set(places.values()) <= {1}
    for _, file_no, line_no, payload, event, reason in rows:
        text, kind, fields = expected[file_no, line_no]
        assert payload == text
        if kind == VALID:
            assert reason is None and event is not None, (text, reason)
            assert event == {ATTRIBUTES[name]: value for name, value in fields.items()}
        else:
            assert event is None, text
            assert reason and "\n" not in reason, (text, reason)


def test_a_byte_order_mark_at_the_start_of_a_file_is_not_part_of_the_first_row(
    tmp_path: Path,
) -> None:
    line = dump(random_event(random.Random(4)))
    (tmp_path / "part-00000.json").write_bytes(BOM + line + b"\r\n" + line + b"\r\n")
    rows = list(read_rows(resolve_source(tmp_path)))
    assert [(payload, reason) for _, _, _, payload, _, reason in rows] == [(line, None)] * 2


def test_field_names_are_the_wire_names_only(tmp_path: Path) -> None:
    event = random_event(random.Random(5))
    snake_case = {name.lower(): value for name, value in event.items()}
    both = event | {"arrival_time": event["Arrival_Time"] + 1}
    (tmp_path / "part-00000.json").write_bytes(dump(snake_case) + b"\n" + dump(both) + b"\n")
    rows = list(read_rows(resolve_source(tmp_path)))
    assert [(event, bool(reason)) for *_, event, reason in rows] == [(None, True)] * 2


def replay_one_file(kafka: Settings, folder: Path, prefix: str, *args: str) -> tuple[list, list]:
    """`hhar produce --max` of `folder`/part-00000.json into topics named under `prefix`; the
    events and the dead letters it wrote (the replay must end by itself, exit 0)."""
    topic = f"{prefix}.events"
    producer = HharProcess(
        [
            "produce",
            "--source",
            str(folder / "part-00000.json"),
            "--topic",
            topic,
            "--state-topic",
            f"{prefix}.state",
            *args,
            "--max",
        ],
        hhar_env(kafka, ["bootstrap"]),
        folder,
        "produce",
    )
    code = producer.wait(120)
    events = read_messages(kafka, topic)
    letters = read_messages(kafka, f"{topic}.dlq")
    assert code == 0, producer.stderr[-2000:]
    return events, letters


@pytest.mark.kafka
@pytest.mark.slow
def test_a_line_longer_than_the_message_limit_is_dead_lettered(
    kafka: Settings, topics, tmp_path: Path
) -> None:
    rng = random.Random(6)
    before, after = dump(random_event(rng)), dump(random_event(rng))
    huge = b'{"Device":"' + b"x" * 1_500_000 + b'"}'
    (tmp_path / "part-00000.json").write_bytes(b"\n".join([before, huge, after, b""]))
    events, letters = replay_one_file(kafka, tmp_path, topics.name("reliability-huge-line"))
    # Keyed by Device, the two events may be in different partitions: no order between them.
    assert sorted(m.value for m in events) == sorted([before, after])
    [letter] = letters
    assert letter.headers["source_line"] == "2" and letter.headers["error_reason"]
    assert letter.value.startswith(huge[:1000])
    assert letter.headers["value_truncated"] == "true"
    assert letter.headers["original_length"] == str(len(huge))


@pytest.mark.kafka
@pytest.mark.slow
def test_a_row_from_the_future_does_not_end_the_replay(
    kafka: Settings, topics, tmp_path: Path
) -> None:
    rng = random.Random(7)
    rows = [random_event(rng) for _ in range(3)]
    rows[1]["Arrival_Time"] = int(time.time() * 1000) + 2 * 86_400_000
    (tmp_path / "part-00000.json").write_bytes(b"".join(dump(row) + b"\n" for row in rows))
    events, letters = replay_one_file(
        kafka, tmp_path, topics.name("reliability-future-row"), "--order", "by-file"
    )
    assert sorted(m.value for m in events) == sorted([dump(rows[0]), dump(rows[2])])
    [letter] = letters
    assert letter.value == dump(rows[1]) and letter.headers["source_line"] == "2"
    assert "in the future beyond the broker's limit" in letter.headers["error_reason"]


@pytest.mark.kafka
@pytest.mark.slow
def test_a_generated_file_of_fuzzed_lines_through_a_real_replay(
    kafka: Settings, topics, tmp_path: Path, ledger
) -> None:
    rng = random.Random(20150223)
    data = tmp_path / "data"
    data.mkdir()
    files = [
        [(line, rng.choice([b"\n", b"\r\n"])) for line in generated_lines(rng, FILE_LINES)]
        for _ in range(2)
    ]
    paths = write_files(data, files, final_newline=True)
    placed = {
        kind: {
            (path.name, number): line
            for path, file_lines in zip(paths, files, strict=True)
            for number, ((line, line_kind, _), _) in enumerate(file_lines, 1)
            if line_kind == kind
        }
        for kind in (VALID, INVALID, BLANK)
    }
    prefix = topics.name("reliability-fuzz")
    topic = f"{prefix}.events"
    producer = HharProcess(
        [
            "produce",
            "--source",
            str(data),
            "--topic",
            topic,
            "--state-topic",
            f"{prefix}.state",
            "--max",
        ],
        hhar_env(kafka, ["bootstrap"]),
        tmp_path,
        "produce",
    )
    assert producer.wait(120) == 0, producer.stderr[-3000:]
    assert "Traceback" not in producer.stderr
    events = read_messages(kafka, topic)
    letters = read_messages(kafka, f"{topic}.dlq")

    # A dead letter names its file and line; an event is its line as read and names no source
    # line, so the events are checked as a multiset of lines (a valid line may occur twice).
    expected_events = Counter(placed[VALID].values())
    seen_events = Counter(m.value for m in events)
    expected_letters = {(*place, line) for place, line in placed[INVALID].items()}
    letters_at = Counter(
        (m.headers["source_file"], int(m.headers["source_line"]), m.value) for m in letters
    )
    lost, duplicated, unexpected = count_exactness(expected_letters, letters_at)
    lost += (expected_events - seen_events).total()
    duplicated += (seen_events - expected_events).total()
    expected = expected_events.total() + len(expected_letters)
    ledger.record(
        "5. fuzzed input file, real replay",
        len(placed[INVALID]) + len(placed[BLANK]),
        expected,
        seen_events.total() + letters_at.total(),
        lost,
        duplicated,
        f"{len(placed[VALID]):,} valid, {len(placed[INVALID]):,} invalid and "
        f"{len(placed[BLANK]):,} blank lines; hypothesis: 300 files of up to 75 lines",
    )
    assert (lost, duplicated, unexpected) == (0, 0, 0)
    assert seen_events == expected_events
    assert all(m.headers["error_reason"] for m in letters)
    assert f"read {expected:,} rows: {len(placed[VALID]):,} valid" in producer.stdout
