"""The catalogue of queries: one entry per result the processor publishes.

An entry says everything the rest of hhar-stream needs to know of a query: its name (and result
topic ``<prefix><name>``), its record model, Spark's output mode, the pure Spark function that
computes it over valid events (`queries`, the reference: the per-query engine and batch runs
use it), the plain-Python function over the totals that the fused engine derives its changed
rows with (`derive`), the parameters it takes from the settings, and how `hhar watch` and the
dashboard show its rows (`View`). Engines, sinks and views read this catalogue: a new query is a new
entry here (plus its two functions).
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pyspark.sql import DataFrame

from ..errors import ConfigError
from ..options import env_var
from ..schemas.queries import OutputMode, QueryDefinition
from ..schemas.results import (
    RESULT_RECORDS,
    ActivityStats,
    ResultRecord,
)
from ..settings import Settings, format_duration
from . import derive
from . import queries as q
from .parse import invalid_records, valid_events

Reads = Literal["totals", "windows", "messages", "sql"]
"""What a query is computed from: the totals of valid events (`derive.Totals`: every query but
two), the events in event-time windows (``windowed_activity``), the raw messages
(``bad_records``), or a user's SQL over the ``events`` table (a named query: a streaming query of
its own)."""

LEVELS = {0: "", 1: "all gt", 2: "all devices", 3: "total"}
"""How a view names the ``grouping_id`` of cube and rollup rows."""


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


def _group(value: str | None) -> str:
    return "(all)" if value is None else value


ROWS_SHOWN = 20
"""Rows of a table a view shows at once (a fleet's device_activity has tens of thousands)."""


@dataclass(frozen=True)
class Page:
    """Some of the rows a view shows: `rows` from the `first` (0-based), of `matched` rows
    (those that contain the search, if any)."""

    rows: list[list[str]]
    first: int
    matched: int


@dataclass(frozen=True)
class View:
    """How `hhar watch` and the dashboard show a query's current rows (one per key)."""

    columns: tuple[str, ...]
    cells: Callable[[Any], Sequence[str]]
    """A record -> its cells, one per column."""
    order: Callable[[Any], Any]
    """Sort key of the rows shown."""
    title: str = "{name}"
    """Title; ``{name}`` and ``{count}`` (the rows the query has) are filled in."""
    keep: Callable[[Any], bool] | None = None
    """Only the rows this accepts are shown (the exercise's ``where x_avg > 0`` view)."""
    last: int | None = None
    """Only the last rows (in `order`) are shown."""
    summary: Callable[[Sequence[Any]], str] | None = None
    """Totals over every record, for a table longer than a page (a fleet's)."""
    newest: tuple[str, int] | None = None
    """(field, n): the views show rows of the `n` newest values of `field` at most, so a
    reader may forget older ones (windows closed long ago)."""

    def rows(self, records: Iterable[ResultRecord]) -> list[list[str]]:
        """The cells of every row shown, in order."""
        return self.page(records, count=None).rows

    def page(
        self,
        records: Iterable[ResultRecord],
        first: int = 0,
        count: int | None = ROWS_SHOWN,
        search: str = "",
    ) -> Page:
        """`count` rows (every one: None) from the `first`, in order, of the rows shown that
        have a cell containing `search` (any case). Only as many rows as the page needs are
        sorted and made text, unless there is a search."""
        kept = [r for r in records if self.keep is None or self.keep(r)]
        if self.last is not None:
            kept = heapq.nlargest(self.last, kept, key=self.order)
        if search:
            needle = search.casefold()
            cells = ((r, self.cells(r)) for r in kept)
            found = [(r, c) for r, c in cells if any(needle in cell.casefold() for cell in c)]
            found.sort(key=lambda item: self.order(item[0]))
            end = None if count is None else first + count
            return Page([list(c) for _, c in found[first:end]], first, len(found))
        if count is None:
            ordered = sorted(kept, key=self.order)[first:]
        else:
            ordered = heapq.nsmallest(first + count, kept, key=self.order)[first:]
        return Page([list(self.cells(r)) for r in ordered], first, len(kept))


@dataclass(frozen=True)
class Query:
    """One entry of the catalogue."""

    name: str
    output_mode: OutputMode
    reads: Reads
    view: View
    on_events: Callable[..., DataFrame] | None = None
    """The Spark function (`queries`) over valid events; None for ``bad_records``."""
    derive: Callable[..., list[derive.Row]] | None = None
    """The plain-Python function (`derive`) over the fused engine's totals, for ``reads ==
    "totals"``: ``derive(totals, changes=...)``, plus ``historical=`` with `uses_history`."""
    parameters: Callable[[Settings], dict[str, Any]] = field(default=lambda settings: {})
    """Keyword arguments of `on_events`, from the settings."""
    uses_history: bool = False
    """Takes the static history's statistics (``historical``) as well."""
    definition: QueryDefinition | None = None
    """A named query's definition (`named_query`); None for a built-in one."""

    def rows(self, parsed: DataFrame, **parameters: Any) -> DataFrame:
        """The query's result rows over parsed messages (`parse.parse_events`), in batch or
        streaming: Spark's reference computation."""
        if self.on_events is None:
            return invalid_records(parsed)
        return self.on_events(valid_events(parsed), **parameters)

    @property
    def record(self) -> type[ResultRecord]:
        """The model of the query's result records (`schemas.results.RESULT_RECORDS`, or the
        one a named query's definition makes)."""
        if self.definition is not None:
            return self.definition.record_model()
        return RESULT_RECORDS[self.name]

    def topic(self, settings: Settings) -> str:
        """The query's result topic."""
        return settings.result_topic(self.name)


WINDOWS_KEPT = 60
"""Event-time windows of ``windowed_activity`` the views keep (the newest; the dashboard draws
them)."""


def stairs_parameters(settings: Settings) -> dict[str, Any]:
    """``stairs_by_user``'s users and device (`queries.counted_on_stairs`)."""
    return {"users": list(settings.stairs_users), "device": settings.stairs_device}


def window_parameters(settings: Settings) -> dict[str, Any]:
    """``windowed_activity``'s window and watermark delay, as Spark spells them."""
    return {
        "window": format_duration(settings.window),
        "watermark": format_duration(settings.watermark),
    }


def window_milliseconds(settings: Settings) -> tuple[int, int]:
    """``windowed_activity``'s window and watermark delay in milliseconds."""
    millisecond = dt.timedelta(milliseconds=1)
    return round(settings.window / millisecond), round(settings.watermark / millisecond)


def _time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _devices_summary(records: Sequence[Any]) -> str:
    """Devices, activities and events of ``device_activity``'s records."""
    devices = {r.device for r in records}
    labels = {r.gt for r in records}
    events = sum(r.count for r in records)
    return f"{len(devices):,} devices, {len(labels):,} activities, {events:,} events"


def _subtotals_summary(records: Sequence[Any]) -> str:
    """Devices and the grand total of cube or rollup records."""
    devices = sum(1 for r in records if r.grouping_id == 1)
    total = next((r.count for r in records if r.grouping_id == 3), 0)
    return f"{devices:,} devices, {total:,} events in all"


_COUNTS_VIEW = View(
    columns=("Device", "gt", "level", "count"),
    cells=lambda r: (_group(r.device), _group(r.gt), LEVELS[r.grouping_id], str(r.count)),
    # The totals first (the grand total, per activity), then devices, busiest first.
    order=lambda r: (-r.grouping_id, -r.count, r.device or "", r.gt or ""),
    title="{name} ({count:,} rows)",
    summary=_subtotals_summary,
)

_STATS_COLUMNS = ("gt", "Model", "x_avg", "y_avg", "z_avg", "count")


def _stats_cells(r: ActivityStats) -> tuple[str, ...]:
    return (r.gt, r.model, _number(r.x_avg), _number(r.y_avg), _number(r.z_avg), str(r.count))


CATALOGUE: dict[str, Query] = {
    query.name: query
    for query in (
        Query(
            "total_count",
            "complete",
            "totals",
            View(("count",), lambda r: (str(r.count),), order=lambda r: 0),
            on_events=q.total_count,
            derive=derive.total_count,
        ),
        Query(
            "device_activity",
            "complete",
            "totals",
            View(
                ("Device", "gt", "count"),
                lambda r: (r.device, r.gt, str(r.count)),
                order=lambda r: (-r.count, r.device, r.gt),
                title="{name} ({count:,} rows)",
                summary=_devices_summary,
            ),
            on_events=q.device_activity,
            derive=derive.device_activity,
        ),
        Query(
            "device_activity_cube",
            "complete",
            "totals",
            _COUNTS_VIEW,
            on_events=q.device_activity_cube,
            derive=derive.device_activity_cube,
        ),
        Query(
            "device_activity_rollup",
            "complete",
            "totals",
            _COUNTS_VIEW,
            on_events=q.device_activity_rollup,
            derive=derive.device_activity_rollup,
        ),
        Query(
            "stairs_by_user",
            "update",
            "totals",
            View(("User", "count"), lambda r: (r.user, str(r.count)), order=lambda r: r.user),
            on_events=q.stairs_by_user,
            derive=derive.stairs_by_user,
            parameters=stairs_parameters,
        ),
        Query(
            "activity_stats",
            "complete",
            "totals",
            View(
                _STATS_COLUMNS,
                _stats_cells,
                order=lambda r: (r.gt, r.model),
                title="{name} where x_avg > 0",
                keep=lambda r: r.x_avg > 0,
            ),
            on_events=q.activity_stats,
            derive=derive.activity_stats,
        ),
        Query(
            "live_vs_historical",
            "complete",
            "totals",
            View(
                (
                    "gt",
                    "Model",
                    "x live",
                    "x hist",
                    "y live",
                    "y hist",
                    "z live",
                    "z hist",
                    "count live",
                    "count hist",
                ),
                lambda r: (
                    r.gt,
                    r.model,
                    _number(r.x_avg),
                    _number(r.historical_x_avg),
                    _number(r.y_avg),
                    _number(r.historical_y_avg),
                    _number(r.z_avg),
                    _number(r.historical_z_avg),
                    str(r.count),
                    "-" if r.historical_count is None else str(r.historical_count),
                ),
                order=lambda r: (r.gt, r.model),
            ),
            on_events=q.live_vs_historical,
            derive=derive.live_vs_historical,
            uses_history=True,
        ),
        Query(
            "windowed_activity",
            "append",
            "windows",
            View(
                ("window_start", "window_end", "Device", "gt", "count"),
                lambda r: (
                    _time(r.window_start),
                    r.window_end.strftime("%H:%M:%S"),
                    r.device,
                    r.gt,
                    str(r.count),
                ),
                order=lambda r: (r.window_start, r.device, r.gt),
                title="{name} (last 8 rows)",
                last=8,
                newest=("window_start", WINDOWS_KEPT),
            ),
            on_events=q.windowed_activity,
            parameters=window_parameters,
        ),
        Query(
            "bad_records",
            "append",
            "messages",
            View(
                ("partition", "offset", "reason"),
                lambda r: (str(r.partition), str(r.offset), r.reason[:60]),
                order=lambda r: (r.partition, r.offset),
                title="{name} ({count} set aside; last 5)",
                last=5,
            ),
        ),
    )
}
"""Every query, in the order they are started and shown; ``bad_records`` always runs."""

BAD_RECORDS = "bad_records"
"""The side output that keeps the messages that are not valid events; it always runs."""

QUERY_NAMES: tuple[str, ...] = tuple(name for name in CATALOGUE if name != BAD_RECORDS)
"""The queries `hhar process --queries` can choose from."""


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


NAMED_ROWS_SHOWN = 20
"""Rows of a named query without aggregation that views show (the newest)."""


def cell_text(value: Any) -> str:
    """A value of a named or ad hoc query's row as a view shows it."""
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.6f}".rstrip("0")  # 6 decimals at most: 17.0, 0.029024
        return text + "0" if text.endswith(".") else text
    if isinstance(value, dt.datetime):
        return _time(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def sortable(value: Any) -> tuple[bool, Any]:
    """A sort key for any value of a row: numbers as numbers, the rest as text, nulls last."""
    return (value is None, value if isinstance(value, int | float) else str(value))


def named_query(definition: QueryDefinition) -> Query:
    """The catalogue entry of a named query (`schemas.queries.QueryDefinition`): sinks, views
    and status treat it as they treat the built-in queries. Its rows are shown in key order
    (the newest ones only for a query without aggregation, whose every row is new)."""
    columns = tuple(column.name for column in definition.columns)
    keys = definition.key_columns

    def values(record: Any) -> dict[str, Any]:
        dumped: dict[str, Any] = record.model_dump(by_alias=True)
        return dumped

    appends = definition.output_mode == "append"
    view = View(
        columns,
        lambda record: [cell_text(values(record)[name]) for name in columns],
        order=lambda record: tuple(sortable(values(record)[name]) for name in keys),
        title=f"{{name}} ({{count}} rows; the last {NAMED_ROWS_SHOWN})" if appends else "{name}",
        last=NAMED_ROWS_SHOWN if appends else None,
    )
    return Query(definition.name, definition.output_mode, "sql", view, definition=definition)


def with_named(definitions: Iterable[QueryDefinition]) -> dict[str, Query]:
    """The catalogue with the named queries of `definitions` after the built-in ones."""
    return CATALOGUE | {
        definition.name: named_query(definition)
        for definition in definitions
        if definition.name not in CATALOGUE
    }
