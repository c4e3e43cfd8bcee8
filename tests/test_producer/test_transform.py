"""Time shifts and virtual devices: the edited line must be the event with the new values."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from hhar_stream.producer.transform import rewrite_event, virtual_devices
from hhar_stream.schemas import SensorEvent, parse_event

LINE = (
    b'{"Arrival_Time":1424686735175,"Creation_Time":1424686733176178965,"Device":"nexus4_1",'
    b'"Index":35,"Model":"nexus4","User":"g","gt":"stand","x":0.0014038086,"y":5.0354E-4,'
    b'"z":-0.0124053955}'
)


def expected(event: SensorEvent, shift_ms: int, device: str) -> SensorEvent:
    return event.model_copy(
        update={
            "arrival_time": event.arrival_time + shift_ms,
            "creation_time": event.creation_time + shift_ms * 1_000_000,
            "device": device,
        }
    )


def test_virtual_device_names() -> None:
    assert virtual_devices("nexus4_1", 1) == ("nexus4_1",)
    assert virtual_devices("nexus4_1", 3) == ("nexus4_1", "nexus4_1-v2", "nexus4_1-v3")


def test_a_shift_edits_only_the_times_and_keeps_the_other_bytes() -> None:
    event = parse_event(LINE)
    [value] = rewrite_event(LINE, dict(event), 1000, ("nexus4_1",))
    assert value == LINE.replace(b"1424686735175", b"1424686736175").replace(
        b"1424686733176178965", b"1424686734176178965"
    )
    assert parse_event(value) == expected(event, 1000, "nexus4_1")


@given(
    shift_ms=st.integers(min_value=0, max_value=10**12),
    devices=st.integers(min_value=1, max_value=4),
    spaced=st.booleans(),
)
def test_rewritten_lines_are_the_shifted_events(shift_ms: int, devices: int, spaced: bool) -> None:
    line = json.dumps(json.loads(LINE)).encode() if spaced else LINE
    event = parse_event(line)
    names = virtual_devices(event.device, devices)
    values = rewrite_event(line, dict(event), shift_ms, names)
    assert [parse_event(value) for value in values] == [
        expected(event, shift_ms, name) for name in names
    ]
