"""`SensorEvent`: one HHAR reading, the single source of truth for the event layout.

The field order and wire names are those of the definitive-guide activity-data files
(Spark's alphabetical schema order). The Spark schema (`hhar_stream.schemas.spark`) and the JSON
Schema file are derived from this model; nothing else restates the field list.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import SchemaValidator, core_schema

from .javafmt import java_double

LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1

ActivityLabel = Literal["stand", "sit", "walk", "bike", "stairsup", "stairsdown", "null"]
"""The ground-truth labels; the unlabelled class is the *string* "null", as in the real data."""

ACTIVITY_LABELS: tuple[str, ...] = get_args(ActivityLabel)

# Integers must fit Spark's long; strict so that "5", 5.0 or true are not taken for 5.
Long = Annotated[int, Field(strict=True, ge=LONG_MIN, le=LONG_MAX)]
NonNegativeLong = Annotated[int, Field(strict=True, ge=0, le=LONG_MAX)]
# Epoch milliseconds up to 9999-12-31T23:59:59.999Z, the last instant Spark's timestamps hold.
MAX_EPOCH_MILLIS = 253_402_300_799_999
EpochMillis = Annotated[int, Field(strict=True, ge=0, le=MAX_EPOCH_MILLIS)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=64)]
Reading = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class SensorEvent(BaseModel):
    """One gyroscope reading of one phone, as a row of the HHAR activity-data set."""

    # Python code builds events by attribute name (SensorEvent(arrival_time=...)) or wire name;
    # JSON lines are read by wire names only (parse_event, parse_event_fields).
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_alias=True, validate_by_name=True
    )

    arrival_time: EpochMillis = Field(
        alias="Arrival_Time", description="when the reading reached the app, epoch milliseconds"
    )
    creation_time: Long = Field(
        alias="Creation_Time",
        description="the phone OS's timestamp of the reading, epoch nanoseconds (19 digits)",
    )
    device: Name = Field(alias="Device", description="the phone, e.g. nexus4_1")
    index: NonNegativeLong = Field(alias="Index", description="sample counter per user and device")
    model: Name = Field(alias="Model", description="the phone model, e.g. nexus4")
    user: Name = Field(alias="User", description="the person, a to i")
    gt: ActivityLabel = Field(description='the activity; "null" when unlabelled')
    x: Reading = Field(description="gyroscope x, rad/s")
    y: Reading = Field(description="gyroscope y, rad/s")
    z: Reading = Field(description="gyroscope z, rad/s")

    def to_json(self) -> str:
        """Serialise as one JSON line exactly as the real files write a row.

        Keys in the real order, integers in full (19-digit nanoseconds are never rounded) and
        doubles in Java's notation (``5.0354E-4``).
        """
        return (
            "{"
            + ",".join(f'"{name}":{_json_value(getattr(self, attr))}' for attr, name in _WIRE_NAMES)
            + "}"
        )


def _json_value(value: Any) -> str:
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


_WIRE_NAMES: tuple[tuple[str, str], ...] = tuple(
    (attr, field.alias or attr) for attr, field in SensorEvent.model_fields.items()
)
WIRE_FIELDS: tuple[str, ...] = tuple(name for _, name in _WIRE_NAMES)
"""The wire names of `SensorEvent`'s fields, in the data set's order."""


def _wire_fields_validator() -> SchemaValidator:
    """`SensorEvent`'s field checks as a typed dict: attribute names out, wire names only in.

    Not the model's own validator: pydantic never counts a field's own name as extra there
    (even with ``by_name=False``), so a line with ``arrival_time`` beside ``Arrival_Time``
    would pass it.
    """
    schema = SensorEvent.__pydantic_core_schema__
    fields = {
        attr: core_schema.typed_dict_field(
            field["schema"], required=True, validation_alias=field.get("validation_alias", attr)
        )
        for attr, field in schema["schema"]["fields"].items()
    }
    config = core_schema.CoreConfig(
        title=SensorEvent.__name__, validate_by_alias=True, validate_by_name=False
    )
    return SchemaValidator(
        core_schema.typed_dict_schema(fields, extra_behavior="forbid", config=config)
    )


_WIRE_FIELDS_VALIDATOR = _wire_fields_validator()


def parse_event_fields(line: str | bytes) -> dict[str, Any]:
    """Validate one JSON line by the wire names only; its field values by attribute name.

    The same checks and errors as `parse_event`, without building a model instance.

    Raises:
        ValidationError: as `parse_event`.
    """
    fields: dict[str, Any] = _WIRE_FIELDS_VALIDATOR.validate_json(line)
    return fields


def parse_event(line: str | bytes) -> SensorEvent:
    """Parse and validate one JSON line; its fields must have their wire names.

    Raises:
        ValidationError: when the line is not JSON or does not fit `SensorEvent`;
            `describe_validation_error` turns it into a one-line reason.
    """
    return SensorEvent.model_validate(parse_event_fields(line))


def describe_validation_error(error: ValidationError) -> str:
    """A one-line reason for a row that failed validation, e.g. ``Index: must be >= 0``."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "row"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def sensor_event_json_schema() -> dict[str, Any]:
    """The JSON Schema of a `SensorEvent` row, with the wire names."""
    return SensorEvent.model_json_schema(by_alias=True)
