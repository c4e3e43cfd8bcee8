"""SQL over the live events: statements, the tables a query sees, and what Spark can run.

A query sees two tables (`register_tables`):

- ``events``: the events topic as a stream of valid events, every `SensorEvent` column under
  its wire name, then Kafka's ``partition``, ``offset`` and ``timestamp`` and ``event_time``
  (``Arrival_Time`` as a timestamp, with the settings' watermark); messages that are not events
  stay out (the processor keeps them in ``bad_records``);
- ``history``: the static history (``--history``, default the data folder) with the event
  columns and ``event_time``, for stream-static joins as the exercise's task 13 does.

Statements are read by `parse_query_files` (``CREATE QUERY name AS SELECT ...;``, the named
queries `hhar process` runs) and `parse_statement` (one ``SELECT ...``, what `hhar sql` runs).
A statement may end with ``EMIT CHANGES`` (the default: a row each time it changes) or ``EMIT
FINAL`` (each row once, when the watermark has closed its event-time window: append mode).

`analyze` asks Spark about a query before any data is read: its syntax (with the position of
an error), the tables and columns it names, the output mode it runs in (append without
aggregation, update with one, complete for an ad hoc ORDER BY or LIMIT after one, append for
EMIT FINAL), whether Spark's `UnsupportedOperationChecker` accepts it in that mode (its
refusals said in words), and the key columns of its rows: the columns computed from the
grouping columns only (every row of a query without aggregation is its own key).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ..errors import InputDataError, SqlError
from ..schemas.queries import OutputMode, QueryColumn, envelope_clash
from ..settings import Settings, format_duration
from .parse import EVENT_COLUMNS, parse_events, valid_events
from .source import history_path, read_event_lines, read_event_stream

logger = logging.getLogger(__name__)

EVENTS = "events"
HISTORY = "history"
TABLES = (EVENTS, HISTORY)
KAFKA_COLUMNS = ("partition", "offset", "timestamp")
EVENT_TIME = "event_time"

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
NAME_MAX = 100
"""Longest query name: it ends a topic name (at most 249 characters with the prefix)."""


# --- the text of statements -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SqlSource:
    """Text that holds statements: a file, or what was typed."""

    text: str
    name: str = ""
    """The file as given (empty for a statement typed or given on the command line)."""

    def where(self, offset: int) -> str:
        """``queries.sql line 4, position 9`` for a character offset of the text."""
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        place = f"line {line}, position {column}"
        return f"{self.name} {place}" if self.name else place

    def line_of(self, offset: int) -> str:
        """``queries.sql line 4`` (or ``line 4``) for a character offset of the text."""
        return self.where(offset).rpartition(",")[0]


@dataclasses.dataclass(frozen=True)
class SqlStatement:
    """One query: a named one (``CREATE QUERY name AS ...``) or an ad hoc ``SELECT``."""

    sql: str
    """The query (``SELECT ...``) as written, without ``CREATE QUERY ... AS`` or ``EMIT``."""
    source: SqlSource
    offset: int
    """Where `sql` starts in the source's text."""
    name: str | None = None
    final: bool = False
    """``EMIT FINAL``: each row once, when its event-time window has closed."""
    description: str = ""
    """The ``--`` comments right above the statement."""
    start: int = 0
    """Where the whole statement starts in the source's text."""

    def where(self, position: int = 0) -> str:
        """Where a position of `sql` is in its source (``queries.sql line 4, position 9``)."""
        return self.source.where(self.offset + position)

    def label(self, position: int | None = None) -> str:
        """How an error names the statement: ``walking_share (queries.sql line 4)``; empty
        for a query given on the command line, when no position is known."""
        if position is None and not self.name and not self.source.name:
            return ""
        place = self.source.line_of(self.start) if position is None else self.where(position)
        return f"{self.name} ({place})" if self.name else place

    def error(self, words: str, position: int | None = None) -> SqlError:
        """`words` about this statement, after its `label`."""
        label = self.label(position)
        return SqlError(f"{label}: {words}" if label else words)

    @property
    def fingerprint(self) -> str:
        """A hash of the query without its comments, spacing and case (outside quotes), and
        whether it is final: equal for texts Spark runs alike."""
        text = normalized(self.sql) + (" emit final" if self.final else "")
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_QUOTES = "'\"`"


def _mask(text: str) -> str:
    """`text` with its comments blanked (newlines kept) and the contents of its quoted parts
    replaced by ``x``, so that keywords and ``;`` can be searched for at the right offsets.

    Raises:
        _TextError: for a quote or a ``/*`` comment that is never closed.
    """
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in _QUOTES:
            end = i + 1
            while end < n and text[end] != char:
                end += 2 if text[end] == "\\" and char != "`" else 1
            if end >= n:
                msg = f"a quote ({char}) is never closed: it opens at {{where}}"
                raise _TextError(msg, i)
            for j in range(i + 1, end):
                if out[j] != "\n":
                    out[j] = "x"
            i = end + 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                msg = "a /* comment is never closed: it opens at {where}"
                raise _TextError(msg, i)
            out[i:j] = [c if c == "\n" else " " for c in text[i:j]]
            i = j
        else:
            i += 1
    return "".join(out)


class _TextError(Exception):
    """A problem at an offset of a text (made a `SqlError` by the caller, who knows where)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def normalized(sql: str) -> str:
    """`sql` without comments, with one space for any spacing and lower case outside quotes."""
    out: list[str] = []
    spacing = True
    for original, masked in zip(sql, _mask(sql), strict=True):
        if masked.isspace():
            if not spacing:
                out.append(" ")
            spacing = True
            continue
        out.append(original if masked == "x" else masked.lower())
        spacing = False
    return "".join(out).strip()


@dataclasses.dataclass(frozen=True)
class _Span:
    start: int
    end: int
    description: str


def _statements(source: SqlSource) -> list[_Span]:
    """The statements of a text (split at ``;`` outside quotes and comments), each with the
    ``--`` comment lines right above it.

    Raises:
        SqlError: for a quote or comment that is never closed.
    """
    masked = _masked(source)
    spans: list[_Span] = []
    begin = 0
    for end in [*(m.start() for m in re.finditer(";", masked)), len(masked)]:
        chunk = masked[begin:end]
        if chunk.strip():
            start = begin + len(chunk) - len(chunk.lstrip())
            spans.append(_Span(start, end, _description(source.text, begin, start)))
        begin = end + 1
    return spans


def _masked(source: SqlSource) -> str:
    try:
        return _mask(source.text)
    except _TextError as error:
        raise SqlError(error.message.format(where=source.where(error.offset))) from None


def _description(text: str, begin: int, start: int) -> str:
    """The ``--`` comment lines right above `start` (none past `begin`, no blank line
    between), without their ``--``."""
    lines: list[str] = []
    end = text.rfind("\n", 0, start)
    while end >= begin:
        line_start = text.rfind("\n", 0, end) + 1
        line = text[line_start:end].strip()
        if line_start < begin or not line.startswith("--"):
            break
        lines.insert(0, line[2:].strip())
        end = line_start - 1
    return "\n".join(lines)


_CREATE = re.compile(r"\s*CREATE\s+QUERY\b\s*(?P<name>[^\s;]*)\s*", re.IGNORECASE)
_AS = re.compile(r"AS\b\s*", re.IGNORECASE)
_EMIT = re.compile(r"\s+EMIT\s+(?P<how>CHANGES|FINAL)\s*$", re.IGNORECASE)
_CREATE_FORM = "CREATE QUERY name AS SELECT ...;"


def _statement(source: SqlSource, span: _Span, named: bool) -> SqlStatement:
    masked = _masked(source)
    head = _CREATE.match(masked, span.start, span.end)
    name = None
    begin = span.start
    if head is not None:
        name = source.text[head.start("name") : head.end("name")]
        if name.upper() == "AS":
            name = ""
        keyword = _AS.match(masked, head.end() if name else head.start("name"), span.end)
        if not name or keyword is None:
            what = "a name" if not name else "AS"
            msg = (
                f"{source.where(head.end() if name else head.start('name'))}: expected {what} "
                f"in {_CREATE_FORM}"
            )
            raise SqlError(msg)
        begin = keyword.end()
    elif named:
        found = " ".join(source.text[span.start : span.end].split()[:3])
        msg = (
            f"{source.line_of(span.start)}: a query file holds statements of the form "
            f"{_CREATE_FORM}, not {found!r}"
        )
        raise SqlError(msg)
    end = span.end
    emit = _EMIT.search(masked, begin, end)
    if emit is not None and emit.start() >= begin:
        end = emit.start()
    sql = source.text[begin:end].rstrip()
    if not sql.strip():
        msg = f"{source.where(begin)}: expected a query (SELECT ...) here"
        raise SqlError(msg)
    return SqlStatement(
        sql=sql,
        source=source,
        offset=begin,
        name=name,
        final=emit is not None and emit.group("how").upper() == "FINAL",
        description=span.description,
        start=span.start,
    )


def parse_statement(text: str, final: bool = False, name: str = "") -> SqlStatement:
    """The one query of `text` (what `hhar sql` runs): ``SELECT ...`` (or a ``CREATE QUERY``,
    whose query it takes), optionally with ``EMIT CHANGES|FINAL``; `final` as ``EMIT FINAL``.

    Raises:
        SqlError: for no statement, several, or a text that is not one.
    """
    source = SqlSource(text, name)
    spans = _statements(source)
    where = f" in {name}" if name else ""
    if not spans:
        msg = f"no statement{where}: give a query, such as SELECT count(*) FROM events"
        raise SqlError(msg)
    if len(spans) > 1:
        msg = (
            f"{len(spans)} statements{where} ({source.line_of(spans[1].start)} starts the "
            f"second): hhar sql runs one at a time"
        )
        raise SqlError(msg)
    statement = _statement(source, spans[0], named=False)
    return dataclasses.replace(statement, final=True) if final else statement


def check_name(statement: SqlStatement, reserved: Iterable[str] = ()) -> None:
    """Refuse a named query's name that cannot end a topic name and name a table, or that is
    taken (`reserved`: the built-in queries and the processor's own streaming queries).

    Raises:
        SqlError: naming the rule.
    """
    name = statement.name or ""
    where = statement.source.line_of(statement.start)
    if not NAME.match(name) or len(name) > NAME_MAX:
        msg = (
            f"query name {name!r} ({where}) cannot end a topic name and name a table: use "
            f"lower-case letters, digits and _, starting with a letter (at most {NAME_MAX})"
        )
        raise SqlError(msg)
    if name in TABLES:
        msg = f"query name {name} ({where}) is the name of a table queries read: choose another"
        raise SqlError(msg)
    if name in set(reserved):
        msg = f"query name {name} ({where}) is taken by a built-in query: choose another"
        raise SqlError(msg)


def query_files(paths: Iterable[Path]) -> list[Path]:
    """The SQL files of `paths`: files as given, folders' ``*.sql`` files in name order.

    Raises:
        InputDataError: for a path that does not exist.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(item for item in path.glob("*.sql") if item.is_file())
        elif path.is_file():
            files.append(path)
        else:
            msg = f"query file {path} does not exist (--query-file, HHAR_QUERY_FILE)"
            raise InputDataError(msg)
    return files


def parse_query_files(paths: Iterable[Path], reserved: Iterable[str] = ()) -> list[SqlStatement]:
    """The named queries of the SQL files (or folders of them) `paths`, checked as far as
    their text goes: the form, the names (see `check_name`), no name twice, no empty file.

    Raises:
        SqlError: for the first problem, with its file and line.
        InputDataError: for a path that does not exist or a file that cannot be read.
    """
    reserved = set(reserved)
    seen: dict[str, SqlStatement] = {}
    statements: list[SqlStatement] = []
    for path in query_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            msg = f"cannot read query file {path}: {error}"
            raise InputDataError(msg) from None
        source = SqlSource(text, str(path))
        spans = _statements(source)
        if not spans:
            msg = f"query file {path} holds no statement: write {_CREATE_FORM}"
            raise SqlError(msg)
        for span in spans:
            statement = _statement(source, span, named=True)
            check_name(statement, reserved)
            assert statement.name is not None
            if statement.name in seen:
                first = seen[statement.name]
                msg = (
                    f"query name {statement.name} is defined twice: "
                    f"{first.source.line_of(first.start)} and "
                    f"{source.line_of(statement.start)}"
                )
                raise SqlError(msg)
            seen[statement.name] = statement
            statements.append(statement)
    return statements


# --- the tables -----------------------------------------------------------------------------
def events_table(messages: DataFrame, settings: Settings) -> DataFrame:
    """The ``events`` table over Kafka messages (a stream, or a static read for a batch): the
    valid events, Kafka's partition, offset and timestamp, and ``event_time`` with the
    settings' watermark (which a static frame ignores)."""
    events = valid_events(parse_events(messages), keep=KAFKA_COLUMNS)
    return events.withColumn(EVENT_TIME, F.timestamp_millis("Arrival_Time")).withWatermark(
        EVENT_TIME, format_duration(settings.watermark)
    )


def history_table(spark: SparkSession, settings: Settings) -> DataFrame | None:
    """The ``history`` table (cached: a stream-static join reads it every micro-batch), or None
    when the history does not exist."""
    try:
        lines = read_event_lines(spark, history_path(settings))
    except InputDataError:
        return None
    events = valid_events(parse_events(lines))
    return events.withColumn(EVENT_TIME, F.timestamp_millis("Arrival_Time")).cache()


def register_tables(
    spark: SparkSession,
    settings: Settings,
    messages: DataFrame | None = None,
    history: bool = True,
) -> None:
    """Register ``events`` (the events topic as a stream, or over `messages`) and, with
    `history`, ``history`` (when it exists) as temporary views of `spark`."""
    source = read_event_stream(spark, settings) if messages is None else messages
    events_table(source, settings).createOrReplaceTempView(EVENTS)
    if history:
        register_history(spark, settings)


def register_history(spark: SparkSession, settings: Settings) -> None:
    """Register ``history`` as a temporary view of `spark` (none when it does not exist)."""
    table = history_table(spark, settings)
    if table is None:
        spark.catalog.dropTempView(HISTORY)
    else:
        table.createOrReplaceTempView(HISTORY)


def reads_history(queries: Iterable[str]) -> bool:
    """True when a query may read ``history`` (names it outside quotes and comments): its
    table is only built for such queries (parsing it costs seconds at a busy start)."""
    return any(re.search(rf"\b{HISTORY}\b", _mask(sql), re.IGNORECASE) for sql in queries)


def table_columns() -> dict[str, tuple[str, ...]]:
    """The columns of each table a query sees."""
    return {
        EVENTS: (*EVENT_COLUMNS, *KAFKA_COLUMNS, EVENT_TIME),
        HISTORY: (*EVENT_COLUMNS, EVENT_TIME),
    }


# --- what Spark says of a query -------------------------------------------------------------
@dataclasses.dataclass
class Analysis:
    """What `analyze` found: the query as a DataFrame, and how it runs."""

    statement: SqlStatement
    frame: DataFrame
    output_mode: OutputMode | None
    """None for a query that reads no stream (``history`` only): it runs once, as a batch."""
    key_columns: tuple[str, ...]
    columns: tuple[QueryColumn, ...]
    window_end: str | None = None
    """For ``EMIT FINAL``: the column that holds the end of the event-time window (or the
    window itself, whose ``end`` field it is), which the watermark closes."""

    @property
    def streaming(self) -> bool:
        """True when the query reads the events stream."""
        return self.output_mode is not None


_POSITION = re.compile(r"\(line (\d+), pos (\d+)\)")


def _first_sentence(text: str) -> str:
    text = re.sub(r"^\[[A-Z_.0-9]+\]\s*", "", text.strip().splitlines()[0])
    text = re.sub(r"\s*SQLSTATE: \w+.*$", "", text)
    return text.rstrip(" .;")


def _unquote(name: str) -> str:
    return name.replace("`", "")


def _analysis_error(
    error: AnalysisException, statement: SqlStatement, settings: Settings
) -> SqlError:
    """One line for Spark's refusal to resolve `statement` (names what exists)."""
    condition = error.getCondition() or ""
    parameters = error.getMessageParameters() or {}
    contexts = error.getQueryContext()
    position = contexts[0].startIndex() if contexts else None
    tables = table_columns()
    if condition.startswith("TABLE_OR_VIEW_NOT_FOUND"):
        name = _unquote(parameters.get("relationName", "?"))
        if name.lower() == HISTORY:
            path = history_path(settings)
            why = "holds no data file" if path.exists() else "does not exist"
            words = f"table history is not there: {path} {why} (--history PATH)"
        else:
            words = f"unknown table {name}: the tables are events (the live events) and history"
        return statement.error(words, position)
    if condition.startswith("UNRESOLVED_COLUMN"):
        name = _unquote(parameters.get("objectName", "?"))
        proposal = _unquote(parameters.get("proposal", ""))
        hint = f" (did you mean {proposal.split(',')[0].strip()}?)" if proposal else ""
        words = (
            f"unknown column {name}{hint}; events has {', '.join(tables[EVENTS])}; "
            f"history has {', '.join(tables[HISTORY])}"
        )
    elif condition.startswith("UNRESOLVED_ROUTINE"):
        name = _unquote(parameters.get("routineName", "?"))
        words = f"unknown function {name} (Spark SQL's functions: SHOW FUNCTIONS)"
    else:
        words = _first_sentence(error.getMessage())
    return statement.error(words, position)


_REFUSALS: tuple[tuple[str, str], ...] = (
    (
        "Sorting is not supported",
        "ORDER BY cannot run on a stream, which has no end to sort at, except after an "
        "aggregation (GROUP BY), whose whole result is then sorted each batch",
    ),
    (
        "Limits are not supported",
        "LIMIT after an aggregation needs the whole result each batch: add ORDER BY (hhar sql "
        "then shows the top rows)",
    ),
    (
        "Distinct aggregations are not supported",
        "an aggregate over DISTINCT values (count(DISTINCT User)) cannot run on a stream, "
        "which would have to keep every value it saw: use approx_count_distinct(User)",
    ),
    (
        "NON_TIME_WINDOW_NOT_SUPPORTED_IN_STREAMING",
        "a window function (... OVER (...)) cannot run on a stream: group by an event-time "
        "window instead, GROUP BY window(event_time, '1 minute')",
    ),
    (
        "streaming aggregations without watermark",
        "EMIT FINAL (--final) emits each group once, when the watermark has closed it: the "
        "query must group by an event-time window, GROUP BY window(event_time, '10 minutes')",
    ),
    (
        "possible 'correctness' issue due to global watermark",
        "an aggregation or join over the result of another aggregation may drop rows as late "
        "on a stream: Spark runs it only with EMIT FINAL, each grouping by an event-time window",
    ),
    ("Offset is not supported", "OFFSET cannot run on a stream"),
    ("Sampling is not supported", "TABLESAMPLE cannot run on a stream"),
    (
        "Union between streaming and batch",
        "UNION of events and history cannot run: a stream and a table do not mix in a UNION",
    ),
    (
        "Except on a streaming DataFrame/Dataset on the right",
        "EXCEPT with events on its right cannot run on a stream (an event still to come "
        "could remove any row)",
    ),
    ("Intersect of streaming", "INTERSECT of two streams cannot run"),
    (
        "FullOuter joins with streaming",
        "a FULL OUTER JOIN of events and history cannot run on a stream (a history row "
        "without an event would have to wait for every event to come)",
    ),
    (
        "RightOuter join with a streaming",
        "a RIGHT OUTER JOIN with events on the left and history on the right cannot run on a "
        "stream: swap them and use LEFT OUTER JOIN",
    ),
    (
        "a streaming DataFrame/Dataset on the right",
        "this join cannot run with events on its right side and history on its left: swap "
        "the sides",
    ),
    (
        "not supported without a watermark in the join keys",
        "an outer join of two streams needs event_time in its condition (a time range), so "
        "that the watermark can tell when a row will find no partner",
    ),
)


def _refusal(error: Exception) -> str:
    """Spark's reason a stream cannot run a query, in words."""
    text = str(error)
    condition = getattr(error, "getCondition", lambda: None)() or ""
    for pattern, words in _REFUSALS:
        if pattern in text or pattern == condition:
            return words
    first = _first_sentence(text)
    return first.replace("streaming DataFrames/Datasets", "a stream").replace(
        "streaming DataFrame/Dataset", "a stream"
    )


def _seq(scala_seq: Any) -> list[Any]:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


def _ids(attributes: Any) -> set[int]:
    return {int(attribute.exprId().id()) for attribute in _seq(attributes.toSeq())}


@dataclasses.dataclass
class _Plan:
    """What the key columns are read from: Spark's analyzed plan, walked once."""

    output: list[tuple[str, int]]
    """The result's columns: name and expression id."""
    grouping: list[set[int]] | None
    """The ids each grouping expression of the aggregation nearest the result references
    (None without a streaming aggregation)."""
    aliases: dict[int, set[int] | None]
    """Alias id -> the ids its expression references (None: an aggregate's result)."""
    window_fields: dict[int, str]
    """Alias id -> ``start``/``end`` for an alias of a field of a watermarked window, and
    the window attributes themselves -> ``struct``."""
    sorted: bool
    """ORDER BY over the result (above any aggregation)."""
    limited: bool
    """LIMIT over the result (above any aggregation)."""


def _walk(frame: DataFrame) -> _Plan:
    plan = frame._jdf.queryExecution().analyzed()
    jvm = frame.sparkSession._jvm
    assert jvm is not None
    aggregate_expression = jvm.org.apache.spark.sql.catalyst.expressions.aggregate
    aliases: dict[int, set[int] | None] = {}
    window_fields: dict[int, str] = {}
    grouping: list[set[int]] | None = None
    ordered = limited = False
    stack = [plan]
    while stack:
        node = stack.pop()
        kind = node.nodeName()
        if grouping is None:
            ordered = ordered or kind == "Sort"
            limited = limited or kind in ("GlobalLimit", "LocalLimit")
        if grouping is None and node.isStreaming():
            if kind == "Aggregate":
                grouping = [_ids(e.references()) for e in _seq(node.groupingExpressions())]
            elif kind == "Distinct":
                grouping = [{int(a.exprId().id())} for a in _seq(node.output())]
        expressions = []
        if kind == "Project":
            expressions = _seq(node.projectList())
        elif kind == "Aggregate":
            expressions = _seq(node.aggregateExpressions())
        for expression in expressions:
            if expression.nodeName() != "Alias":
                continue
            alias = int(expression.exprId().id())
            is_aggregate = aggregate_expression.AggregateExpression.containsAggregate(expression)
            aliases[alias] = None if is_aggregate else _ids(expression.references())
            child = expression.child()
            if child.nodeName() == "GetStructField" and _is_window(child.child()):
                window_fields[alias] = str(child.name().get()) if child.name().isDefined() else ""
        for attribute in _seq(node.output()):
            if _is_window(attribute):
                window_fields[int(attribute.exprId().id())] = "struct"
        stack.extend(_seq(node.children()))
    output = [(str(a.name()), int(a.exprId().id())) for a in _seq(plan.output())]
    return _Plan(output, grouping, aliases, window_fields, ordered, limited)


def _is_window(expression: Any) -> bool:
    """An attribute of an event-time window over a watermarked column (Spark marks it)."""
    return bool(
        expression.nodeName() == "AttributeReference"
        and expression.metadata().contains("spark.watermarkDelayMs")
        and expression.dataType().typeName() == "struct"
    )


def _lineage(plan: _Plan, expression_id: int, grouping: set[int]) -> set[int] | None:
    """The grouping ids an output column is computed from, or None when it depends on anything
    else (an aggregate, a column the aggregation does not group by)."""
    if expression_id in grouping:
        return {expression_id}
    if expression_id not in plan.aliases:
        return None
    references = plan.aliases[expression_id]
    if references is None or not references:
        return None
    found: set[int] = set()
    for reference in references:
        below = _lineage(plan, reference, grouping)
        if below is None:
            return None
        found |= below
    return found


def _key_columns(plan: _Plan, statement: SqlStatement) -> tuple[str, ...]:
    """The columns computed from the grouping columns only; every grouping column must be
    among them (else rows of different groups would look the same).

    Raises:
        SqlError: naming the grouping columns the result does not show.
    """
    if plan.grouping is None:
        return tuple(name for name, _ in plan.output)
    grouping = set().union(*plan.grouping) if plan.grouping else set()
    keys: list[str] = []
    covered: set[int] = set()
    for name, expression_id in plan.output:
        found = _lineage(plan, expression_id, grouping)
        if found:
            keys.append(name)
            covered |= found
    missing = [ids for ids in plan.grouping if ids and not ids & covered]
    if missing:
        msg = (
            "the result does not show every grouping column, so rows of different groups "
            "would look alike: select each GROUP BY expression (and grouping_id() with CUBE, "
            "ROLLUP or GROUPING SETS)"
        )
        raise statement.error(msg)
    return tuple(keys)


def _window_end(plan: _Plan) -> str | None:
    """The output column that closes an ``EMIT FINAL`` row: the window's end, or the window."""
    for wanted in ("end", "struct"):
        for name, expression_id in plan.output:
            if plan.window_fields.get(expression_id) == wanted:
                return name
    return None


def _check_streaming(frame: DataFrame, output_mode: str) -> None:
    """Spark's `UnsupportedOperationChecker` on `frame`'s plan in `output_mode` (what
    ``writeStream.start()`` runs first); raises its refusal."""
    jvm = frame.sparkSession._jvm
    assert jvm is not None
    modes = jvm.org.apache.spark.sql.streaming.OutputMode
    mode = {"append": modes.Append, "update": modes.Update, "complete": modes.Complete}[
        output_mode
    ]()
    plan = frame._jdf.queryExecution().analyzed()
    checker = jvm.org.apache.spark.sql.catalyst.analysis.UnsupportedOperationChecker
    checker.checkForStreaming(plan, mode)


def _converted(error: Exception) -> Exception:
    """A py4j error of the JVM as pyspark's exception (pyspark converts only the errors of
    its own calls)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors.exceptions.captured import convert_exception

    if isinstance(error, Py4JJavaError):
        return convert_exception(error.java_exception)
    return error


def _columns(frame: DataFrame, statement: SqlStatement) -> tuple[QueryColumn, ...]:
    """The result's columns; refuses names that clash (with each other or the envelope).

    Raises:
        SqlError: naming the column.
    """
    columns = tuple(
        QueryColumn(name=field.name, type=field.dataType.simpleString(), nullable=field.nullable)
        for field in frame.schema.fields
    )
    seen: set[str] = set()
    for column in columns:
        if column.name.lower() in seen:
            msg = f"two columns are named {column.name}: name them apart with AS"
            raise statement.error(msg)
        seen.add(column.name.lower())
    clash = envelope_clash([column.name for column in columns])
    if clash is not None and statement.name is not None:
        msg = (
            f"column {clash} has the name of a field every result record carries (query, "
            f"batch_id): name it otherwise with AS"
        )
        raise statement.error(msg)
    return columns


def resolve(spark: SparkSession, statement: SqlStatement, settings: Settings) -> DataFrame:
    """`statement`'s query as a DataFrame over the registered tables (nothing is read).

    Raises:
        SqlError: for a syntax error (with Spark's position) or a name Spark cannot resolve.
    """
    try:
        return spark.sql(statement.sql)
    except ParseException as error:
        found = _POSITION.search(str(error))
        position = None
        if found:
            line, column = int(found.group(1)), int(found.group(2))
            starts = [0, *(m.end() for m in re.finditer("\n", statement.sql))]
            position = starts[min(line, len(starts)) - 1] + column
        sentence = _first_sentence(error.getMessage())
        msg = f"{sentence[:1].lower()}{sentence[1:]}"
        raise statement.error(msg, position) from None
    except AnalysisException as error:
        raise _analysis_error(error, statement, settings) from None


def analyze(
    spark: SparkSession, statement: SqlStatement, settings: Settings, named: bool = False
) -> Analysis:
    """Ask Spark whether and how a stream runs `statement`, before any data is read (the
    tables must be registered: `register_tables`).

    `named`: a named query, whose result is a keyed table: it must read the stream, and
    ORDER BY or LIMIT (which need complete output) have no place in it.

    Raises:
        SqlError: for a syntax error, an unknown table or column, what a stream cannot run
            (in words), a result whose rows have no key, clashing column names.
    """
    frame = resolve(spark, statement, settings)
    if not frame.isStreaming:
        if named:
            msg = "it reads no stream: a named query reads events"
            raise statement.error(msg)
        return Analysis(statement, frame, None, (), _columns(frame, statement))
    plan = _walk(frame)
    if statement.final:
        candidates: list[OutputMode] = ["append"]
    elif plan.grouping is None:
        candidates = ["append"]
    elif named:
        candidates = ["update"]
    else:
        candidates = ["update", "complete"]
    refusal: Exception | None = None
    output_mode: OutputMode | None = None
    for candidate in candidates:
        try:
            _check_streaming(frame, candidate)
        except Exception as error:  # noqa: BLE001 - py4j's error or pyspark's, said in words
            refusal = refusal or _converted(error)
            continue
        output_mode = candidate
        break
    if output_mode is None:
        assert refusal is not None
        words = _refusal(refusal)
        if named and (plan.sorted or plan.limited) and plan.grouping is not None:
            words = (
                "ORDER BY and LIMIT after an aggregation need the whole result each batch; a "
                "named query publishes a table keyed by its groups, which has no order: "
                "leave them out (and sort where you read it, as hhar sql does)"
            )
        raise statement.error(words)
    if named and plan.limited:
        msg = (
            "LIMIT would end a named query's rows for good after the first ones; a named "
            "query runs as long as the processor: leave it out (hhar sql --rows N stops after "
            "N rows)"
        )
        raise statement.error(msg)
    columns = _columns(frame, statement)
    keys = _key_columns(plan, statement)
    window_end = _window_end(plan) if output_mode == "append" else None
    return Analysis(statement, frame, output_mode, keys, columns, window_end)


def explain(frame: DataFrame) -> str:
    """Spark's plans of `frame` (parsed, analyzed, optimized, physical), as ``EXPLAIN
    EXTENDED`` prints them."""
    jvm = frame.sparkSession._jvm
    assert jvm is not None
    return str(jvm.PythonSQLUtils.explainString(frame._jdf.queryExecution(), "extended")).rstrip()


def describe_tables() -> list[str]:
    """Lines that say what each table holds (``\\d`` in `hhar sql`, `hhar queries`)."""
    columns = table_columns()
    return [
        f"events: the live events (valid only): {', '.join(columns[EVENTS])}; event_time is "
        f"Arrival_Time as a timestamp, with the watermark (HHAR_WATERMARK)",
        f"history: the static history (--history, default the data folder): "
        f"{', '.join(columns[HISTORY])}",
    ]


def column_names(columns: Sequence[QueryColumn]) -> list[str]:
    """The names of `columns`."""
    return [column.name for column in columns]


def complete_statements(text: str) -> tuple[list[str], str]:
    """What a prompt has read so far, split into the statements ended by ``;`` (outside quotes
    and comments) and the rest, still being typed."""
    try:
        masked = _mask(text)
    except _TextError:
        return [], text  # a quote or comment still open: the statement goes on
    end = masked.rfind(";")
    if end < 0:
        return [], text
    statements = [text[span.start : span.end] for span in _statements(SqlSource(text[: end + 1]))]
    return statements, text[end + 1 :]
