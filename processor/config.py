"""The processor's reading of its settings: which queries, which sinks, which durations."""

from __future__ import annotations

import re

from ..errors import ConfigError
from ..options import env_var

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


def _duration(text: str, field: str) -> tuple[float, str]:
    match = _INTERVAL.match(text.lower())
    unit = _UNITS.get(match.group(2)) if match else None
    if not match or unit is None or float(match.group(1)) <= 0:
        msg = f"{field} ({env_var(field)}) {text!r} is not a duration such as 1s, 500ms, 10 minutes"
        raise ConfigError(msg)
    return float(match.group(1)), unit


def interval_ms(text: str, field: str) -> int:
    """A duration given as ``1s``, ``500ms``, ``10 minutes``, ... in milliseconds.

    Raises `ConfigError` naming `field` when `text` is not a positive duration.
    """
    amount, unit = _duration(text, field)
    return round(amount * _UNIT_MS[unit])


def spark_interval(text: str, field: str) -> str:
    """Spark's spelling of a duration given as ``1s``, ``500ms``, ``10 minutes``, ...

    Raises `ConfigError` naming `field` when `text` is not a positive duration.
    """
    amount, unit = _duration(text, field)
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
