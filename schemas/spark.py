"""Spark schemas derived from the pydantic models: never a hand-written field list."""

from __future__ import annotations

import datetime as dt
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

_SCALARS: dict[Any, DataType] = {
    bool: BooleanType(),
    int: LongType(),
    float: DoubleType(),
    str: StringType(),
    dt.datetime: TimestampType(),
}


def _spark_type(annotation: Any) -> DataType:
    origin = get_origin(annotation)
    if origin is Literal:
        kinds = {type(arg) for arg in get_args(annotation)}
        if len(kinds) != 1:
            msg = f"a Literal of mixed types has no Spark type: {annotation!r}"
            raise TypeError(msg)
        return _spark_type(kinds.pop())
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) != 1:
            msg = f"a union of several types has no Spark type: {annotation!r}"
            raise TypeError(msg)
        return _spark_type(members[0])
    if origin in (list, tuple):
        return ArrayType(_spark_type(get_args(annotation)[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return to_spark_schema(annotation)
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    msg = f"no Spark type for {annotation!r}"
    raise TypeError(msg)


def to_spark_schema(model: type[BaseModel]) -> StructType:
    """Derive the Spark `StructType` of a pydantic model.

    Columns are the fields' wire names (aliases) in declaration order; every column is
    nullable, as Spark's JSON reader and ``from_json`` make them.
    """
    return StructType(
        [
            StructField(field.alias or name, _spark_type(field.annotation), nullable=True)
            for name, field in model.model_fields.items()
        ]
    )
