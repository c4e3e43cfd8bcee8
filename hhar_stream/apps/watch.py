"""`hhar watch`: a live view of the processor's result topics.

The view reads the results (`results.ResultReader`: the latest row per key) and redraws one
table per query as the catalogue's views show them: on a terminal with rich, refreshing as
updates arrive; without a terminal as plain periodic snapshots (``--once`` prints one snapshot
of everything published so far and exits). Named queries (``hhar process --query-file``) are
shown like the built-in ones: by default every one the processor has published, as they come.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..kafka_client import check_broker
from ..options import Commands, add_setting, settings_from_args
from ..processor.catalogue import CATALOGUE, ROWS_SHOWN, Query, with_named
from ..settings import Settings
from .results import PipelineFigures, ResultReader, ResultState

if TYPE_CHECKING:
    from rich.console import Group, RenderableType

WATCHED_QUERIES = tuple(CATALOGUE)


@dataclass
class Table:
    """One rendered query: a title, column names, rows of text cells (a page of them), and
    what the page cannot show: how many rows there are and their totals."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    first: int = 0
    """Position of the first row shown among the matched ones (0-based)."""
    matched: int = 0
    """Rows shown if every one were: those matching the search, if any."""
    summary: str | None = None
    """Totals over every row (`catalogue.View.summary`)."""

    @property
    def extent(self) -> str | None:
        """Which rows the page shows (``rows 1-20 of 70,000``), when not every one."""
        if self.first == 0 and len(self.rows) == self.matched:
            return None
        last = self.first + len(self.rows)
        return f"rows {self.first + 1 if self.rows else 0}-{last} of {self.matched:,}"


def build_tables(
    state: ResultState,
    queries: Iterable[str],
    catalogue: Mapping[str, Query] = CATALOGUE,
    rows: int | None = ROWS_SHOWN,
    search: str = "",
    first: int = 0,
) -> list[Table]:
    """Turn the current results into one table per query, as the catalogue's views show them
    (`catalogue`: with the named queries, `catalogue.with_named`): `rows` rows of each (every
    one: None) from the `first`, of those containing `search`."""
    tables = []
    for name in queries:
        view = catalogue[name].view
        records = state.records(name)
        title = view.title.format(name=name, count=len(records))
        page = view.page(records, first, rows, search)
        summary = view.summary(records) if view.summary is not None and records else None
        tables.append(
            Table(title, list(view.columns), page.rows, page.first, page.matched, summary)
        )
    return tables


def _heading(table: Table) -> str:
    """The title, with the rows shown and the totals when there are more rows than shown."""
    parts = [table.title, table.extent, table.summary]
    return " · ".join(part for part in parts if part)


def render_plain(tables: list[Table], status: str) -> str:
    """The snapshot as plain text: one aligned table per query, then the status line."""
    out: list[str] = []
    for table in tables:
        out.append(f"== {_heading(table)}")
        if not table.rows:
            out.append("(no results yet)")
            out.append("")
            continue
        widths = [
            max(len(column), *(len(row[i]) for row in table.rows))
            for i, column in enumerate(table.columns)
        ]
        for line in [table.columns, *table.rows]:
            cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            out.append("  ".join(cells).rstrip())
        out.append("")
    out.append(status)
    return "\n".join(out) + "\n"


def render_rich(tables: list[Table], status: str) -> Group:
    """The snapshot as rich tables for a terminal."""
    from rich.console import Group
    from rich.table import Table as RichTable
    from rich.text import Text

    parts: list[RenderableType] = []
    for table in tables:
        rich_table = RichTable(title=_heading(table), title_justify="left", expand=False)
        for column in table.columns:
            rich_table.add_column(column, justify="left")
        for row in table.rows:
            rich_table.add_row(*row)
        if not table.rows:
            rich_table.add_row(*(["(no results yet)"] + [""] * (len(table.columns) - 1)))
        parts.append(rich_table)
    parts.append(Text(status, style="bold"))
    return Group(*parts)


def status_line(figures: PipelineFigures, topic: str, with_rate: bool) -> str:
    """Events in, last batch, and how far the processor lags behind the events topic."""
    parts = [
        f"events topic {topic}: "
        + ("no answer yet" if figures.events is None else f"offset {figures.events}")
    ]
    if with_rate and figures.events_per_second is not None:
        parts.append(f"in {figures.events_per_second:,.0f} ev/s")
    batch = figures.last_batch
    parts.append(f"last batch {'-' if batch is None else batch}")
    parts.append(f"counted {figures.counted} + {figures.bad} bad")
    if figures.lag is not None:
        # Offsets include transaction markers: an upper bound of the unprocessed events.
        parts.append(f"lag <= {figures.lag}")
    return " | ".join(parts)


def register(subparsers: Commands) -> None:
    """Add the `watch` command."""
    parser = subparsers.add_parser(
        "watch",
        help="live view of the result topics (current state per key)",
        description="Show the processor's results: one table per query, refreshed as updates "
        "arrive. Without a terminal it prints plain snapshots every --interval seconds.",
    )
    add_setting(parser, "--bootstrap", field="bootstrap")
    add_setting(parser, "--topic", field="topic")
    add_setting(parser, "--results-prefix", field="results_prefix")
    parser.add_argument(
        "--query",
        action="append",
        metavar="NAME",
        help=f"a query to show, built-in or named (repeatable; default: all of "
        f"{', '.join(WATCHED_QUERIES)} and every named query)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=ROWS_SHOWN,
        metavar="N",
        help=f"rows of each table shown, in the view's order (default {ROWS_SHOWN}; 0: every "
        f"one); a longer table says how many rows it has and their totals",
    )
    parser.add_argument(
        "--search",
        default="",
        metavar="TEXT",
        help="show only the rows with a cell containing TEXT (any case), e.g. a device",
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, help="seconds between snapshots (default 2)"
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="read everything published so far, print one snapshot, exit",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: until Ctrl+C)",
    )
    parser.set_defaults(func=_watch)


def _watch(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.interval <= 0:
        msg = "--interval must be positive"
        raise ConfigError(msg)
    if args.rows < 0:
        msg = f"--rows must be 0 (every row) or more, not {args.rows}"
        raise ConfigError(msg)
    rows = args.rows or None
    check_broker(settings)  # one line for an unreachable broker or refused credentials
    if args.query:
        _check_names(settings, args.query)
    reader = ResultReader(settings, args.query or WATCHED_QUERIES, follow_named=not args.query)
    queries = reader.queries  # grows as named queries are defined
    try:
        if args.once:
            reader.read_to_end()
            sys.stdout.write(
                render_plain(
                    build_tables(reader.state, queries, _catalogue(reader), rows, args.search),
                    status_line(reader.figures(), settings.topic, False),
                )
            )
            return 0
        deadline = None if args.duration is None else time.monotonic() + args.duration
        if sys.stdout.isatty():
            _watch_live(reader, queries, args.interval, deadline, rows, args.search)
        else:
            while deadline is None or time.monotonic() < deadline:
                reader.poll(args.interval)
                sys.stdout.write(
                    render_plain(
                        build_tables(reader.state, queries, _catalogue(reader), rows, args.search),
                        status_line(reader.figures(), settings.topic, True),
                    )
                )
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
    return 0


def _catalogue(reader: ResultReader) -> dict[str, Query]:
    """The catalogue with the named queries the reader knows."""
    return with_named(reader.named.values())


def _check_names(settings: Settings, names: list[str]) -> None:
    """Refuse a query that is neither built in nor published by the processor (one line)."""
    from ..processor.named import read_definitions

    named = read_definitions(settings)
    unknown = [name for name in names if name not in CATALOGUE and name not in named]
    if unknown:
        msg = (
            f"unknown query {unknown[0]!r} (--query): built-in {', '.join(CATALOGUE)}; "
            f"named {', '.join(named) or 'none published yet (hhar process --query-file)'}"
        )
        raise ConfigError(msg)


def _watch_live(
    reader: ResultReader,
    queries: list[str],
    interval: float,
    deadline: float | None,
    rows: int | None,
    search: str,
) -> None:
    from rich.live import Live

    with Live(auto_refresh=False, screen=False) as live:
        while deadline is None or time.monotonic() < deadline:
            reader.poll(interval)
            tables = build_tables(reader.state, queries, _catalogue(reader), rows, search)
            status = status_line(reader.figures(), reader.settings.topic, True)
            live.update(render_rich(tables, status), refresh=True)
