"""The original UCI HHAR CSV layout as a replay source.

The UCI files (``Phones_gyroscope.csv`` and friends) hold one reading per line as
``Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt``, with or without that header;
some copies are tab-separated. A spreadsheet that saved a copy turned the 19-digit
``Creation_Time`` into ``1.42469663191404E+018``: the digits are lost, so such a row is rejected
with a reason that says so rather than rounded back into a wrong integer.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from pydantic import ValidationError

from hhar_stream.schemas import SensorEvent, describe_validation_error

UCI_COLUMNS: tuple[str, ...] = (
    "Index",
    "Arrival_Time",
    "Creation_Time",
    "x",
    "y",
    "z",
    "User",
    "Model",
    "Device",
    "gt",
)
"""The columns of the UCI HHAR CSV files, in their order (the event's wire names)."""

_INTEGER_COLUMNS = frozenset({"Index", "Arrival_Time", "Creation_Time"})
_FLOAT_COLUMNS = frozenset({"x", "y", "z"})
_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE = frozenset({"nan", "inf", "infinity"})


class InvalidRowError(ValueError):
    """A CSV row that is not a valid `SensorEvent`; its message is the reason."""


@dataclass(frozen=True)
class UciLayout:
    """How one UCI file is written: its delimiter, its column order and whether it has a header."""

    delimiter: str
    columns: tuple[str, ...]
    has_header: bool

    @classmethod
    def detect(cls, first_line: str) -> UciLayout:
        """The layout of a file from its first line (a header or the first row).

        Raises:
            InvalidRowError: when the first line is a header that is not the UCI layout.
        """
        delimiter = "\t" if "\t" in first_line else ","
        fields = [field.strip() for field in next(csv.reader([first_line], delimiter=delimiter))]
        if not {"Index", "Arrival_Time"} & set(fields):
            return cls(delimiter, UCI_COLUMNS, has_header=False)
        if sorted(fields) != sorted(UCI_COLUMNS):
            msg = f"the header {','.join(fields)} is not the UCI layout {','.join(UCI_COLUMNS)}"
            raise InvalidRowError(msg)
        return cls(delimiter, tuple(fields), has_header=True)


def parse_uci_line(line: str, layout: UciLayout) -> SensorEvent:
    """Parse and validate one UCI CSV data line.

    Raises:
        InvalidRowError: with a one-line reason, e.g. ``Creation_Time: '1.42469663191404E+018'
            is in scientific notation: its digits were rounded (by a spreadsheet?)``.
    """
    fields = next(csv.reader([line], delimiter=layout.delimiter), [])
    if len(fields) != len(layout.columns):
        msg = f"expected {len(layout.columns)} fields, found {len(fields)}"
        raise InvalidRowError(msg)
    values: dict[str, object] = {}
    for column, text in zip(layout.columns, fields, strict=True):
        text = text.strip()
        if column in _INTEGER_COLUMNS:
            values[column] = _integer(column, text)
        elif column in _FLOAT_COLUMNS:
            values[column] = _decimal(column, text)
        else:
            values[column] = text
    try:
        return SensorEvent.model_validate(values)
    except ValidationError as error:
        raise InvalidRowError(describe_validation_error(error)) from None


def _integer(column: str, text: str) -> int:
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text) and "e" in text.lower():
        msg = (
            f"{column}: {text!r} is in scientific notation: its digits were rounded "
            f"(by a spreadsheet?), so the integer is lost"
        )
    else:
        msg = f"{column}: {text!r} is not an integer"
    raise InvalidRowError(msg)


def _decimal(column: str, text: str) -> float:
    if _DECIMAL.fullmatch(text):
        return float(text)
    if text.lower().lstrip("+-") in _NON_FINITE:
        msg = f"{column}: {text!r} is not a finite number"
    else:
        msg = f"{column}: {text!r} is not a number"
    raise InvalidRowError(msg)
