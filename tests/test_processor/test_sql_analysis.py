"""What Spark makes of a query before any data is read (`sql.analyze`): the output mode, the
key columns, and every refusal as one line in words, with its place in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hhar_stream.errors import SqlError
from hhar_stream.processor.sql import (
    analyze,
    parse_query_files,
    parse_statement,
    register_tables,
)
from hhar_stream.settings import Settings

from .helpers import make_events

pytestmark = [pytest.mark.spark]


@pytest.fixture(scope="module")
def tables(spark, base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The events table over a topic nobody reads (analysis reads nothing) and a history."""
    history = tmp_path_factory.mktemp("history")
    lines = [event.to_json() for event in make_events(20)]
    (history / "part-0.json").write_text("\n".join(lines) + "\n")
    settings = base_settings.changed(**{"history": history, "topic": "never-read"})
    register_tables(spark, settings)
    return settings


def run(spark, settings: Settings, sql: str, final: bool = False, named: bool = True):
    text = f"CREATE QUERY q AS {sql}" if named else sql
    return analyze(spark, parse_statement(text, final=final), settings, named=named)


@pytest.mark.parametrize(
    ("sql", "final", "mode", "keys"),
    [
        ("SELECT count(*) AS n FROM events", False, "update", ()),
        (
            "SELECT Device, gt, count(*) AS n FROM events GROUP BY Device, gt",
            False,
            "update",
            ("Device", "gt"),
        ),
        (
            "SELECT Device, gt, grouping_id() AS g, count(*) AS n FROM events "
            "GROUP BY CUBE (Device, gt)",
            False,
            "update",
            ("Device", "gt", "g"),
        ),
        (
            "SELECT lower(Device) AS d, max(x) AS m FROM events GROUP BY lower(Device)",
            False,
            "update",
            ("d",),
        ),
        (
            "SELECT Device, n FROM (SELECT Device, count(*) AS n FROM events GROUP BY Device) "
            "WHERE n > 5",
            False,
            "update",
            ("Device",),
        ),
        ("SELECT DISTINCT Device, gt FROM events", False, "update", ("Device", "gt")),
        ("SELECT Device, x FROM events WHERE x > 1", False, "append", ("Device", "x")),
        (
            "SELECT e.Device, h.n FROM events e JOIN (SELECT Device, count(*) AS n FROM history "
            "GROUP BY Device) h ON e.Device = h.Device",
            False,
            "append",
            ("Device", "n"),
        ),
        (
            "SELECT window.start AS s, window.end AS e, count(*) AS n FROM events "
            "GROUP BY window(event_time, '1 minute')",
            True,
            "append",
            ("s", "e"),
        ),
    ],
)
def test_output_mode_and_key_columns(spark, tables, sql, final, mode, keys) -> None:
    analysis = run(spark, tables, sql, final)
    assert (analysis.output_mode, analysis.key_columns) == (mode, keys)


def test_the_window_end_closes_a_final_row(spark, tables) -> None:
    window = "GROUP BY window(event_time, '1 minute')"
    ends = run(spark, tables, f"SELECT window.end AS e, count(*) AS n FROM events {window}", True)
    assert ends.window_end == "e"
    whole = run(spark, tables, f"SELECT window, count(*) AS n FROM events {window}", True)
    assert (whole.window_end, whole.columns[0].type) == (
        "window",
        "struct<start:timestamp,end:timestamp>",
    )


def test_an_ad_hoc_query_may_sort_after_an_aggregation(spark, tables) -> None:
    sql = "SELECT gt, count(*) AS n FROM events GROUP BY gt ORDER BY n DESC LIMIT 3"
    assert run(spark, tables, sql, named=False).output_mode == "complete"
    batch = run(spark, tables, "SELECT count(*) AS n FROM history", named=False)
    assert batch.output_mode is None and not batch.streaming


WHAT_EXISTS = (
    "events has Arrival_Time, Creation_Time, Device, Index, Model, User, gt, x, y, z, "
    "partition, offset, timestamp, event_time; history has Arrival_Time, Creation_Time, "
    "Device, Index, Model, User, gt, x, y, z, event_time"
)


@pytest.mark.parametrize(
    ("sql", "final", "error"),
    [
        ("SELEC x FROM events", False, "q (line 1, position 19): syntax error at or near 'SELEC'"),
        (
            "SELECT Device,\n  xx FROM events",
            False,
            f"q (line 2, position 3): unknown column xx (did you mean x?); {WHAT_EXISTS}",
        ),
        (
            "SELECT x FROM evnts",
            False,
            "q (line 1, position 33): unknown table evnts: the tables are events (the live "
            "events) and history",
        ),
        (
            "SELECT foo(x) FROM events",
            False,
            "q (line 1, position 26): unknown function foo (Spark SQL's functions: SHOW FUNCTIONS)",
        ),
        (
            "SELECT x FROM events ORDER BY x",
            False,
            "q (line 1): ORDER BY cannot run on a stream, which has no end to sort at, except "
            "after an aggregation (GROUP BY), whose whole result is then sorted each batch",
        ),
        (
            "SELECT gt, count(*) AS n FROM events GROUP BY gt ORDER BY n",
            False,
            "q (line 1): ORDER BY and LIMIT after an aggregation need the whole result each "
            "batch; a named query publishes a table keyed by its groups, which has no order: "
            "leave them out (and sort where you read it, as hhar sql does)",
        ),
        (
            "SELECT x FROM events LIMIT 5",
            False,
            "q (line 1): LIMIT would end a named query's rows for good after the first ones; a "
            "named query runs as long as the processor: leave it out (hhar sql --rows N stops "
            "after N rows)",
        ),
        (
            "SELECT Device, count(DISTINCT User) AS users FROM events GROUP BY Device",
            False,
            "q (line 1): an aggregate over DISTINCT values (count(DISTINCT User)) cannot run on "
            "a stream, which would have to keep every value it saw: use "
            "approx_count_distinct(User)",
        ),
        (
            "SELECT Device, row_number() OVER (PARTITION BY Device ORDER BY x) AS r FROM events",
            False,
            "q (line 1): a window function (... OVER (...)) cannot run on a stream: group by an "
            "event-time window instead, GROUP BY window(event_time, '1 minute')",
        ),
        (
            "SELECT Device, count(*) AS n FROM events GROUP BY Device",
            True,
            "q (line 1): EMIT FINAL (--final) emits each group once, when the watermark has "
            "closed it: the query must group by an event-time window, GROUP BY "
            "window(event_time, '10 minutes')",
        ),
        (
            "SELECT Device, max(n) AS top FROM (SELECT Device, gt, count(*) AS n FROM events "
            "GROUP BY Device, gt) GROUP BY Device",
            False,
            "q (line 1): an aggregation or join over the result of another aggregation may drop "
            "rows as late on a stream: Spark runs it only with EMIT FINAL, each grouping by an "
            "event-time window",
        ),
        (
            "SELECT * FROM events FULL OUTER JOIN history USING (Device)",
            False,
            "q (line 1): a FULL OUTER JOIN of events and history cannot run on a stream (a "
            "history row without an event would have to wait for every event to come)",
        ),
        (
            "SELECT count(*) AS n FROM events GROUP BY Device",
            False,
            "q (line 1): the result does not show every grouping column, so rows of different "
            "groups would look alike: select each GROUP BY expression (and grouping_id() with "
            "CUBE, ROLLUP or GROUPING SETS)",
        ),
        (
            "SELECT Device, gt, count(*) AS n FROM events GROUP BY ROLLUP (Device, gt)",
            False,
            "q (line 1): the result does not show every grouping column, so rows of different "
            "groups would look alike: select each GROUP BY expression (and grouping_id() with "
            "CUBE, ROLLUP or GROUPING SETS)",
        ),
        (
            "SELECT Device, x, x FROM events",
            False,
            "q (line 1): two columns are named x: name them apart with AS",
        ),
        (
            "SELECT Device, count(*) AS query FROM events GROUP BY Device",
            False,
            "q (line 1): column query has the name of a field every result record carries "
            "(query, batch_id): name it otherwise with AS",
        ),
        (
            "SELECT count(*) AS n FROM history",
            False,
            "q (line 1): it reads no stream: a named query reads events",
        ),
    ],
)
def test_what_cannot_run_is_one_line_in_words(spark, tables, sql, final, error) -> None:
    with pytest.raises(SqlError) as raised:
        run(spark, tables, sql, final)
    assert str(raised.value) == error


def test_an_error_names_the_file_line_and_position(spark, tables, tmp_path: Path) -> None:
    path = tmp_path / "mine.sql"
    path.write_text(
        "CREATE QUERY fine AS SELECT count(*) AS n FROM events;\n\n"
        "-- A typo on the third line of the statement.\n"
        "CREATE QUERY typo AS\nSELECT Device,\n       count(*) AS n\nFROM event\nGROUP BY Device;\n"
    )
    fine, typo = parse_query_files([path])
    assert analyze(spark, fine, tables, named=True).output_mode == "update"
    with pytest.raises(SqlError) as raised:
        analyze(spark, typo, tables, named=True)
    assert str(raised.value) == (
        f"typo ({path} line 7, position 6): unknown table event: the tables are events (the "
        f"live events) and history"
    )


def test_a_missing_history_is_named(spark, base_settings: Settings, tmp_path: Path) -> None:
    settings = base_settings.changed(**{"history": tmp_path / "none", "topic": "never-read"})
    register_tables(spark, settings)
    try:
        with pytest.raises(SqlError) as raised:
            run(spark, settings, "SELECT e.x FROM events e JOIN history h USING (Device)")
        assert str(raised.value) == (
            f"q (line 1, position 49): table history is not there: {tmp_path / 'none'} does "
            f"not exist (--history PATH)"
        )
    finally:
        spark.catalog.dropTempView("events")
