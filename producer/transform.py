"""Simulation extras that change an event on its way out: time shifts and virtual devices.

A shifted or fanned-out event is written by editing the original JSON line in place (the
``"Arrival_Time":<digits>`` and ``"Device":"<name>"`` tokens of a valid row are unambiguous),
which keeps every other byte as recorded and is far cheaper than serialising the event again;
a line written differently (with spaces, escapes) falls back to `SensorEvent.to_json`.
"""

from __future__ import annotations

import json

from hhar_stream.schemas import SensorEvent

from .sources import EventFields

NANOS_PER_MILLI = 1_000_000


def virtual_devices(device: str, count: int) -> tuple[str, ...]:
    """The names of `count` virtual devices for one recorded device: itself, then ``-v2``..."""
    return (device, *(f"{device}-v{number}" for number in range(2, count + 1)))


def _token(name: str, value: int | str) -> bytes:
    return f'"{name}":{json.dumps(value, ensure_ascii=False)}'.encode()


def rewrite_event(
    payload: bytes, event: EventFields, shift_ms: int, devices: tuple[str, ...]
) -> list[bytes]:
    """One JSON line per virtual device, times shifted by `shift_ms` (Creation_Time too).

    Args:
        payload: the event's JSON line as read.
        event: the validated fields of that line (`sources.Row`).
        shift_ms: milliseconds to add to ``Arrival_Time`` (and, as nanoseconds, to
            ``Creation_Time``), keeping the gaps between events.
        devices: the ``Device`` value of each copy (`virtual_devices`).
    """
    arrival = event["arrival_time"] + shift_ms
    creation = event["creation_time"] + shift_ms * NANOS_PER_MILLI
    value = payload
    if shift_ms:
        for name, old, new in (
            ("Arrival_Time", event["arrival_time"], arrival),
            ("Creation_Time", event["creation_time"], creation),
        ):
            token = _token(name, old)
            if token not in value:
                return _serialised(event, arrival, creation, devices)
            value = value.replace(token, _token(name, new), 1)
    if devices == (event["device"],):
        return [value]
    token = _token("Device", event["device"])
    if token not in value:
        return _serialised(event, arrival, creation, devices)
    return [value.replace(token, _token("Device", device), 1) for device in devices]


def _serialised(
    event: EventFields, arrival: int, creation: int, devices: tuple[str, ...]
) -> list[bytes]:
    shifted = event | {"arrival_time": arrival, "creation_time": creation}
    return [
        SensorEvent.model_validate(shifted | {"device": device}).to_json().encode()
        for device in devices
    ]
