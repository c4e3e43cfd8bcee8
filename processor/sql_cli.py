"""`hhar queries`: the processor's queries, built-in and named, and what Spark makes of SQL.

- ``hhar queries list``: every query (state, rows out, last batch, topic), from the catalogue,
  the definitions topic and the processor's status file;
- ``hhar queries describe NAME``: a query's SQL (or function), output mode, key columns,
  columns and topic;
- ``hhar queries explain "SQL"``: Spark's plans of a query, and whether (and why not) a
  stream can run it;
- ``hhar queries check NAME``: a named query's results against its SQL run as a batch.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import ConfigError, HharError
from ..kafka_client import check_broker, list_topics, watermark_offsets
from ..options import Commands, add_setting, settings_from_args
from ..schemas.queries import QueryDefinition
from ..schemas.results import ENVELOPE_FIELDS
from ..settings import Settings
from .catalogue import CATALOGUE, Query

OUTPUT_MODES = {
    "append": "each row once (append)",
    "update": "a row each time its group changes (update)",
    "complete": "the whole result each batch (complete)",
}


def register(subparsers: Commands) -> None:
    """Add the `queries` command and its subcommands."""
    parser = subparsers.add_parser(
        "queries",
        help="list, describe, explain and check the processor's queries (built-in and named)",
        description="The processor's queries: the built-in ones and the named ones of its "
        "--query-file (CREATE QUERY name AS SELECT ...;), which it publishes to Kafka.",
    )
    commands = parser.add_subparsers(dest="queries_command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "list", help="every query: kind, state, rows out, last batch, topic"
    )
    _kafka_options(listing)
    add_setting(listing, "--checkpoint", field="checkpoint")
    listing.add_argument("--json", action="store_true", help="print JSON for machines")
    listing.set_defaults(func=_list)

    describe = commands.add_parser(
        "describe", help="a query's SQL, output mode, key columns, columns and topic"
    )
    describe.add_argument("name", help="a built-in or named query")
    _kafka_options(describe)
    describe.add_argument("--json", action="store_true", help="print JSON for machines")
    describe.set_defaults(func=_describe)

    explain = commands.add_parser(
        "explain", help="Spark's plans of a query, and whether and why a stream can run it"
    )
    explain.add_argument("statement", nargs="?", help="the query (SELECT ...)")
    explain.add_argument("-f", "--file", type=Path, help="read the query from this SQL file")
    explain.add_argument("--final", action="store_true", help="as EMIT FINAL")
    explain.add_argument(
        "--all", action="store_true", help="every plan Spark has (EXPLAIN EXTENDED, long)"
    )
    _spark_options(explain)
    explain.set_defaults(func=_explain)

    check = commands.add_parser(
        "check",
        help="a named query's results against its SQL run as a batch over the same events",
    )
    check.add_argument("name", help="a named query")
    _kafka_options(check)
    add_setting(check, "--checkpoint", field="checkpoint")
    _spark_options(check)
    check.set_defaults(func=_check)


def _kafka_options(parser: argparse.ArgumentParser) -> None:
    add_setting(parser, "--bootstrap", field="bootstrap")
    add_setting(parser, "--topic", field="topic")
    add_setting(parser, "--results-prefix", field="results_prefix")


def _spark_options(parser: argparse.ArgumentParser) -> None:
    add_setting(parser, "--history", field="history")
    add_setting(parser, "--data", field="data")
    add_setting(parser, "--watermark", field="watermark")
    add_setting(parser, "--master", field="master")
    add_setting(parser, "--driver-memory", field="driver_memory")
    add_setting(parser, "--shuffle-partitions", field="shuffle_partitions", type=int)


# --- list -------------------------------------------------------------------------------------
def _status_of(settings: Settings) -> dict[str, Any] | None:
    from .status import read_status

    try:
        return read_status(settings)
    except HharError:
        return None


def _stream_of(name: str, status: dict[str, Any] | None) -> dict[str, Any] | None:
    """The status of the streaming query that computes output `name`."""
    if status is None:
        return None
    queries: dict[str, dict[str, Any]] = status["queries"]
    if name in queries:
        return queries[name]
    return next((q for q in queries.values() if name in q.get("outputs", ())), None)


def _state(stream: dict[str, Any] | None, status: dict[str, Any] | None) -> str:
    if status is None:
        return "-"
    if stream is None:
        return "not run"
    if stream.get("exception"):
        return f"failed: {stream['exception']}"
    return "running" if stream.get("active") and status.get("running") else "stopped"


def _published(settings: Settings, topics: list[str]) -> dict[str, int | None]:
    """Records written to each topic (its end offsets, summed); None for a missing topic."""
    existing = list_topics(settings)
    return {
        topic: sum(end for _, end in watermark_offsets(settings, topic).values())
        if topic in existing
        else None
        for topic in topics
    }


def query_rows(
    settings: Settings, definitions: dict[str, QueryDefinition], status: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """One row per query, built-in then named: name, kind, state, rows out, last batch, topic."""
    entries: list[tuple[str, str]] = [(name, "built-in") for name in CATALOGUE]
    entries += [(name, f"named ({d.source})") for name, d in definitions.items()]
    topics = {name: settings.result_topic(name) for name, _ in entries}
    published = _published(settings, list(topics.values()))
    rows = []
    for name, kind in entries:
        stream = _stream_of(name, status)
        last = (stream or {}).get("last_progress") or {}
        rows.append(
            {
                "name": name,
                "kind": kind,
                "state": _state(stream, status),
                "rows_out": published[topics[name]],
                "last_batch": last.get("batch_id"),
                "topic": topics[name],
            }
        )
    return rows


def _list(args: argparse.Namespace) -> int:
    from .named import read_definitions

    settings = settings_from_args(args)
    check_broker(settings)
    rows = query_rows(settings, read_definitions(settings), _status_of(settings))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="queries", title_justify="left")
    for column in ("name", "kind", "state", "rows out", "last batch", "topic"):
        table.add_column(
            column, justify="right" if column in ("rows out", "last batch") else "left"
        )
    for row in rows:
        table.add_row(
            row["name"],
            row["kind"],
            row["state"],
            "-" if row["rows_out"] is None else f"{row['rows_out']:,}",
            "-" if row["last_batch"] is None else str(row["last_batch"]),
            row["topic"],
        )
    Console(file=sys.stdout, width=200).print(table)
    return 0


# --- describe -----------------------------------------------------------------------------------
def _unknown(name: str, definitions: dict[str, QueryDefinition]) -> ConfigError:
    named = ", ".join(definitions) or "none published"
    msg = f"unknown query {name!r}: built-in {', '.join(CATALOGUE)}; named {named}"
    return ConfigError(msg)


def describe_query(entry: Query, settings: Settings) -> dict[str, Any]:
    """What `hhar queries describe` shows of a catalogue entry."""
    from ..schemas.spark import to_spark_schema

    definition = entry.definition
    if definition is not None:
        return {
            "name": entry.name,
            "kind": "named",
            "source": definition.source,
            "description": definition.description,
            "sql": definition.sql,
            "output_mode": definition.output_mode,
            "key_columns": list(definition.key_columns),
            "columns": [column.model_dump() for column in definition.columns],
            "window_end": definition.window_end,
            "topic": definition.topic,
        }
    schema = to_spark_schema(entry.record)
    function = entry.on_events
    doc = (getattr(function, "__doc__", None) or entry.record.__doc__ or "").strip()
    return {
        "name": entry.name,
        "kind": "built-in",
        "source": f"processor/queries.py: {function.__name__}"
        if function
        else "processor/parse.py",
        "description": doc.splitlines()[0] if doc else "",
        "sql": None,
        "output_mode": entry.output_mode,
        "key_columns": list(entry.record.key_fields),
        "columns": [
            {"name": f.name, "type": f.dataType.simpleString(), "nullable": f.nullable}
            for f in schema.fields
            if f.name not in ENVELOPE_FIELDS
        ],
        "window_end": None,
        "topic": entry.topic(settings),
    }


def _describe(args: argparse.Namespace) -> int:
    from .catalogue import with_named
    from .named import read_definitions

    settings = settings_from_args(args)
    check_broker(settings)
    definitions = read_definitions(settings)
    entries = with_named(definitions.values())
    if args.name not in entries:
        raise _unknown(args.name, definitions)
    shown = describe_query(entries[args.name], settings)
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    print(f"{shown['name']} ({shown['kind']} query, {shown['source']})")
    for line in shown["description"].splitlines():
        print(f"  {line}")
    print(f"topic:       {shown['topic']}")
    print(f"output mode: {OUTPUT_MODES[shown['output_mode']]}")
    print(f"key columns: {', '.join(shown['key_columns']) or '(none: one row)'}")
    columns = ", ".join(f"{c['name']} {c['type']}" for c in shown["columns"])
    print(f"columns:     {columns}")
    if shown["window_end"]:
        print(f"final when:  the watermark passes {shown['window_end']}")
    if shown["sql"]:
        print("SQL:")
        for line in shown["sql"].splitlines():
            print(f"  {line}")
    return 0


# --- explain ------------------------------------------------------------------------------------
_VIEW = re.compile(r"View \(`(events|history)`")


def fold_views(plan: str) -> str:
    """A plan with the insides of the events and history views left out (the project's
    parsing of every message, which would fill pages)."""
    out: list[str] = []
    folded_at: int | None = None
    for line in plan.splitlines():
        indent = len(line) - len(line.lstrip(" :+-"))
        if folded_at is not None:
            if not line.strip() or indent <= folded_at:
                folded_at = None
            else:
                continue
        out.append(line)
        found = _VIEW.search(line)
        if found:
            folded_at = indent
            what = "the events topic, parsed" if found.group(1) == "events" else "the history"
            out.append(f"{' ' * (indent + 3)}+- ... ({what}: processor/sql.py)")
    return "\n".join(out)


def _statement_text(args: argparse.Namespace) -> tuple[str, str]:
    if (args.statement is None) == (args.file is None):
        msg = "give a query or -f FILE (one of them)"
        raise ConfigError(msg)
    if args.file is None:
        return args.statement, ""
    try:
        return args.file.read_text(encoding="utf-8"), str(args.file)
    except (OSError, UnicodeDecodeError) as error:
        msg = f"cannot read {args.file}: {error}"
        raise ConfigError(msg) from None


def _explain(args: argparse.Namespace) -> int:
    from ..errors import SqlError
    from .session import build_session
    from .sql import (
        analyze,
        explain,
        parse_statement,
        reads_history,
        register_tables,
        resolve,
    )

    settings = settings_from_args(args)
    text, source = _statement_text(args)
    statement = parse_statement(text, args.final, source)
    spark = build_session(settings, app_name="hhar-queries")
    try:
        register_tables(spark, settings, history=reads_history([statement.sql]))
        plan = explain(resolve(spark, statement, settings))
        print(plan if args.all else fold_views(plan.split("\n== Optimized")[0]))
        print()
        try:
            analysis = analyze(spark, statement, settings)
        except SqlError as error:
            print(f"a stream cannot run it: {error}")
            return 1
    finally:
        spark.stop()
    if analysis.output_mode is None:
        print("it reads no stream: hhar sql runs it once, as a batch")
        return 0
    keys = ", ".join(analysis.key_columns) or "(none: one row)"
    print(
        f"a stream runs it: {OUTPUT_MODES[analysis.output_mode]}; key columns: {keys}"
        + (
            f"; final when the watermark passes {analysis.window_end}"
            if analysis.window_end
            else ""
        )
    )
    return 0


# --- check --------------------------------------------------------------------------------------
def _check(args: argparse.Namespace) -> int:
    from .check import check_query
    from .named import read_definitions
    from .session import build_session

    settings = settings_from_args(args)
    check_broker(settings)
    definitions = read_definitions(settings)
    if args.name not in definitions:
        if args.name in CATALOGUE:
            msg = (
                f"{args.name} is a built-in query: the tests hold it equal to a batch run "
                f"(hhar queries check compares named queries)"
            )
            raise ConfigError(msg)
        raise _unknown(args.name, definitions)
    spark = build_session(settings, app_name="hhar-queries")
    try:
        result = check_query(spark, settings, definitions[args.name])
    finally:
        spark.stop()
    print(result.summary())
    for line in result.details():
        print(f"  {line}")
    return 0 if result.equal else 1
