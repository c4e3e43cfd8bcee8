"""What the dashboard page shows, made from the results: charts, tables, health cards, alerts.

Everything here is a pure function of what the feed read (`Observation`), so that the page's
content can be tested without a browser. Tables are the catalogue's views (as `hhar watch`
shows them); charts are Plotly figures built from the queries' record models; the page's
script only draws what it is sent.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ...processor.catalogue import BAD_RECORDS, CATALOGUE, ROWS_SHOWN, WINDOWS_KEPT, with_named
from ...schemas import ACTIVITY_LABELS
from ...schemas.queries import QueryDefinition, is_number, python_type
from ...schemas.results import (
    DeviceActivity,
    LiveVsHistorical,
    ResultRecord,
    WindowedActivity,
)
from ..results import PipelineFigures, ResultState
from ..watch import Table, build_tables

COLORS = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#9d755d",
    "#eeca3b",
    "#bab0ac",
    "#ff9da6",
)
"""Colours of the series (Vega's tableau10)."""

ACTIVITY_COLORS = dict(zip(ACTIVITY_LABELS, COLORS, strict=False))
"""One colour per activity label, the same in every chart."""

TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#222"},
        "colorway": list(COLORS),
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "xaxis": {"gridcolor": "#eee", "linecolor": "#999", "automargin": True},
        "yaxis": {
            "gridcolor": "#eee",
            "linecolor": "#999",
            "automargin": True,
            "rangemode": "tozero",
        },
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "closest",
    }
)
"""A small template of our own: Plotly's default one would add 7 kB to every figure sent."""


ThroughputSample = tuple[dt.datetime, float | None, float | None, int | None]
"""(time, events in per second, processed per second, lag): one point of the throughput chart."""


@dataclass(frozen=True)
class DeadLetter:
    """One row the producer set aside: where it came from and why."""

    source: str
    reason: str


@dataclass
class Observation:
    """What the feed knows at one moment: results, pipeline figures, status, dead letters."""

    state: ResultState
    figures: PipelineFigures | None
    """None while the broker does not answer."""
    broker_error: str | None = None
    events_topic: str = ""
    events_topic_exists: bool | None = None
    """None while unknown (the broker does not answer)."""
    missing_queries: Sequence[str] = ()
    """Queries whose result topic does not exist yet."""
    status: dict[str, Any] | None = None
    """The processor's status file (`processor.status.read_status`)."""
    status_problem: str | None = None
    """Why there is no status."""
    dead_letters: int | None = None
    """Messages in the dead-letter topic (None: the topic does not exist yet)."""
    dead_letter_topic: str = ""
    latest_dead_letters: Sequence[DeadLetter] = ()
    throughput: Sequence[ThroughputSample] = ()
    """Samples of (time, events in per second, processed per second, lag)."""
    query_names: Sequence[str] = field(default_factory=lambda: tuple(CATALOGUE))
    named: dict[str, QueryDefinition] = field(default_factory=dict)
    """The named queries the processor runs (from its definitions topic)."""


# --- charts ------------------------------------------------------------------------------------
def _figure(figure: go.Figure) -> dict[str, Any]:
    figure.update_layout(template=TEMPLATE)
    plotly_json: dict[str, Any] = figure.to_plotly_json()
    return plotly_json


DEVICES_DRAWN = 20
"""Devices of the ``device_activity`` chart: the busiest (a fleet has thousands)."""


def _busiest_devices(records: list[DeviceActivity]) -> list[str]:
    totals: dict[str, int] = {}
    for r in records:
        totals[r.device] = totals.get(r.device, 0) + r.count
    busiest = heapq.nsmallest(DEVICES_DRAWN, totals, key=lambda device: (-totals[device], device))
    return sorted(busiest)


def _device_activity(records: list[DeviceActivity]) -> go.Figure:
    devices = _busiest_devices(records)
    drawn = set(devices)
    records = [r for r in records if r.device in drawn]
    labels = sorted({r.gt for r in records}, key=_activity_order)
    counts = {(r.device, r.gt): r.count for r in records}
    figure = go.Figure(
        [
            go.Bar(
                name=gt,
                x=devices,
                y=[counts.get((device, gt), 0) for device in devices],
                marker_color=ACTIVITY_COLORS.get(gt),
            )
            for gt in labels
        ]
    )
    figure.update_layout(
        barmode="stack",
        xaxis_title=_wire(DeviceActivity, "device"),
        yaxis_title="events",
        legend_traceorder="normal",
        legend_title_text=_wire(DeviceActivity, "gt"),
    )
    return figure


def _live_vs_historical(records: list[LiveVsHistorical]) -> go.Figure:
    rows = sorted(records, key=lambda r: (_activity_order(r.gt), r.model), reverse=True)
    groups = [f"{r.gt} · {r.model}" for r in rows]
    axes = (
        ("x", "x_avg", "historical_x_avg"),
        ("y", "y_avg", "historical_y_avg"),
        ("z", "z_avg", "historical_z_avg"),
    )
    figure = make_subplots(
        rows=1,
        cols=3,
        shared_yaxes=True,
        horizontal_spacing=0.03,
        subplot_titles=[f"{axis} average" for axis, _, _ in axes],
    )
    for column, (_, live, historical) in enumerate(axes, start=1):
        for name, attribute, color in (
            ("live", live, COLORS[0]),
            ("historical", historical, COLORS[1]),
        ):
            figure.add_trace(
                go.Bar(
                    name=name,
                    orientation="h",
                    y=groups,
                    legendgroup=name,
                    x=[getattr(r, attribute) for r in rows],
                    marker_color=color,
                    showlegend=column == 1,
                ),
                row=1,
                col=column,
            )
    figure.update_layout(
        barmode="group", height=max(320, 110 + 26 * len(rows)), margin_t=60
    )  # the subplots' titles clear Plotly's mode bar
    figure.update_xaxes(rangemode="normal", zeroline=True, zerolinecolor="#999")
    return figure


def _windowed_activity(records: list[WindowedActivity], late_rows: int | None) -> go.Figure:
    starts = sorted({r.window_start for r in records})[-WINDOWS_KEPT:]
    shown = set(starts)
    totals: dict[tuple[str, dt.datetime], int] = {}
    for r in records:
        if r.window_start in shown:
            totals[(r.gt, r.window_start)] = totals.get((r.gt, r.window_start), 0) + r.count
    labels = sorted({gt for gt, _ in totals}, key=_activity_order)
    # One bar per window, side by side in time order: a recording's gaps take no room.
    names = [start.strftime("%m-%d %H:%M:%S") for start in starts]
    figure = go.Figure(
        [
            go.Bar(
                name=gt,
                x=names,
                y=[totals.get((gt, start), 0) for start in starts],
                marker_color=ACTIVITY_COLORS.get(gt),
            )
            for gt in labels
        ]
    )
    late = (
        "late rows: unknown (no processor status)"
        if late_rows is None
        else (f"late rows dropped behind the watermark: {late_rows:,}")
    )
    figure.update_layout(
        barmode="stack",
        xaxis={
            "type": "category",
            "nticks": 8,
            "tickangle": 0,
            "title": f"window start (UTC; {late})",
        },
        yaxis_title="events per window",
        legend_traceorder="normal",
        legend_title_text=_wire(WindowedActivity, "gt"),
    )
    return figure


def _throughput(
    samples: Sequence[ThroughputSample],
) -> go.Figure:
    times = [sample[0] for sample in samples]
    figure = go.Figure(
        [
            go.Scatter(name="events in /s", x=times, y=[s[1] for s in samples], mode="lines"),
            go.Scatter(name="processed /s", x=times, y=[s[2] for s in samples], mode="lines"),
            go.Scatter(
                name="lag (events)",
                x=times,
                y=[s[3] for s in samples],
                mode="lines",
                yaxis="y2",
                line_dash="dot",
            ),
        ]
    )
    at_least = {"include": [0, 10]}  # no fractions of an event on a quiet pipeline's axes
    figure.update_layout(
        yaxis={"title": "events per second", "autorangeoptions": at_least},
        yaxis2={
            "title": "lag (events)",
            "overlaying": "y",
            "side": "right",
            "autorangeoptions": at_least,
            "showgrid": False,
        },
    )
    return figure


def _wire(model: type[ResultRecord], attribute: str) -> str:
    """The wire name of a record field (``Device`` for ``device``)."""
    return model.model_fields[attribute].alias or attribute


def _activity_order(label: str) -> tuple[int, str]:
    known = label in ACTIVITY_LABELS
    return (ACTIVITY_LABELS.index(label) if known else len(ACTIVITY_LABELS), label)


@dataclass(frozen=True)
class Chart:
    """A chart of one query's current records."""

    title: Callable[[list[Any]], str]
    """The chart's title, from the records it draws."""
    draw: Callable[[list[Any], Observation], go.Figure]
    wide: bool = False
    """Across the whole page."""


def _device_activity_title(records: list[DeviceActivity]) -> str:
    devices = len({r.device for r in records})
    if devices <= DEVICES_DRAWN:
        return "Events per device and activity"
    return f"Events per activity of the {DEVICES_DRAWN} busiest of {devices:,} devices"


CHARTS: dict[str, Chart] = {
    "device_activity": Chart(
        _device_activity_title, lambda records, seen: _device_activity(records)
    ),
    "live_vs_historical": Chart(
        lambda records: "Live averages beside the historical ones, per activity and model",
        lambda records, seen: _live_vs_historical(records),
        wide=True,
    ),
    "windowed_activity": Chart(
        lambda records: (
            "Events per activity in each event-time window (the newest "
            f"{min(len({r.window_start for r in records}), WINDOWS_KEPT)})"
        ),
        lambda records, seen: _windowed_activity(records, _late_rows(seen.status)),
        wide=True,
    ),
}
"""The queries drawn as charts (their table is shown under the chart); the others are tables."""

TOTAL = "total_count"
"""The query shown as the big number."""

_LABEL_TYPES = (str, bool, dt.datetime, dt.date)


def named_chart(definition: QueryDefinition) -> Chart | None:
    """A bar chart of a named query whose rows have label columns and one number: the number
    per label (grouped by the other labels when there are several); None for another shape."""
    labels = [c.name for c in definition.columns if python_type(c.type) in _LABEL_TYPES]
    numbers = [c.name for c in definition.columns if is_number(c.type)]
    if len(numbers) != 1 or not labels:
        return None
    title = definition.description.splitlines()[0] if definition.description else definition.name

    def titled(records: list[Any]) -> str:
        shown = len({_label(r.model_dump(by_alias=True)[labels[0]]) for r in records})
        if shown <= DEVICES_DRAWN:
            return title
        return f"{title} (the {DEVICES_DRAWN} largest of {shown:,} {labels[0]})"

    return Chart(titled, lambda records, seen: _bars(records, labels, numbers[0]))


def _label(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "(null)" if value is None else str(value)


def _bars(records: list[ResultRecord], labels: list[str], number: str) -> go.Figure:
    """One bar per value of the first label; a series per value of the others."""
    rows = [record.model_dump(by_alias=True) for record in records]
    placed = [(_label(row[labels[0]]), row) for row in rows]
    sizes: dict[str, float] = {}
    for category, row in placed:
        sizes[category] = sizes.get(category, 0) + abs(row[number] or 0)
    # A fleet's thousands of bars are drawn as the largest few: the table has them all.
    categories = sorted(heapq.nsmallest(DEVICES_DRAWN, sizes, key=lambda c: (-sizes[c], c)))
    drawn = set(categories)
    series: dict[str, dict[str, Any]] = {}
    for category, row in placed:
        if category in drawn:
            name = " · ".join(_label(row[label]) for label in labels[1:]) or number
            series.setdefault(name, {})[category] = row[number]
    figure = go.Figure(
        [
            go.Bar(name=name, x=categories, y=[values.get(c) for c in categories])
            for name, values in sorted(series.items())
        ]
    )
    figure.update_layout(
        barmode="group",
        xaxis={"title": labels[0], "type": "category"},
        yaxis_title=number,
        showlegend=len(series) > 1,
        legend_title_text=" · ".join(labels[1:]),
    )
    return figure


# --- health --------------------------------------------------------------------------------------
def _number(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.0f}{suffix}"


def _main_query(status: dict[str, Any] | None) -> dict[str, Any] | None:
    """The streaming query that reads the most events (``fused`` with the fused engine)."""
    if not status or not status.get("queries"):
        return None
    queries: list[dict[str, Any]] = list(status["queries"].values())
    return max(queries, key=lambda query: int(query["input_rows"]))


def _late_rows(status: dict[str, Any] | None) -> int | None:
    if not status or not status.get("queries"):
        return None
    return sum(int(query["late_rows"]) for query in status["queries"].values())


def cards(seen: Observation) -> list[dict[str, str]]:
    """The health cards: label, value and a detail line each."""
    figures = seen.figures
    main = _main_query(seen.status)
    last = (main or {}).get("last_progress") or {}
    totals = seen.state.records(TOTAL)
    total = totals[0].count if totals else None
    bad = len(seen.state.records(BAD_RECORDS))
    spark_rate = last.get("processed_rows_per_second")
    duration = (last.get("duration_ms") or {}).get("triggerExecution")
    late = _late_rows(seen.status)
    return [
        {
            "id": TOTAL,
            "label": "events counted",
            "value": _number(total),
            "detail": f"valid events in {TOTAL}",
        },
        {
            "id": "events_in",
            "label": "events in",
            "value": _number(figures.events_per_second if figures else None, " /s"),
            "detail": "topic offsets: " + (_number(figures.events) if figures else "-"),
        },
        {
            "id": "processed",
            "label": "processed",
            "value": _number(figures.processed_per_second if figures else None, " /s"),
            "detail": "Spark's last batch: " + _number(spark_rate, " rows/s"),
        },
        {
            "id": "lag",
            "label": "lag",
            "value": "-" if figures is None or figures.lag is None else f"≤ {figures.lag:,}",
            "detail": "events not in the results yet",
        },
        {
            "id": "last_batch",
            "label": "last batch",
            "value": "-"
            if figures is None or figures.last_batch is None
            else f"#{figures.last_batch}",
            "detail": "-" if duration is None else f"took {duration:,} ms",
        },
        {"id": "watermark", "label": "watermark", **_watermark(last.get("watermark"), late)},
        {
            "id": "bad_records",
            "label": "bad records",
            "value": f"{bad:,}",
            "detail": "not sensor events (processor)",
        },
        {
            "id": "dead_letters",
            "label": "dead letters",
            "value": _number(seen.dead_letters),
            "detail": "invalid rows (producer)",
        },
    ]


def _watermark(text: str | None, late: int | None) -> dict[str, str]:
    """The watermark's time as the value, its date and the late rows as the detail."""
    late_rows = f"late rows: {_number(late)}"
    if not text or text.startswith("1970-01-01"):
        return {"value": "-", "detail": late_rows}
    day, _, time = text.partition("T")
    return {"value": time[:8], "detail": f"{day} · {late_rows}"}


# --- alerts --------------------------------------------------------------------------------------
def alerts(seen: Observation) -> list[dict[str, str]]:
    """What is wrong or missing, in words, most serious first."""
    found: list[dict[str, str]] = []

    def say(level: str, text: str) -> None:
        found.append({"level": level, "text": text})

    if seen.broker_error:
        say(
            "error",
            f"{seen.broker_error[0].upper()}{seen.broker_error[1:]}. The page shows "
            f"the last results read and recovers by itself when Kafka answers again.",
        )
    if seen.state.invalid:
        say(
            "warning",
            f"{seen.state.invalid:,} result record(s) set aside: not the expected "
            f"record of their query (last: {seen.state.last_invalid}).",
        )
    if seen.events_topic_exists is False:
        say(
            "info",
            f"The events topic {seen.events_topic} does not exist yet: start the "
            f"producer (hhar produce, or make demo).",
        )
    missing = list(seen.missing_queries)
    if not seen.broker_error and missing:
        if len(missing) == len(seen.query_names):
            say(
                "info",
                "No results yet: the result topics do not exist yet (start the "
                "processor: hhar process).",
            )
        else:
            say("info", f"No result topic yet for {', '.join(missing)}.")
    elif not seen.broker_error and not any(seen.state.records(q) for q in seen.query_names):
        say("info", "No results yet: waiting for the processor's first batch.")
    if seen.status_problem:
        say("info", f"No processor status: {seen.status_problem}.")
    elif seen.status is not None and not seen.status.get("running"):
        say(
            "info",
            f"The processor (pid {seen.status.get('pid')}) is not running; its last "
            f"status is from {seen.status.get('updated_at')}.",
        )
    for query in (seen.status or {}).get("queries", {}).values():
        if query.get("exception"):
            say("error", f"Query {query['name']} failed: {query['exception']}")
    return found


# --- the page ------------------------------------------------------------------------------------
def _note(seen: Observation, query: str) -> str:
    """What an empty panel of `query` says."""
    if query in seen.missing_queries:
        return f"no results yet: the topic of {query} does not exist yet"
    return "no results yet"


def table_content(table: Table) -> dict[str, Any]:
    """A table of the page as JSON: a page of its rows, which ones, and its totals."""
    return {
        "columns": table.columns,
        "rows": table.rows,
        "first": table.first,
        "matched": table.matched,
        "size": ROWS_SHOWN,
        "extent": table.extent,
        "summary": table.summary,
    }


def table_page(seen: Observation, query: str, first: int, search: str) -> dict[str, Any]:
    """Another page of one query's table (`ROWS_SHOWN` rows from the `first`, of those with
    a cell containing `search`), as the page asks for it."""
    catalogue = with_named(seen.named.values())
    (table,) = build_tables(seen.state, [query], catalogue, ROWS_SHOWN, search, first)
    return {"id": query, "search": search} | table_content(table)


def panels(seen: Observation) -> list[dict[str, Any]]:
    """The charts and tables of the page, in order (the first page of each table)."""
    shown = [name for name in seen.query_names if name != TOTAL]
    catalogue = with_named(seen.named.values())
    shown = [name for name in shown if name in catalogue]
    tables = {
        name: table
        for name, table in zip(shown, build_tables(seen.state, shown, catalogue), strict=True)
    }
    charts = CHARTS | {
        name: chart
        for name, definition in seen.named.items()
        if (chart := named_chart(definition)) is not None
    }
    out: list[dict[str, Any]] = []
    for name in shown:
        records = seen.state.records(name)
        table = tables[name]
        panel: dict[str, Any] = {
            "id": name,
            "title": table.title,
            "table": table_content(table),
            "note": _note(seen, name),
        }
        if name in charts:
            chart = charts[name]
            panel |= {
                "kind": "chart",
                "title": f"{chart.title(records)} ({table.title})",
                "wide": chart.wide,
                "figure": _figure(chart.draw(records, seen)) if records else None,
            }
        else:
            panel["kind"] = "table"
        out.append(panel)
    out.insert(
        1,
        {
            "id": "throughput",
            "kind": "chart",
            "title": "Does the pipeline keep up?",
            "figure": _figure(_throughput(seen.throughput)) if seen.throughput else None,
            "note": "no figures yet",
        },
    )
    topic = seen.dead_letter_topic
    out.append(
        {
            "id": "dead_letters",
            "kind": "table",
            "title": f"dead letters ({_number(seen.dead_letters)} in {topic}; last 5)",
            "table": {
                "columns": ["source", "reason"],
                "rows": [[letter.source, letter.reason] for letter in seen.latest_dead_letters],
            },
            "note": f"{topic} does not exist yet"
            if seen.dead_letters is None
            else "no dead letters",
        }
    )
    return out


def page(seen: Observation, now: dt.datetime) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready values."""
    status = seen.status or {}
    return {
        "updated": now.strftime("%H:%M:%S"),
        "alerts": alerts(seen),
        "cards": cards(seen),
        "panels": panels(seen),
        "spark_ui": status.get("spark_ui") if status.get("running") else None,
        "kafka": seen.broker_error is None,
    }
