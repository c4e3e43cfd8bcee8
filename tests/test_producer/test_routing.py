"""The routing step alone (no Kafka, no clock): rows to events, dead letters or too far ahead."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hhar_stream.producer.routing import (
    MAX_AHEAD_MS,
    DeadLetter,
    Routed,
    Router,
    too_far_ahead,
)
from hhar_stream.producer.sources import MAX_LINE_BYTES, RowBlock, read_blocks, resolve_source
from hhar_stream.schemas import parse_event

from .helpers import START_MS, event_line

HORIZON = START_MS + 10**9
"""A horizon far past every row of these tests (the broker would take them all)."""


def block_of(tmp_path: Path, lines: list[str]) -> RowBlock:
    """The one block `read_blocks` makes of these lines."""
    path = tmp_path / "rows.json"
    path.write_text("\n".join(lines) + "\n")
    [block] = read_blocks(resolve_source(path))
    return block


def valid_lines(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [event_line(START_MS + 5 * n, f"nexus4_{1 + n % 2}", n, rng) for n in range(count)]


def test_plain_rows_are_their_lines_keyed_by_device_at_their_arrival_time(tmp_path) -> None:
    lines = valid_lines(6)
    block = block_of(tmp_path, lines)
    routed = Router().route(block, HORIZON)
    assert routed.values is block.payloads  # the block's own list: no step per row
    assert routed.values == [line.encode() for line in lines]
    assert routed.keys == [parse_event(line).device for line in lines]
    assert routed.timestamps == [START_MS + 5 * n for n in range(6)]
    assert (routed.letters, routed.rows, routed.stop) == ([], 6, None)


def test_a_shift_a_stamp_and_virtual_devices_rewrite_the_events(tmp_path) -> None:
    lines = valid_lines(2)
    block = block_of(tmp_path, lines)

    shifted = Router(devices=3).route(block, HORIZON, shift=1000)
    assert shifted.keys == [
        "nexus4_1",
        "nexus4_1-v2",
        "nexus4_1-v3",
        "nexus4_2",
        "nexus4_2-v2",
        "nexus4_2-v3",
    ]
    assert shifted.timestamps == [START_MS + 1000] * 3 + [START_MS + 1005] * 3
    for value, key, timestamp in zip(shifted.values, shifted.keys, shifted.timestamps, strict=True):
        event = parse_event(value)
        assert (event.device, event.arrival_time) == (key, timestamp)

    stamp = START_MS + 123_456
    stamped = Router().route(block, HORIZON, stamp=stamp)
    assert stamped.timestamps == [stamp, stamp]
    for value, line in zip(stamped.values, lines, strict=True):
        event, original = parse_event(value), parse_event(line)
        assert event.arrival_time == stamp
        assert event.creation_time - original.creation_time == (
            (stamp - original.arrival_time) * 1_000_000
        )


def test_invalid_rows_become_dead_letters_with_their_reason_and_place(tmp_path) -> None:
    lines = valid_lines(3)
    block = block_of(tmp_path, [lines[0], '{"Arrival_Time":"soon"}', lines[1], "[]", lines[2]])
    routed = Router().route(block, HORIZON)
    assert routed.values == [line.encode() for line in lines]
    assert [(letter.line_no, letter.payload) for letter in routed.letters] == [
        (2, b'{"Arrival_Time":"soon"}'),
        (4, b"[]"),
    ]
    assert routed.letters[1].reason == "row: Input should be an object"
    assert routed.rows == 5

    stopped = Router(fail_on_invalid=True).route(block, HORIZON)
    assert (stopped.rows, stopped.values, stopped.letters) == (1, [lines[0].encode()], [])
    assert stopped.stop == routed.letters[0]


def test_a_row_past_the_horizon_is_a_dead_letter(tmp_path) -> None:
    lines = valid_lines(3)
    block = block_of(tmp_path, lines)
    routed = Router().route(block, horizon=START_MS + 5)
    assert routed.timestamps == [START_MS, START_MS + 5]
    [letter] = routed.letters
    assert (letter.line_no, letter.reason) == (3, too_far_ahead(START_MS + 10))
    assert "in the future beyond the broker's limit" in letter.reason
    assert MAX_AHEAD_MS < 3_600_000  # the broker's own limit is an hour


def test_a_dead_letter_record_names_its_place_and_fits_a_message() -> None:
    value, headers = DeadLetter(b"x" * 10, "too short", 0, 7).record("part-0.json")
    assert value == b"x" * 10
    assert dict(headers) == {
        "error_reason": "too short",
        "source_file": "part-0.json",
        "source_line": "7",
        "schema_version": "1",
    }
    long_line = b"y" * (MAX_LINE_BYTES + 5)
    value, headers = DeadLetter(long_line, "r" * 5000, 0, 1).record("a.json")
    assert value == long_line[:MAX_LINE_BYTES]
    assert dict(headers)["value_truncated"] == "true"
    assert dict(headers)["original_length"] == str(MAX_LINE_BYTES + 5)
    assert len(dict(headers)["error_reason"]) == 4096


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["valid", "invalid"]), min_size=1, max_size=12),
    shift=st.sampled_from([0, 7, -3]),
    devices=st.integers(1, 3),
    ahead=st.integers(-1, 12),
    stamped=st.booleans(),
)
def test_a_block_is_routed_as_its_rows_one_by_one(kinds, shift, devices, ahead, stamped) -> None:
    """The block's shortcut and the general path agree with `Router.add` row after row."""
    lines = valid_lines(len(kinds), seed=len(kinds))
    text = [
        line if kind == "valid" else '{"Index":' + str(n)
        for n, (line, kind) in enumerate(zip(lines, kinds, strict=True))
    ]
    with tempfile.TemporaryDirectory() as folder:
        block = block_of(Path(folder), text)
    horizon = START_MS + 5 * ahead + (0 if stamped else shift)
    stamp = START_MS + 2 if stamped else None
    router = Router(devices=devices)
    whole = router.route(block, horizon, shift=shift, stamp=stamp)
    one_by_one = Routed()
    for row in block.rows():
        assert router.add(one_by_one, row, row[0] + shift if stamp is None else stamp, horizon)
    assert whole == one_by_one
    assert whole.rows == len(kinds)
    assert len(whole.values) == devices * (len(kinds) - len(whole.letters))
