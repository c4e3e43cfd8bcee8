"""A catalogue of malformed and edge-case input lines, each with what the producer must do
with it: send it as an event (``VALID``), dead-letter it (``INVALID``) or skip it (``BLANK``).

Each mutation turns a valid event (a dict of wire names) and a `random.Random` into the bytes
of one line (without its line terminator), its kind and, for a valid line, the event it
carries. The same catalogue feeds hypothesis (which draws the event, the mutation and the
random seed) and the seeded generator of the file that is replayed into the real broker.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from hhar_stream.schemas import ACTIVITY_LABELS
from hhar_stream.schemas.events import MAX_EPOCH_MILLIS

VALID, INVALID, BLANK = "valid", "invalid", "blank"
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
NAME_FIELDS = ("Device", "Model", "User")
FIELDS = ("Arrival_Time", "Creation_Time", "Device", "Index", "Model", "User", "gt", "x", "y", "z")

Event = dict[str, Any]
Line = tuple[bytes, str, Event | None]
"""(line bytes without terminator, kind, the event of a valid line)."""


def dump(event: Event, ascii_only: bool = False) -> bytes:
    """One compact JSON line."""
    return json.dumps(event, ensure_ascii=ascii_only, separators=(",", ":")).encode()


def _with_raw(event: Event, field: str, raw: str) -> bytes:
    """The event's line with `field`'s value replaced by raw JSON text (NaN, 1e400...)."""
    marker = "@@raw@@"
    return dump(event | {field: marker}).replace(f'"{marker}"'.encode(), raw.encode())


def _unicode_name(rng: random.Random) -> str:
    """1 to 64 characters from all over Unicode (no surrogates; controls are escaped)."""
    planes = [
        (0x20, 0x7E),
        (0xA0, 0x2FF),
        (0x370, 0x52F),
        (0x4E00, 0x9FFF),
        (0x1F300, 0x1FAFF),
        (0x0, 0x1F),
        (0x2028, 0x2029),
        (0xFEFF, 0xFEFF),
    ]
    characters = []
    for _ in range(rng.randint(1, 64)):
        low, high = rng.choice(planes)
        characters.append(chr(rng.randint(low, high)))
    return "".join(characters)


_NOT_A_BREAK = [byte for byte in range(256) if byte not in (10, 13)]


MUTATIONS: dict[str, Callable[[Event, random.Random], Line]] = {}
"""Every kind of line, by name."""


def mutation(name: str) -> Callable:
    """Register a mutation under `name`."""

    def register(function: Callable[[Event, random.Random], Line]) -> Callable:
        MUTATIONS[name] = function
        return function

    return register


def _valid(event: Event, line: bytes | None = None) -> Line:
    return (dump(event) if line is None else line), VALID, event


def _invalid(line: bytes) -> Line:
    return line, INVALID, None


@mutation("valid")
def _as_is(e: Event, r: random.Random) -> Line:
    return _valid(e)


@mutation("valid, \\u escapes")
def _escaped(e: Event, r: random.Random) -> Line:
    return _valid(e, dump(e, ascii_only=True))


@mutation("valid, spaces")
def _spaced(e: Event, r: random.Random) -> Line:
    return _valid(e, json.dumps(e).encode())


@mutation("valid, unicode names")
def _unicode(e: Event, r: random.Random) -> Line:
    return _valid(e | {name: _unicode_name(r) for name in NAME_FIELDS})


@mutation("valid, blanks around")
def _blanks_around(e: Event, r: random.Random) -> Line:
    return _valid(e, b" \t " + dump(e) + b"  \t")


@mutation("valid, extreme values")
def _extremes(e: Event, r: random.Random) -> Line:
    return _valid(
        e
        | {
            "Arrival_Time": 0,
            "Index": LONG_MAX,
            "Creation_Time": LONG_MIN,
            "x": 1.7976931348623157e308,
            "y": -5e-324,
            "z": -0.0,
        }
    )


@mutation("valid, integer readings")
def _integer_readings(e: Event, r: random.Random) -> Line:
    return _valid(e | {"x": r.randint(-5, 5), "y": 0, "z": 10**15})


@mutation("truncated")
def _truncated(e: Event, r: random.Random) -> Line:
    line = dump(e)
    return _invalid(line[: r.randrange(1, len(line))])


@mutation("NaN")
def _nan(e: Event, r: random.Random) -> Line:
    return _invalid(_with_raw(e, r.choice("xyz"), "NaN"))


@mutation("Infinity")
def _infinity(e: Event, r: random.Random) -> Line:
    return _invalid(_with_raw(e, r.choice("xyz"), r.choice(["Infinity", "-Infinity"])))


@mutation("a double beyond 1e308")
def _huge_double(e: Event, r: random.Random) -> Line:
    return _invalid(_with_raw(e, r.choice("xyz"), f"{r.randint(2, 9)}e{r.randint(309, 999)}"))


@mutation("a 20-digit time")
def _twenty_digits(e: Event, r: random.Random) -> Line:
    field = r.choice(["Arrival_Time", "Creation_Time"])
    return _invalid(_with_raw(e, field, str(r.randint(10**19, 10**20 - 1))))


@mutation("an Arrival_Time after 9999")
def _beyond_spark(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {"Arrival_Time": r.randint(MAX_EPOCH_MILLIS + 1, LONG_MAX)}))


@mutation("an integer beyond a long")
def _huge_integer(e: Event, r: random.Random) -> Line:
    return _invalid(_with_raw(e, "Index", str(LONG_MAX + r.randint(1, 10**30))))


@mutation("a negative Index")
def _negative(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {"Index": -r.randint(1, 10**9)}))


@mutation("a fraction for an integer")
def _fraction(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {r.choice(["Index", "Arrival_Time"]): r.randint(0, 999) + 0.5}))


@mutation("a string for a number")
def _string_number(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {r.choice(["x", "y", "z", "Index"]): "5"}))


@mutation("a number for a string")
def _number_string(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {r.choice([*NAME_FIELDS, "gt"]): 4}))


@mutation("a boolean for an integer")
def _boolean(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {"Index": True}))


@mutation("an unknown activity")
def _unknown_activity(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {"gt": r.choice(["run", "Sit", "", "stairs"])}))


@mutation("an empty name")
def _empty_name(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {r.choice(NAME_FIELDS): ""}))


@mutation("a 65-character name")
def _long_name(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {r.choice(NAME_FIELDS): "\u00e9" * 65}))


@mutation("an extra field")
def _extra(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {r.choice(["Extra", "X", "ARRIVAL_TIME"]): r.randint(0, 9)}))


@mutation("a missing field")
def _missing(e: Event, r: random.Random) -> Line:
    gone = r.choice(FIELDS)
    return _invalid(dump({name: value for name, value in e.items() if name != gone}))


@mutation("a null field")
def _null(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e | {r.choice(FIELDS): None}))


@mutation("a JSON array")
def _array(e: Event, r: random.Random) -> Line:
    return _invalid(b"[" + dump(e) + b"]")


@mutation("a nested event")
def _nested(e: Event, r: random.Random) -> Line:
    return _invalid(dump({"event": e}))


@mutation("text after the object")
def _trailing_text(e: Event, r: random.Random) -> Line:
    return _invalid(dump(e) + r.choice([b" trailing", b"}", b",", b"{}"]))


@mutation("a BOM inside the file")
def _inner_bom(e: Event, r: random.Random) -> Line:
    return _invalid(b"\xef\xbb\xbf" + dump(e))


@mutation("invalid UTF-8")
def _bad_utf8(e: Event, r: random.Random) -> Line:
    bad = r.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28"])
    return _invalid(dump(e | {r.choice(NAME_FIELDS): "@@"}).replace(b"@@", bad))


@mutation("a lone surrogate escape")
def _lone_surrogate(e: Event, r: random.Random) -> Line:
    escape = r.choice([b"\\ud800", b"\\udfff", b"x\\ud83d"])
    return _invalid(dump(e | {r.choice(NAME_FIELDS): "@@"}).replace(b"@@", escape))


@mutation("random bytes")
def _random_bytes(e: Event, r: random.Random) -> Line:
    line = bytes(r.choice(_NOT_A_BREAK) for _ in range(r.randint(1, 80)))
    return line, (BLANK if not line.strip() else INVALID), None


@mutation("an empty line")
def _empty(e: Event, r: random.Random) -> Line:
    return b"", BLANK, None


@mutation("a line of blanks")
def _blanks(e: Event, r: random.Random) -> Line:
    return r.choice([b" ", b"\t", b"  \t  "]), BLANK, None


LATEST_ARRIVAL_MS = 1_700_000_000_000
"""2023-11-14: Kafka 4 brokers refuse record timestamps more than an hour ahead of their
clock, and the producer stamps each record with its Arrival_Time (see
test_fuzzed_sources.test_a_row_from_the_future_does_not_end_the_replay)."""


def random_event(rng: random.Random) -> Event:
    """A valid event with values from anywhere in their ranges (Arrival_Time: in the past)."""
    return {
        "Arrival_Time": rng.randint(0, LATEST_ARRIVAL_MS),
        "Creation_Time": rng.randint(LONG_MIN, LONG_MAX),
        "Device": rng.choice(["nexus4_1", "nexus4_2", "s3_1", "gear_2"]),
        "Index": rng.randint(0, LONG_MAX),
        "Model": rng.choice(["nexus4", "s3", "gear"]),
        "User": rng.choice("abcdefghi"),
        "gt": rng.choice(ACTIVITY_LABELS),
        "x": rng.uniform(-1e3, 1e3),
        "y": rng.gauss(0, 1),
        "z": rng.choice([0.0, 1e-300, -2.5]),
    }


names = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=64)
events = st.fixed_dictionaries(
    {
        "Arrival_Time": st.integers(0, MAX_EPOCH_MILLIS),
        "Creation_Time": st.integers(LONG_MIN, LONG_MAX),
        "Device": names,
        "Index": st.integers(0, LONG_MAX),
        "Model": names,
        "User": names,
        "gt": st.sampled_from(ACTIVITY_LABELS),
        "x": st.floats(allow_nan=False, allow_infinity=False),
        "y": st.floats(allow_nan=False, allow_infinity=False),
        "z": st.floats(allow_nan=False, allow_infinity=False),
    }
)
"""Valid events: any values the model accepts (Arrival_Time up to 9999-12-31)."""

lines = st.builds(
    lambda mutation, event, seed: MUTATIONS[mutation](event, random.Random(seed)),
    st.sampled_from(sorted(MUTATIONS)),
    events,
    st.integers(0, 2**32),
)
"""One line of any kind of the catalogue."""


def generated_lines(rng: random.Random, count: int) -> list[Line]:
    """`count` lines, half of them valid, the rest spread over every other mutation."""
    others = [name for name in MUTATIONS if name != "valid"]
    return [
        MUTATIONS["valid" if rng.random() < 0.5 else rng.choice(others)](random_event(rng), rng)
        for _ in range(count)
    ]
