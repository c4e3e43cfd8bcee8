"""`hhar sql`: ask the live events a question in SQL, and watch the answer change.

``hhar sql "SELECT ..."`` (or ``-f FILE.sql``) runs one query over the events topic
(`processor.adhoc`); without either, a prompt reads statements ended by ``;`` (line editing and
history by readline; ``\\q`` or Ctrl+D leaves, ``\\d`` lists the tables). On a terminal the
answer is a table redrawn in place after each micro-batch, the rows the batch changed marked
(``+`` new, ``*`` changed), as a ksqlDB push query or the Flink SQL client's table mode show
it; ``--changelog`` prints each change as a JSON line instead (for pipes and ``jq``); without a
terminal the final table is printed when the query stops. ``--seconds N``, ``--rows N`` or
Ctrl+C stop it; its temporary checkpoint is removed and nothing is written to Kafka.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..daemons import stop_on_signals
from ..errors import ConfigError, HharError, QueryFailedError
from ..kafka_client import check_broker
from ..options import Commands, add_setting, settings_from_args
from ..processor.catalogue import cell_text, sortable
from ..schemas.queries import OutputMode
from ..schemas.results import ENVELOPE_FIELDS, ResultRecord
from ..settings import Settings
from .watch import Table, render_plain

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from rich.console import RenderableType

    from ..processor.sql import Analysis, SqlStatement

logger = logging.getLogger(__name__)

MARKS = {"insert": "+", "update": "*"}
"""How a table marks the rows of the last micro-batch."""
_POLL = 0.2
APPEND_KEPT = 10_000
"""Rows of an append query (no aggregation) kept for the table: the newest."""
BATCH_EVENTS = 50_000
"""Events a micro-batch of `hhar sql` reads at most, unless --max-offsets-per-trigger says:
the first rows of a query over a large topic come after its first 50,000 events, and the
answer catches up batch by batch."""
HISTORY_FILE = ".hhar_sql_history"
"""The prompt's history, in the home folder (as ~/.python_history, ~/.psql_history)."""
_ENVELOPE = set(ENVELOPE_FIELDS)


@dataclass(frozen=True)
class Change:
    """One row of one micro-batch: new (insert), changed (update) or gone (delete)."""

    batch_id: int
    kind: str
    record: ResultRecord

    def json_line(self) -> str:
        """The change as one JSON line: ``{"batch_id": 3, "change": "update", "row": {...}}``."""
        row = self.record.model_dump(mode="json", by_alias=True, exclude=_ENVELOPE)
        return json.dumps({"batch_id": self.batch_id, "change": self.kind, "row": row})


@dataclass
class ResultTable:
    """The current answer of a query, folded from its micro-batches as its output mode says:
    append adds every row, update replaces the rows of the same key, complete replaces the
    whole table (rows that are gone are deleted)."""

    columns: list[str]
    key_columns: list[str]
    output_mode: OutputMode
    rows: dict[str, ResultRecord] = field(default_factory=dict)
    marks: dict[str, str] = field(default_factory=dict)
    """Key -> how the last micro-batch that changed anything changed the row."""
    batches: int = 0
    changes: int = 0
    last_batch: int | None = None

    def _key(self, record: ResultRecord, position: int) -> str:
        if self.output_mode == "append":
            return str(self.changes + position)
        values = record.model_dump(mode="json", by_alias=True)
        return json.dumps([values[name] for name in self.key_columns])

    def apply(self, batch_id: int, records: list[ResultRecord]) -> list[Change]:
        """Fold one micro-batch in; the changes it made."""
        changes: list[Change] = []
        seen: dict[str, ResultRecord] = {}
        for position, record in enumerate(records):
            key = self._key(record, position)
            before = self.rows.get(key)
            if before is None or _row(before) != _row(record):
                changes.append(Change(batch_id, "insert" if before is None else "update", record))
            seen[key] = record
        if self.output_mode == "complete":
            changes += [
                Change(batch_id, "delete", record)
                for key, record in self.rows.items()
                if key not in seen
            ]
            self.rows = seen
        else:
            self.rows.update(seen)
        if self.output_mode == "append" and len(self.rows) > APPEND_KEPT:
            for key in list(self.rows)[: len(self.rows) - APPEND_KEPT]:
                del self.rows[key]
        if changes:  # a batch that changed nothing (a no-data batch) leaves the marks
            self.marks = self._marks(seen, changes)
        self.batches += 1
        self.changes += len(changes)
        self.last_batch = batch_id
        return changes

    @property
    def size(self) -> int:
        """The rows of the answer (of an append query: every row it has given)."""
        return self.changes if self.output_mode == "append" else len(self.rows)

    @staticmethod
    def _marks(seen: dict[str, ResultRecord], changes: list[Change]) -> dict[str, str]:
        """Key -> mark of the rows the batch inserted or changed."""
        marked = {id(c.record): MARKS[c.kind] for c in changes if c.kind in MARKS}
        return {key: marked[id(record)] for key, record in seen.items() if id(record) in marked}

    def ordered(self) -> list[tuple[str, ResultRecord]]:
        """The rows in the order shown: arrival (append), Spark's (complete, which an ORDER
        BY sorts), the key columns' (update)."""
        items = list(self.rows.items())
        if self.output_mode == "update":
            items.sort(key=lambda item: [sortable(_row(item[1])[n]) for n in self.key_columns])
        return items

    def cells(self, limit: int | None = None) -> tuple[list[list[str]], list[str], int]:
        """The rows shown (the newest `limit` for append, else the first), their marks, and
        how many rows were left out."""

        items = self.ordered()
        left_out = 0
        if limit is not None and len(items) > limit:
            left_out = len(items) - limit
            items = items[-limit:] if self.output_mode == "append" else items[:limit]
        rows = [[cell_text(_row(record)[name]) for name in self.columns] for _, record in items]
        marks = [self.marks.get(key, "") for key, _ in items]
        return rows, marks, left_out


def _row(record: ResultRecord) -> dict[str, Any]:
    values: dict[str, Any] = record.model_dump(by_alias=True, exclude=_ENVELOPE)
    return values


# --- showing the answer ------------------------------------------------------------------------
class View:
    """Where the answer goes: `update` after each micro-batch, `tick` while waiting, `close`
    once the query stopped."""

    def open(self) -> None:
        """Before the first batch."""

    def update(self, table: ResultTable, changes: list[Change], status: str) -> None:
        """After a micro-batch."""

    def tick(self, table: ResultTable, status: str) -> None:
        """While no micro-batch comes."""

    def close(self, table: ResultTable, status: str) -> None:
        """Once the query stopped."""


class ChangelogView(View):
    """Each change as a JSON line on stdout (flushed: a pipe reader sees it at once)."""

    def update(self, table: ResultTable, changes: list[Change], status: str) -> None:
        """Print the batch's changes."""
        for change in changes:
            sys.stdout.write(change.json_line() + "\n")
        sys.stdout.flush()


class PlainView(View):
    """Without a terminal: the final table as plain text."""

    def __init__(self, title: str) -> None:
        """A view titled `title` (the query)."""
        self.title = title

    def close(self, table: ResultTable, status: str) -> None:
        """Print the answer as it stands."""
        rows, marks, _ = table.cells()
        sys.stdout.write(render_plain([Table(self.title, table.columns, rows)], status))
        sys.stdout.flush()


class LiveView(View):
    """On a terminal: the table redrawn in place (rich's Live), the last batch's rows marked."""

    def __init__(self, title: str) -> None:
        """A view titled `title` (the query)."""
        from rich.console import Console
        from rich.live import Live

        self.title = title
        self.console = Console()
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self._ticked = 0.0

    def _render(self, table: ResultTable, status: str) -> RenderableType:
        from rich.console import Group
        from rich.table import Table as RichTable
        from rich.text import Text

        limit = max(5, self.console.height - 8)
        rows, marks, left_out = table.cells(limit)
        shown = RichTable(expand=False)
        shown.add_column("", width=1, no_wrap=True)
        for column in table.columns:
            shown.add_column(column, no_wrap=True)
        for mark, row in zip(marks, rows, strict=True):
            shown.add_row(mark, *row, style="bold yellow" if mark else None)
        if not rows:
            shown.add_row("", *(["(no rows yet)"] + [""] * (len(table.columns) - 1)))
        title = Text(self.title, style="italic", overflow="ellipsis", no_wrap=True)
        parts: list[RenderableType] = [title, shown]
        if left_out:
            parts.append(Text(f"... {left_out} more rows (--rows, or a narrower query)"))
        parts.append(Text(status, style="bold"))
        return Group(*parts)

    def open(self) -> None:
        """Start drawing."""
        self.live.start()

    def update(self, table: ResultTable, changes: list[Change], status: str) -> None:
        """Redraw with the batch's rows marked."""
        self.live.update(self._render(table, status), refresh=True)

    def tick(self, table: ResultTable, status: str) -> None:
        """Redraw the status line (its clock), at most once a second."""
        now = time.monotonic()
        if now - self._ticked >= 1.0:
            self._ticked = now
            self.live.update(self._render(table, status), refresh=True)

    def close(self, table: ResultTable, status: str) -> None:
        """Draw the last state and leave it on the screen."""
        self.live.update(self._render(table, status), refresh=True)
        self.live.stop()


# --- running a statement ------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """When a query stops by itself."""

    seconds: float | None = None
    rows: int | None = None


def _status(table: ResultTable, events: int, started: float, state: str) -> str:
    """The line under the table; the events read are Spark's progress, which comes after the
    batch's rows (none yet: not shown)."""
    batch = "-" if table.last_batch is None else table.last_batch
    read = f"{events:,} events read · " if events else ""
    return (
        f"{state} · batch {batch} · {table.size:,} rows · {table.changes:,} changes · "
        f"{read}{time.monotonic() - started:,.0f} s"
    )


def _title(statement: SqlStatement, analysis: Analysis) -> str:
    sql = " ".join(statement.sql.split())
    mode = analysis.output_mode or "batch"
    return f"{sql[:100]}{'...' if len(sql) > 100 else ''}  [{mode}]"


def _view(changelog: bool, title: str) -> View:
    if changelog:
        return ChangelogView()
    return LiveView(title) if sys.stdout.isatty() else PlainView(title)


def run_statement(
    spark: SparkSession,
    settings: Settings,
    statement: SqlStatement,
    limits: Limits,
    changelog: bool,
) -> None:
    """Run one query until its limits, Ctrl+C or its end; show its answer as it changes.

    Raises:
        SqlError: for a query Spark cannot run on a stream (before any data is read).
        QueryFailedError: when the query fails while running.
    """
    from ..processor.adhoc import AdHocQuery, batch_records
    from ..processor.source import check_events_topic
    from ..processor.sql import analyze

    analysis = analyze(spark, statement, settings)
    columns = [column.name for column in analysis.columns]
    table = ResultTable(columns, list(analysis.key_columns), analysis.output_mode or "append")
    view = _view(changelog, _title(statement, analysis))
    started = time.monotonic()
    if not analysis.streaming:
        records = batch_records(analysis)
        view.update(table, table.apply(0, records), "")
        view.close(table, _status(table, 0, started, "done (a batch: the query reads no stream)"))
        return
    check_events_topic(settings)
    query = AdHocQuery(analysis, settings)
    stop = threading.Event()
    state = "stopped"
    with stop_on_signals(stop, "stopping the query"):
        try:
            query.start()
            view.open()
            state = _follow(query, table, view, limits, stop, started)
        finally:
            query.stop()
            view.close(table, _status(table, query.events_read, started, state))


def _follow(
    query: Any,
    table: ResultTable,
    view: View,
    limits: Limits,
    stop: threading.Event,
    started: float,
) -> str:
    """Show the query's batches until a limit, a stop request or its end; how it ended."""
    deadline = None if limits.seconds is None else started + limits.seconds
    while not stop.is_set():
        if deadline is not None and time.monotonic() >= deadline:
            return f"stopped after {limits.seconds:g} s"
        batch = query.next_batch(_POLL)
        if batch is None:
            failure = query.failure()
            if failure is not None:
                msg = f"the query failed: {failure}"
                raise QueryFailedError(msg)
            view.tick(table, _status(table, query.events_read, started, "running"))
            continue
        before = table.changes
        changes = table.apply(*batch)
        if limits.rows is not None:
            changes = changes[: max(0, limits.rows - before)]
        view.update(table, changes, _status(table, query.events_read, started, "running"))
        if limits.rows is not None and table.changes >= limits.rows:
            return f"stopped after {limits.rows:,} rows"
    return "stopped"


# --- the prompt ---------------------------------------------------------------------------------
class Session:
    """Spark for the prompt: started in the background while the first statement is typed."""

    def __init__(self, settings: Settings) -> None:
        """Start building the session now."""
        self.settings = settings
        self._spark: SparkSession | None = None
        self._error: BaseException | None = None
        self._history = False
        self._thread = threading.Thread(target=self._build, name="hhar-sql-spark", daemon=True)
        self._thread.start()

    def _build(self) -> None:
        from ..processor.session import build_session
        from ..processor.sql import register_tables

        try:
            spark = build_session(self.settings, app_name="hhar-sql")
            register_tables(spark, self.settings, history=False)
            self._spark = spark
        except BaseException as error:  # noqa: BLE001 - raised again where it is waited for
            self._error = error

    def get(self, statement: SqlStatement) -> SparkSession:
        """The session, once built, with the ``history`` table when `statement` reads it.

        Raises:
            HharError: how building it failed.
        """
        from ..processor.sql import reads_history, register_history

        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._spark is not None
        if not self._history and reads_history([statement.sql]):
            register_history(self._spark, self.settings)
            self._history = True
        return self._spark

    def stop(self) -> None:
        """Stop Spark (once it was built)."""
        self._thread.join()
        if self._spark is not None:
            self._spark.stop()


HELP = """Type a query over the live events, ended by ; (it runs until Ctrl+C, --seconds or
--rows), for example:
  SELECT gt, count(*) AS events FROM events GROUP BY gt;
  SELECT window.start, count(*) FROM events GROUP BY window(event_time, '1 minute') EMIT FINAL;
\\d lists the tables, \\q or Ctrl+D leaves."""


def _prompt(settings: Settings, limits: Limits, changelog: bool, final: bool) -> None:
    """Read statements ended by ``;`` and run each; errors are one line and the prompt goes on."""
    import readline

    from ..processor.sql import complete_statements, describe_tables, parse_statement

    history = Path.home() / HISTORY_FILE
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    session = Session(settings)
    print("hhar sql: queries over the live events; \\? for help, \\q or Ctrl+D to leave")
    commands: dict[str, Callable[[], None]] = {
        "\\d": lambda: print("\n".join(describe_tables())),
        "\\?": lambda: print(HELP),
        "help": lambda: print(HELP),
    }
    typed = ""
    try:
        while True:
            try:
                line = input("hhar> " if not typed.strip() else "   -> ")
            except EOFError:
                print()
                return
            except KeyboardInterrupt:
                print()
                typed = ""
                continue
            if not typed.strip() and line.strip().rstrip(";") in (*commands, "\\q", "quit"):
                if line.strip().rstrip(";") in ("\\q", "quit"):
                    return
                commands[line.strip().rstrip(";")]()
                continue
            typed += line + "\n"
            statements, typed = complete_statements(typed)
            for text in statements:
                try:
                    statement = parse_statement(text, final)
                    run_statement(session.get(statement), settings, statement, limits, changelog)
                except HharError as error:
                    print(f"error: {error}", file=sys.stderr)
    finally:
        _save_history(history)
        session.stop()


def _save_history(path: Path) -> None:
    import readline

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.set_history_length(1000)
        readline.write_history_file(path)
    except OSError as error:
        logger.debug("history not saved: %s", error)


# --- the command ------------------------------------------------------------------------------
def register(subparsers: Commands) -> None:
    """Add the `sql` command."""
    parser = subparsers.add_parser(
        "sql",
        help="ask the live events a question in SQL and watch the answer change",
        description="Run a SQL query over the events topic (table events: every event column, "
        "partition, offset, timestamp, event_time with the watermark; table history: the "
        "static history) and show its answer as it changes. Without a query, a prompt reads "
        "statements ended by ;. Append a query with EMIT FINAL (or --final) to see each "
        "event-time window once, when the watermark closes it.",
    )
    parser.add_argument("statement", nargs="?", help="the query (SELECT ...)")
    parser.add_argument("-f", "--file", type=Path, help="read the query from this SQL file")
    parser.add_argument("--changelog", action="store_true", help="print each change as a JSON line")
    add_setting(
        parser,
        "--from",
        field="starting_offsets",
        choices=["earliest", "latest"],
        metavar="{earliest,latest}",
        help="read the events topic from its start or only new events",
    )
    parser.add_argument("--seconds", type=float, help="stop after this many seconds")
    parser.add_argument("--rows", type=int, help="stop after this many rows (changes)")
    parser.add_argument(
        "--final",
        action="store_true",
        help="each row once, when the watermark has closed its event-time window (EMIT FINAL)",
    )
    add_setting(parser, "--bootstrap", field="bootstrap")
    add_setting(parser, "--topic", field="topic")
    add_setting(parser, "--history", field="history")
    add_setting(parser, "--data", field="data")
    add_setting(parser, "--watermark", field="watermark")
    add_setting(parser, "--trigger", field="trigger", help="micro-batch interval (1s, 500ms)")
    add_setting(
        parser,
        "--max-offsets-per-trigger",
        field="max_offsets_per_trigger",
        type=int,
        help=f"events a micro-batch reads at most (hhar sql: {BATCH_EVENTS:,} when unset)",
    )
    add_setting(
        parser,
        "--checkpoint",
        field="checkpoint",
        help="where the temporary checkpoint goes on a cluster (a local master uses the "
        "system's temporary folder)",
    )
    add_setting(parser, "--master", field="master")
    add_setting(parser, "--shuffle-partitions", field="shuffle_partitions", type=int)
    add_setting(parser, "--driver-memory", field="driver_memory")
    parser.set_defaults(func=_sql)


def _limits(args: argparse.Namespace) -> Limits:
    if args.seconds is not None and args.seconds <= 0:
        msg = "--seconds must be positive"
        raise ConfigError(msg)
    if args.rows is not None and args.rows <= 0:
        msg = "--rows must be positive"
        raise ConfigError(msg)
    return Limits(args.seconds, args.rows)


def _sql(args: argparse.Namespace) -> int:
    from ..processor.sql import parse_statement

    settings = settings_from_args(args)
    if settings.max_offsets_per_trigger is None:
        settings = settings.changed(max_offsets_per_trigger=BATCH_EVENTS)
    limits = _limits(args)
    if args.statement is not None and args.file is not None:
        msg = "give a query or -f FILE, not both"
        raise ConfigError(msg)
    text = args.statement
    if args.file is not None:
        try:
            text = args.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            msg = f"cannot read {args.file}: {error}"
            raise ConfigError(msg) from None
    statement = None
    if text is not None:
        statement = parse_statement(text, args.final, str(args.file or ""))
    check_broker(settings)
    if statement is None:
        _prompt(settings, limits, args.changelog, args.final)
        return 0
    from ..processor.session import build_session
    from ..processor.sql import reads_history, register_tables

    spark = build_session(settings, app_name="hhar-sql")
    try:
        register_tables(spark, settings, history=reads_history([statement.sql]))
        run_statement(spark, settings, statement, limits, args.changelog)
    finally:
        spark.stop()
    return 0
