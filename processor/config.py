"""The processor's reading of its settings: which queries, which sinks, which durations."""

from __future__ import annotations

import re

from ..errors import ConfigError
from ..options import env_var

QUERY_NAMES: tuple[str, ...] = (
    "total_count",
    "device_activity",
    "device_activity_cube",
    "device_activity_rollup",
    "stairs_by_user",
    "activity_stats",
    "live_vs_historical",
    "windowed_activity",
)
"""The queries `hhar process` can run, in the order they are started and shown."""

BAD_RECORDS = "bad_records"
"""The side output that keeps the messages that are not valid events; it always runs."""

SINKS: tuple[str, ...] = ("kafka", "memory", "console")

_UNITS = {
    "ms": "millisecond", "millisecond": "millisecond", "milliseconds": "millisecond",
    "s": "second", "sec": "second", "second": "second", "seconds": "second",
    "m": "minute", "min": "minute", "minute": "minute", "minutes": "minute",
    "h": "hour", "hour": "hour", "hours": "hour",
    "d": "day", "day": "day", "days": "day",
}
_UNIT_MS = {
    "millisecond": 1, "second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000,
}
_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")


def select_queries(spec: str) -> list[str]:
    """The queries named by `spec`: ``all``, a comma-separated list, and ``-name`` exclusions.

    ``all,-live_vs_historical`` is every query but one. Raises `ConfigError` for unknown names
    or an empty selection.
    """
    chosen: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name = item.removeprefix("-")
        if name != "all" and name not in QUERY_NAMES:
            msg = (
                f"unknown query {name!r} in queries ({env_var('queries')}): "
                f"choose all or any of {', '.join(QUERY_NAMES)}"
            )
            raise ConfigError(msg)
        names = QUERY_NAMES if name == "all" else (name,)
        if item.startswith("-"):
            chosen = [query for query in chosen if query not in names]
        else:
            chosen += [query for query in names if query not in chosen]
    if not chosen:
        msg = f"no query selected by queries={spec!r} ({env_var('queries')})"
        raise ConfigError(msg)
    return [name for name in QUERY_NAMES if name in chosen]


def select_sinks(spec: str) -> list[str]:
    """The sinks named by a comma-separated `spec` (kafka, memory, console)."""
    chosen = [item.strip() for item in spec.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in SINKS]
    if unknown or not chosen:
        msg = (
            f"invalid sink {', '.join(unknown) or spec!r} ({env_var('sink')}): "
            f"choose any of {', '.join(SINKS)}"
        )
        raise ConfigError(msg)
    return [sink for sink in SINKS if sink in chosen]


def spark_interval(text: str, field: str) -> str:
    """Spark's spelling of a duration given as ``1s``, ``500ms``, ``10 minutes``, ...

    Raises `ConfigError` naming `field` when `text` is not a positive duration.
    """
    match = _INTERVAL.match(text.lower())
    unit = _UNITS.get(match.group(2)) if match else None
    if not match or unit is None or float(match.group(1)) <= 0:
        msg = f"{field} ({env_var(field)}) {text!r} is not a duration such as 1s, 500ms, 10 minutes"
        raise ConfigError(msg)
    amount = float(match.group(1))
    if amount.is_integer():
        count = int(amount)
        return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{round(amount * _UNIT_MS[unit])} milliseconds"


def name_list(text: str, field: str) -> list[str]:
    """The non-empty items of a comma-separated setting."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        msg = f"{field} ({env_var(field)}) names nothing"
        raise ConfigError(msg)
    return items
