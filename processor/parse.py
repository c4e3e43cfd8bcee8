"""From raw messages to events: parse with the schema derived from `SensorEvent`, and set aside
what does not fit, by the same rules `SensorEvent` enforces.

`parse_events` works on anything with a ``value`` column (Kafka's binary value, or the text
lines of ``spark.read.text``), so the stream and a static history share one set of rules. A
row is bad when its value is not UTF-8 text, not one JSON object, lacks a field or has an extra
one, has a value of the wrong type (a string field given a number, an integer given a fraction,
...), or breaks a constraint: a negative Index, an Arrival_Time before 1970 or past the last
instant Spark's timestamps hold, an empty or over-long name, a gt outside the label set, or a
non-finite x, y or z.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal, get_args, get_origin

from annotated_types import Ge, Le, MaxLen, MinLen
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DoubleType, LongType, StringType

from ..schemas import SensorEvent
from ..schemas.events import LONG_MAX, LONG_MIN
from ..schemas.results import BadRecord
from ..schemas.spark import to_spark_schema

EVENT_SCHEMA = to_spark_schema(SensorEvent)
EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.fieldNames())

REASON_COLUMN = "reason"
"""Column of `parse_events` that explains a bad row (null for a valid event)."""

_TEXT = "_value_text"
_PARSED = "_event"


def _constraints(name: str) -> list[tuple[Column, str]]:
    """Checks (and reasons) of one field's constraints beyond its Spark type."""
    field = next(
        field for attr, field in SensorEvent.model_fields.items() if (field.alias or attr) == name
    )
    column = F.col(f"{_PARSED}.{name}")
    checks = []
    for item in field.metadata:
        # Bounds are numbers (annotated-types only knows they compare); the natural ones of a
        # LongType need no check.
        if isinstance(item, Ge) and isinstance(item.ge, int | float) and item.ge > LONG_MIN:
            checks.append((column < F.lit(item.ge), f"{name}: must be >= {item.ge}"))
        elif isinstance(item, Le) and isinstance(item.le, int | float) and item.le < LONG_MAX:
            checks.append((column > F.lit(item.le), f"{name}: must be <= {item.le}"))
        elif isinstance(item, MinLen):
            text = f"{name}: shorter than {item.min_length} characters"
            checks.append((F.length(column) < item.min_length, text))
        elif isinstance(item, MaxLen):
            text = f"{name}: longer than {item.max_length} characters"
            checks.append((F.length(column) > item.max_length, text))
        elif getattr(item, "allow_inf_nan", True) is False:
            infinite = column.isin(float("inf"), float("-inf"))
            checks.append((F.isnan(column) | infinite, f"{name}: not a finite number"))
    if get_origin(field.annotation) is Literal:
        labels = get_args(field.annotation)
        checks.append((~column.isin(*labels), f"{name}: not one of {', '.join(labels)}"))
    return checks


def _json_type_mismatch(name: str) -> Column:
    """True when a string field holds a JSON number, boolean, array or object.

    ``from_json`` turns any JSON value into text for a string column, while `SensorEvent`
    accepts only JSON strings there.
    """
    return ~F.col(_TEXT).rlike(f'"{name}"\\s*:\\s*"')


def _may_be_mistyped(name: str) -> Column:
    """Cheap test: could the text of string field `name` come from a non-string JSON value?

    Spark's JSON reader also takes NaN and Infinity (written back as quoted text).
    """
    text = F.col(f"{_PARSED}.{name}")
    first = F.substring(text, 1, 1)
    return text.isin("true", "false", "NaN", "Infinity") | first.isin(
        "-", "+", "{", "[", '"', *"0123456789"
    )


_QUOTES = 2 * len(EVENT_COLUMNS) + 2 * sum(
    EVENT_SCHEMA[name].dataType == StringType() for name in EVENT_COLUMNS
)
"""Double quotes of an event without escapes: each key and each string value has two."""


def _looks_valid() -> Column:
    """A cheap test that passes only rows that break no rule, most rows in practice.

    Only rows it rejects pay for `_first_broken_rule`'s second JSON parse (the keys), regular
    expressions and set differences, which name the problem. Without a backslash or a single
    quote every double quote delimits a string; with every field present (from_json found each
    key, the string fields hold strings) exactly `_QUOTES` of them leave no room for another
    key.
    """
    text = F.col(_TEXT)
    unquoted = F.replace(text, F.lit('"'), F.lit(""))
    condition = (
        F.is_valid_utf8(text)
        & ~text.contains("\\")
        & ~text.contains("'")  # Spark's JSON reader also takes single-quoted strings
        & (F.octet_length(text) - F.octet_length(unquoted) == _QUOTES)
        & text.endswith("}")
    )
    for name in EVENT_COLUMNS:
        condition = condition & F.col(f"{_PARSED}.{name}").isNotNull()
        if EVENT_SCHEMA[name].dataType == StringType():
            condition = condition & ~_may_be_mistyped(name)
        for failed, _ in _constraints(name):
            condition = condition & ~failed
    return condition


def _first_broken_rule() -> Column:
    """The first rule a row breaks, or null when it breaks none."""
    keys = F.json_object_keys(F.col(_TEXT))
    checks: list[tuple[Column, Column | str]] = [
        # Spark's cast keeps the bytes; only Python's decoding would hide them behind U+FFFD.
        (~F.is_valid_utf8(F.col(_TEXT)), "not UTF-8 text"),
        (keys.isNull(), "not a JSON object"),
        # from_json ignores what follows the first JSON value; SensorEvent does not.
        (~F.col(_TEXT).rlike("}\\s*$"), "text after the JSON object"),
    ]
    wire = F.array(*(F.lit(name) for name in EVENT_COLUMNS))
    missing = F.array_except(wire, keys)
    extra = F.array_except(keys, wire)
    checks.append((F.size(missing) > 0, F.concat(F.lit("missing: "), F.array_join(missing, ", "))))
    checks.append((F.size(extra) > 0, F.concat(F.lit("unexpected: "), F.array_join(extra, ", "))))
    for name in EVENT_COLUMNS:
        kind = EVENT_SCHEMA[name].dataType
        type_name: dict[DataType, str] = {
            LongType(): "an integer",
            DoubleType(): "a number",
            StringType(): "a string",
        }
        wrong = F.col(f"{_PARSED}.{name}").isNull()
        if kind == StringType():
            wrong = wrong | _json_type_mismatch(name)
        checks.append((wrong, f"{name}: null or not {type_name[kind]}"))
    for name in EVENT_COLUMNS:
        checks.extend(_constraints(name))
    reason = F.lit(None).cast(StringType())
    for failed, text in reversed(checks):
        reason = F.when(failed, F.lit(text) if isinstance(text, str) else text).otherwise(reason)
    return reason


def _reason() -> Column:
    """Null for a valid event, else the first rule the row breaks."""
    return F.when(_looks_valid(), F.lit(None).cast(StringType())).otherwise(_first_broken_rule())


def parse_events(raw: DataFrame) -> DataFrame:
    """Parse the ``value`` column of `raw` into the event columns, plus `REASON_COLUMN`.

    Every other column of `raw` (Kafka's partition, offset, timestamp, ...) is kept, then the
    event columns in `SensorEvent`'s order (null where the value did not parse), then the
    reason a row is bad (null for a valid event). Pure: works on static and streaming data.
    """
    text = F.col("value").cast("string")
    kept = [name for name in raw.columns if name != "value"]
    return raw.select(
        *kept,
        text.alias(_TEXT),
        F.from_json(text, EVENT_SCHEMA).alias(_PARSED),
    ).select(
        *kept,
        F.col(_TEXT).alias("value"),
        *(F.col(f"{_PARSED}.{name}").alias(name) for name in EVENT_COLUMNS),
        _reason().alias(REASON_COLUMN),
    )


def valid_events(parsed: DataFrame, keep: Sequence[str] = ()) -> DataFrame:
    """The valid rows of `parse_events`, with exactly the event columns (then the columns of
    `keep`, such as Kafka's ``partition``, ``offset`` and ``timestamp``)."""
    return parsed.where(F.col(REASON_COLUMN).isNull()).select(*EVENT_COLUMNS, *keep)


def _max_length(name: str) -> int:
    """The maximum length `BadRecord` allows field `name`."""
    return next(
        item.max_length
        for item in BadRecord.model_fields[name].metadata
        if isinstance(item, MaxLen)
    )


def bad_record_columns(available: Collection[str]) -> dict[str, Column]:
    """The columns of a `BadRecord` row of `parse_events`' rows, by name (partition, offset and
    timestamp as far as the `available` columns have them): the reason, the beginning of the
    value text (invalid UTF-8 replaced by U+FFFD), its size in bytes and whether it was cut."""
    text = F.make_valid_utf8(F.col("value"))
    keep = _max_length("value")
    return {
        **{name: F.col(name) for name in ("partition", "offset", "timestamp") if name in available},
        REASON_COLUMN: F.substring(REASON_COLUMN, 1, _max_length("reason")),
        "value": F.substring(text, 1, keep),
        "value_bytes": F.octet_length("value"),
        "value_truncated": F.coalesce(F.length(text) > keep, F.lit(False)),
    }


def invalid_records(parsed: DataFrame) -> DataFrame:
    """The bad rows of `parse_events` as `BadRecord` rows (`bad_record_columns`)."""
    columns = bad_record_columns(parsed.columns)
    return parsed.where(F.col(REASON_COLUMN).isNotNull()).select(
        *(column.alias(name) for name, column in columns.items())
    )


def count_parse_outcomes(parsed: DataFrame, name: str = "parse") -> DataFrame:
    """Attach observed metrics ``rows`` and ``bad`` to `parsed` (shown in streaming progress)."""
    return parsed.observe(
        name,
        F.count(F.lit(1)).alias("rows"),
        F.count(F.col(REASON_COLUMN)).alias("bad"),
    )
