"""Result records: one pydantic model per kind of row the processor publishes.

Every result is published in the same shape whatever computed it, to each selected sink:

- **Kafka**: topic ``hhar.results.<query>`` (``Settings.result_topic``), ``cleanup.policy=compact``.
  The record **key** is the group key as a compact JSON object of the model's ``key_fields``
  (wire names, in declaration order), e.g. ``{"Device":"nexus4_1","gt":"walk"}``; a query with no
  grouping (``total_count``) has the key ``{}``. The record **value** is the whole record as JSON
  with the wire names: ``query`` (the query name), ``batch_id`` (the micro-batch that wrote it)
  and then the row's fields, e.g.
  ``{"query":"device_activity","batch_id":3,"Device":"nexus4_1","gt":"walk","count":512}``.
  A compacted topic therefore converges on the latest row per group: read it to the end and keep
  the last value per key (`parse_result_value` turns a value into its model).
- **Spark memory tables** named after the query (``SELECT * FROM device_activity``), with the
  same columns as the Kafka value, holding the latest row per key.

Kinds (query -> model, key fields):

- ``total_count`` -> `TotalCount` (no key): ``count``.
- ``device_activity`` -> `DeviceActivity` (Device, gt): ``count``.
- ``device_activity_cube`` and ``device_activity_rollup`` -> `DeviceActivitySubtotal`
  (Device, gt, grouping_id): ``count``. ``grouping_id`` tells subtotal rows from data: 0 = one
  (Device, gt) cell, 1 = every activity of a Device (gt is null), 2 = every Device for one gt
  (Device is null; cube only), 3 = the grand total. A JSON null in gt is always a subtotal; the
  unlabelled activity is the string ``"null"`` with grouping_id 0 or 2.
- ``stairs_by_user`` -> `StairsByUser` (User): ``count``.
- ``activity_stats`` -> `ActivityStats` (gt, Model): ``x_avg``, ``y_avg``, ``z_avg``, ``count``.
- ``live_vs_historical`` -> `LiveVsHistorical` (gt, Model): the live averages and count, plus
  ``historical_x_avg``, ``historical_y_avg``, ``historical_z_avg``, ``historical_count`` (null
  when the history has no such group).
- ``windowed_activity`` -> `WindowedActivity` (window_start, Device, gt): ``window_end``,
  ``count``; timestamps are ISO-8601 UTC strings; a window is published once, when the
  watermark has passed its end.
- ``bad_records`` -> `BadRecord` (partition, offset): an events-topic message that did not fit
  `SensorEvent`, with the ``reason``, its Kafka ``timestamp`` and the beginning of its ``value``
  text (at most `BAD_VALUE_MAX_CHARS` characters, so that any bad record fits a Kafka record),
  ``value_bytes`` (the original size) and ``value_truncated`` (true when ``value`` was cut).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class ResultRecord(BaseModel):
    """Fields every result record carries, then the row of one query."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    key_fields: ClassVar[tuple[str, ...]] = ()
    """Wire names of the fields that form the record's Kafka key (the group key)."""

    query: str = Field(description="name of the query that produced the row")
    batch_id: int = Field(description="micro-batch that wrote this version of the row")

    def key_json(self) -> str:
        """The Kafka key: the group key as a compact JSON object (non-ASCII characters
        escaped, as ``json.dumps`` writes them)."""
        fields = _key_attributes(type(self))
        key: bytes = self.__pydantic_serializer__.to_json(self, include=fields, by_alias=True)
        if key.isascii():  # pydantic's own serializer: ten times faster than a dump
            return key.decode()
        values = self.model_dump(mode="json", by_alias=True, include=fields)
        return json.dumps({name: values[name] for name in self.key_fields}, separators=(",", ":"))

    def value_json(self) -> str:
        """The Kafka value: the whole record as JSON with its wire names."""
        return self.model_dump_json(by_alias=True)


@functools.cache
def _key_attributes(model: type[ResultRecord]) -> set[str]:
    """The attribute names of `model`'s key fields (declared in key order)."""
    by_wire = {field.alias or name: name for name, field in model.model_fields.items()}
    attributes = [by_wire[name] for name in model.key_fields]
    assert attributes == [name for name in model.model_fields if name in attributes], model
    return set(attributes)


class TotalCount(ResultRecord):
    """``total_count``: the running number of valid events."""

    count: int = Field(description="events counted so far")


class DeviceActivity(ResultRecord):
    """``device_activity``: events per (Device, gt)."""

    key_fields: ClassVar[tuple[str, ...]] = ("Device", "gt")

    device: str = Field(alias="Device")
    gt: str
    count: int


class DeviceActivitySubtotal(ResultRecord):
    """``device_activity_cube`` / ``device_activity_rollup``: counts with subtotal rows."""

    key_fields: ClassVar[tuple[str, ...]] = ("Device", "gt", "grouping_id")

    device: str | None = Field(alias="Device", description="null in a row over all devices")
    gt: str | None = Field(description='null (not the label "null") in a row over all gt')
    grouping_id: int = Field(
        description="0 (Device, gt) cell, 1 Device subtotal, 2 gt subtotal, 3 grand total"
    )
    count: int


class StairsByUser(ResultRecord):
    """``stairs_by_user``: stairs events of the chosen users on the chosen device, per User."""

    key_fields: ClassVar[tuple[str, ...]] = ("User",)

    user: str = Field(alias="User")
    count: int


class ActivityStats(ResultRecord):
    """``activity_stats``: mean gyroscope readings and count per (gt, Model)."""

    key_fields: ClassVar[tuple[str, ...]] = ("gt", "Model")

    gt: str
    model: str = Field(alias="Model")
    x_avg: float
    y_avg: float
    z_avg: float
    count: int


class LiveVsHistorical(ActivityStats):
    """``live_vs_historical``: live `ActivityStats` beside the same figures over the history."""

    historical_x_avg: float | None
    historical_y_avg: float | None
    historical_z_avg: float | None
    historical_count: int | None


class WindowedActivity(ResultRecord):
    """``windowed_activity``: events per Device and gt in one tumbling event-time window."""

    key_fields: ClassVar[tuple[str, ...]] = ("window_start", "Device", "gt")

    window_start: dt.datetime
    window_end: dt.datetime
    device: str = Field(alias="Device")
    gt: str
    count: int


BAD_VALUE_MAX_CHARS = 1000
"""Characters of a bad message's value a `BadRecord` keeps (a message may be megabytes)."""
BAD_REASON_MAX_CHARS = 200
"""Characters of a reason a `BadRecord` keeps (a reason may quote a message's own keys)."""


class BadRecord(ResultRecord):
    """``bad_records``: a message of the events topic that is not a valid `SensorEvent`."""

    key_fields: ClassVar[tuple[str, ...]] = ("partition", "offset")

    partition: int
    offset: int
    timestamp: dt.datetime | None = Field(description="the message's Kafka timestamp")
    reason: str = Field(
        max_length=BAD_REASON_MAX_CHARS,
        description="why the message was set aside (cut to the maximum length)",
    )
    value: str | None = Field(
        max_length=BAD_VALUE_MAX_CHARS,
        description="the message value as text: its first characters",
    )
    value_bytes: int | None = Field(description="size of the message value in bytes")
    value_truncated: bool = Field(description="true when `value` is only the beginning")


RESULT_RECORDS: dict[str, type[ResultRecord]] = {
    "total_count": TotalCount,
    "device_activity": DeviceActivity,
    "device_activity_cube": DeviceActivitySubtotal,
    "device_activity_rollup": DeviceActivitySubtotal,
    "stairs_by_user": StairsByUser,
    "activity_stats": ActivityStats,
    "live_vs_historical": LiveVsHistorical,
    "windowed_activity": WindowedActivity,
    "bad_records": BadRecord,
}
"""The record model of every query the processor publishes, by query name."""

ENVELOPE_FIELDS: tuple[str, ...] = tuple(ResultRecord.model_fields)
"""Fields of every record that are not part of the query's row."""


def parse_result_value(
    value: str | bytes, named: Mapping[str, type[ResultRecord]] | None = None
) -> ResultRecord:
    """Parse a result topic's record value into the model of the query it names (a built-in
    query, or one of the `named` queries' models).

    Raises:
        ValueError: when the value is not JSON, names an unknown query or does not fit
            the query's model (pydantic's ValidationError is a ValueError).
    """
    data = json.loads(value)
    models = RESULT_RECORDS if named is None else {**named, **RESULT_RECORDS}
    if not isinstance(data, dict) or data.get("query") not in models:
        msg = f"not a result record of a known query: {str(value)[:80]}"
        raise ValueError(msg)
    return models[data["query"]].model_validate(data)
