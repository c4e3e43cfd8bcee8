"""Named continuous queries as records: what the processor publishes about each one it runs.

A user's named query (``CREATE QUERY name AS SELECT ...`` in a SQL file, `processor.sql`) is
described by a `QueryDefinition`: its name, SQL, description, Spark's output mode, the key
columns and the columns of its rows with their Spark types, its result topic. The processor
publishes the definitions of the queries it runs to a compacted topic
(``Settings.query_definitions_topic``, key = the query's name, value = the definition as JSON;
a null value when the processor no longer runs it), so that views in other processes and on
other machines (`hhar watch`, the dashboard, `hhar queries`) learn what they read.

The rows themselves are result records like the built-in ones (`results.ResultRecord`: the
envelope ``query``, ``batch_id``, then the row): `QueryDefinition.record_model` makes their
pydantic model from the columns, so that one definition gives the same model everywhere.
"""

from __future__ import annotations

import datetime as dt
import functools
import keyword
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from .results import ENVELOPE_FIELDS, ResultRecord

OutputMode = Literal["complete", "update", "append"]

_INTEGERS = ("bigint", "int", "smallint", "tinyint")
_FRACTIONS = ("double", "float")
_SCALAR_TYPES: dict[str, Any] = {
    **dict.fromkeys(_INTEGERS, int),
    **dict.fromkeys(_FRACTIONS, float),
    "string": str,
    "boolean": bool,
    "timestamp": dt.datetime,
    "timestamp_ntz": dt.datetime,
    "date": dt.date,
    "binary": str,
}
"""Python types of Spark's scalar types (as ``DataType.simpleString`` spells them)."""


def python_type(spark_type: str) -> Any:
    """The Python type of a column of Spark type `spark_type` (``simpleString``) in a result
    record: integers int, fractions and decimals float, text (and binary, which JSON writes as
    base64 text) str, timestamps datetime, dates date; structs, arrays and maps any JSON value."""
    if spark_type.startswith(("decimal", "varchar", "char")):
        return float if spark_type.startswith("decimal") else str
    return _SCALAR_TYPES.get(spark_type, Any)


def is_number(spark_type: str) -> bool:
    """True for the Spark types whose values are numbers."""
    return python_type(spark_type) in (int, float)


class QueryColumn(BaseModel):
    """One column of a named query's rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="the column's name, as in the rows' JSON")
    type: str = Field(description="Spark's type, as simpleString spells it (bigint, double...)")
    nullable: bool = Field(description="whether Spark says the column may hold null")


_BASE_ATTRIBUTES = frozenset(dir(ResultRecord))
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _field_name(column: str, position: int) -> str:
    """A Python attribute name for `column`: the name itself where it can be one."""
    if (
        _IDENTIFIER.match(column)
        and not keyword.iskeyword(column)
        and not column.startswith("model_")
        and column not in _BASE_ATTRIBUTES
    ):
        return column
    return f"column_{position}"


class QueryDefinition(BaseModel):
    """A named continuous query as the processor runs it: one record of the definitions topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="the query's name (its result topic's suffix)")
    sql: str = Field(description="the SELECT statement, as written")
    description: str = Field("", description="the -- comments before the statement")
    source: str = Field("", description="where the statement was read: file and line")
    output_mode: OutputMode = Field(description="Spark's output mode, from the statement")
    key_columns: tuple[str, ...] = Field(
        description="the columns whose values form a row's Kafka key (the grouping columns)"
    )
    columns: tuple[QueryColumn, ...] = Field(description="the columns of the rows, in order")
    window_end: str | None = Field(
        None,
        description="EMIT FINAL: the column that holds the end of the row's event-time window "
        "(or the window itself): the row is final once the watermark has passed it",
    )
    topic: str = Field(description="the result topic")
    fingerprint: str = Field(description="hash of the SQL with comments and spacing removed")

    def column_types(self) -> dict[str, str]:
        """Spark's type of each column, by name."""
        return {column.name: column.type for column in self.columns}

    def record_model(self) -> type[ResultRecord]:
        """The pydantic model of the query's result records (the same for equal definitions)."""
        return record_model(self.name, self.columns, self.key_columns)


@functools.lru_cache(maxsize=256)
def record_model(
    name: str, columns: tuple[QueryColumn, ...], key_columns: tuple[str, ...]
) -> type[ResultRecord]:
    """The pydantic model of the result records of query `name`: the envelope, then `columns`
    (wire names as aliases, typed by `python_type`, None allowed where Spark allows null);
    `key_columns` form the Kafka key."""
    fields: dict[str, Any] = {}
    for position, column in enumerate(columns):
        kind = python_type(column.type)
        annotation = kind | None if column.nullable and kind is not Any else kind
        fields[_field_name(column.name, position)] = (annotation, Field(alias=column.name))
    model: type[ResultRecord] = create_model(
        f"NamedQuery_{name}",
        __base__=ResultRecord,
        __doc__=f"A row of the named query {name}.",
        **fields,
    )
    model.key_fields = key_columns
    return model


def envelope_clash(columns: list[str]) -> str | None:
    """The first of `columns` named like a field of the envelope every result carries."""
    return next((column for column in columns if column in ENVELOPE_FIELDS), None)
