"""The pydantic models that define hhar-stream's records, and what is derived from them.

`SensorEvent` is one HHAR reading. The Spark schema comes from
`hhar_stream.schemas.spark.to_spark_schema` (kept out of this module so the producer does not
import pyspark) and the JSON Schema from `sensor_event_json_schema`.
"""

from .events import (
    ACTIVITY_LABELS,
    WIRE_FIELDS,
    ActivityLabel,
    SensorEvent,
    describe_validation_error,
    parse_event,
    parse_event_fields,
    sensor_event_json_schema,
)
from .javafmt import java_double

__all__ = [
    "ACTIVITY_LABELS",
    "WIRE_FIELDS",
    "ActivityLabel",
    "SensorEvent",
    "describe_validation_error",
    "java_double",
    "parse_event",
    "parse_event_fields",
    "sensor_event_json_schema",
]
