"""Reading SQL statements (no Spark): files of named queries, one ad hoc query, the prompt's
input, the fingerprint that tells a changed query, and every mistake a file can hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from hhar_stream.errors import InputDataError, SqlError
from hhar_stream.processor.runner import reserved_names
from hhar_stream.processor.sql import (
    complete_statements,
    normalized,
    parse_query_files,
    parse_statement,
    reads_history,
)

EXERCISE = Path(__file__).resolve().parents[2] / "examples" / "exercise.sql"


def write(tmp_path: Path, text: str, name: str = "queries.sql") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_file_of_named_queries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "-- a header, not a description\n"
        "\n"
        "-- The share of walking per phone.\n"
        "--   (in percent)\n"
        "CREATE QUERY walking AS\n"
        "SELECT Device, avg(CASE WHEN gt = 'walk' THEN 100 ELSE 0 END) AS share -- ; here\n"
        "FROM events GROUP BY Device;\n"
        "/* a; block */ create  query  per_window  as  select window, count(*) AS n\n"
        "from events group by window(event_time, '1 minute') emit   final ;\n",
    )
    walking, per_window = parse_query_files([path])
    assert walking.name == "walking"
    assert walking.description == "The share of walking per phone.\n(in percent)"
    assert walking.sql.startswith("SELECT Device, avg(CASE WHEN gt = 'walk'")
    assert walking.sql.endswith("FROM events GROUP BY Device")
    assert not walking.final
    assert walking.label() == f"walking ({path} line 5)"
    assert walking.where(0) == f"{path} line 6, position 1"
    assert per_window.name == "per_window"
    assert per_window.final
    assert per_window.sql == (
        "select window, count(*) AS n\nfrom events group by window(event_time, '1 minute')"
    )
    assert per_window.description == ""


def test_a_folder_is_its_sql_files_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, "CREATE QUERY b AS SELECT 1 FROM events;", "2.sql")
    write(tmp_path, "CREATE QUERY a AS SELECT 1 FROM events;", "1.sql")
    write(tmp_path, "not sql", "notes.txt")
    assert [s.name for s in parse_query_files([tmp_path])] == ["a", "b"]


def test_the_exercise_file_names_every_built_in_query() -> None:
    statements = parse_query_files([EXERCISE], reserved_names())
    names = [statement.name for statement in statements]
    assert names == [
        "total_count_sql",
        "device_activity_sql",
        "device_activity_cube_sql",
        "device_activity_rollup_sql",
        "stairs_by_user_sql",
        "activity_stats_sql",
        "live_vs_historical_sql",
        "windowed_activity_sql",
    ]
    assert all(statement.description for statement in statements)
    assert [s.name for s in statements if s.final] == ["windowed_activity_sql"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "SELECT 1 FROM events;",
            "{path} line 1: a query file holds statements of the form CREATE QUERY name AS "
            "SELECT ...;, not 'SELECT 1 FROM'",
        ),
        (
            "\n\nCREATE QUERY walking SELECT 1;",
            "{path} line 3, position 22: expected AS in CREATE QUERY name AS SELECT ...;",
        ),
        (
            "CREATE QUERY AS SELECT 1;",
            "{path} line 1, position 14: expected a name in CREATE QUERY name AS SELECT ...;",
        ),
        ("CREATE QUERY q AS ;", "{path} line 1, position 19: expected a query (SELECT ...) here"),
        (
            "CREATE QUERY walking-share AS SELECT 1;",
            "query name 'walking-share' ({path} line 1) cannot end a topic name and name a "
            "table: use lower-case letters, digits and _, starting with a letter (at most 100)",
        ),
        (
            "CREATE QUERY Walking AS SELECT 1;",
            "query name 'Walking' ({path} line 1) cannot end a topic name and name a table: use "
            "lower-case letters, digits and _, starting with a letter (at most 100)",
        ),
        (
            "CREATE QUERY device_activity AS SELECT 1;",
            "query name device_activity ({path} line 1) is taken by a built-in query: choose "
            "another",
        ),
        (
            "CREATE QUERY fused AS SELECT 1;",
            "query name fused ({path} line 1) is taken by a built-in query: choose another",
        ),
        (
            "CREATE QUERY events AS SELECT 1;",
            "query name events ({path} line 1) is the name of a table queries read: choose another",
        ),
        (
            "CREATE QUERY a AS SELECT 1;\nCREATE QUERY a AS SELECT 2;",
            "query name a is defined twice: {path} line 1 and {path} line 2",
        ),
        (
            "-- only a comment\n\n",
            "query file {path} holds no statement: write CREATE QUERY name AS SELECT ...;",
        ),
        (
            "CREATE QUERY a AS SELECT 'it''s;\n",
            "a quote (') is never closed: it opens at {path} line 1, position 30",
        ),
        (
            "CREATE QUERY a AS SELECT 1 /* comment;\n",
            "a /* comment is never closed: it opens at {path} line 1, position 28",
        ),
    ],
)
def test_each_mistake_of_a_query_file_is_one_line(tmp_path: Path, text: str, error: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SqlError) as raised:
        parse_query_files([path], reserved_names())
    assert str(raised.value) == error.format(path=path)


def test_a_missing_query_file(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"query file .*nope.sql does not exist"):
        parse_query_files([tmp_path / "nope.sql"])


def test_one_ad_hoc_query() -> None:
    statement = parse_statement("  SELECT count(*) FROM events  EMIT CHANGES ")
    assert (statement.sql, statement.final, statement.name) == (
        "SELECT count(*) FROM events",
        False,
        None,
    )
    assert parse_statement("SELECT 1", final=True).final
    named = parse_statement("CREATE QUERY q AS SELECT 1 EMIT FINAL;")
    assert (named.sql, named.final) == ("SELECT 1", True)
    with pytest.raises(SqlError, match=r"^no statement: give a query"):
        parse_statement(" -- nothing\n")
    with pytest.raises(SqlError, match=r"^2 statements \(line 2 starts the second\)"):
        parse_statement("SELECT 1;\nSELECT 2")


def test_the_fingerprint_ignores_comments_spacing_and_case() -> None:
    one = parse_statement("SELECT Device, count(*) FROM events -- per phone\nGROUP BY Device")
    two = parse_statement("select device,  count(*)\n  from EVENTS group by device")
    assert one.fingerprint == two.fingerprint
    assert normalized("SELECT 'A  b' /* x */, x") == "select 'A  b' , x"
    changed = parse_statement("select device, count(*) from events where gt = 'walk' group by 1")
    quoted = parse_statement("select device, count(*) from events where gt = 'WALK' group by 1")
    assert changed.fingerprint != quoted.fingerprint != one.fingerprint
    assert (
        parse_statement("SELECT 1", final=True).fingerprint
        != parse_statement("SELECT 1").fingerprint
    )


def test_the_prompt_runs_what_ends_with_a_semicolon() -> None:
    assert complete_statements("SELECT 1") == ([], "SELECT 1")
    assert complete_statements("SELECT ';'") == ([], "SELECT ';'")
    assert complete_statements("SELECT 'a") == ([], "SELECT 'a")
    assert complete_statements("SELECT 1 -- ;\n") == ([], "SELECT 1 -- ;\n")
    assert complete_statements("SELECT 1;\nSELECT\n 2;  SELECT") == (
        ["SELECT 1", "SELECT\n 2"],
        "  SELECT",
    )


def test_only_a_query_that_names_history_gets_its_table() -> None:
    assert reads_history(["SELECT * FROM events e JOIN History h USING (gt)"])
    assert not reads_history(["SELECT 'history' AS x FROM events -- history\n"])
    assert not reads_history(["SELECT histories FROM events"])
