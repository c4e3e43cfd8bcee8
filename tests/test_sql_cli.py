"""`hhar sql` as a person and a pipe use it: the prompt in a pseudo-terminal (a live table
redrawn per micro-batch, changed rows marked, Ctrl+C back to the prompt, \\q out), the
changelog as JSON lines, a query a stream cannot run; nothing left behind by any of them."""

from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path

import pexpect
import pytest
from support.cli import LOG_LINE, error_line, hhar_env, run_hhar
from test_processor.helpers import make_events, produce

from hhar_stream.kafka_client import list_topics
from hhar_stream.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

FIELDS = ("bootstrap", "home", "master", "shuffle_partitions", "driver_memory")
FIRST = 300
MORE = 60
START_TIMEOUT = 240
"""Seconds for Spark's start and a first batch on a busy two-core machine."""


@pytest.fixture
def stream(kafka: Settings, topics, tmp_path: Path):
    topic = topics.create("sql")
    produce(kafka, topic, make_events(FIRST, seed=41))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = hhar_env(kafka, FIELDS, HHAR_TOPIC=topic, TMPDIR=str(temporary), HOME=str(home))
    return topic, env, temporary, home


def counts(events) -> dict[str, int]:
    return dict(collections.Counter(event.gt for event in events))


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ROW = re.compile(r"^│ ([+* ]) │ (\w+) +│ (\d+) +│$")


def last_table(screen: str) -> dict[str, tuple[str, int]]:
    """The rows of the last table drawn on `screen`: gt -> (mark, count)."""
    lines = ANSI.sub("", screen).replace("\r", "").split("\n")
    start = max(i for i, line in enumerate(lines) if line.startswith("┏"))
    rows = {}
    for line in lines[start:]:
        found = ROW.match(line.strip())
        if found:
            rows[found[2]] = (found[1].strip(), int(found[3]))
    return rows


def test_the_prompt_shows_a_live_table(kafka: Settings, stream, tmp_path: Path) -> None:
    topic, env, temporary, home = stream
    topics_before = list_topics(kafka)
    first = make_events(FIRST, seed=41)
    more = make_events(MORE, first_index=FIRST, seed=42)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "hhar_stream.cli", "sql"],
        env=env,
        cwd=str(tmp_path),
        dimensions=(50, 120),
        encoding="utf-8",
        timeout=START_TIMEOUT,
    )
    child.logfile_read = (tmp_path / "terminal.log").open("w")
    try:
        child.expect_exact("hhar> ")
        child.sendline("SELECT gt, count(*) AS n")
        child.expect_exact("   -> ")
        child.sendline("FROM events GROUP BY gt;")
        child.expect(r"running · batch \d+ · 7 rows · 7 changes · 300 events read")
        assert last_table(child.before) == {gt: ("+", n) for gt, n in counts(first).items()}
        produce(kafka, topic, more)
        child.expect(rf"running · batch \d+ · 7 rows · \d+ changes · {FIRST + MORE} events read")
        changed = counts(more)
        assert last_table(child.before) == {
            gt: ("*" if gt in changed else "", n) for gt, n in counts(first + more).items()
        }
        child.sendintr()  # Ctrl+C: the query stops, the prompt comes back
        child.expect(r"stopped · batch \d+ · 7 rows")
        child.expect_exact("hhar> ")
        child.sendline("\\q")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, (tmp_path / "terminal.log").read_text()[-3000:]
    assert list(temporary.iterdir()) == []  # the temporary checkpoint is gone
    assert list_topics(kafka) == topics_before  # nothing was created
    assert "FROM events GROUP BY gt;" in (home / ".hhar_sql_history").read_text()


def test_the_changelog_is_json_lines(stream, tmp_path: Path) -> None:
    topic, env, temporary, _ = stream
    query = "SELECT Device, count(*) AS n FROM events GROUP BY Device"
    result = run_hhar(["sql", query, "--changelog", "--rows", "2"], env, tmp_path, "changelog")
    assert result.returncode == 0, result.stderr[-3000:]
    expected = collections.Counter(event.device for event in make_events(FIRST, seed=41))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["batch_id"], line["change"]) for line in lines] == [(0, "insert")] * 2
    assert sorted(line["row"]["Device"] for line in lines) == sorted(expected)
    assert all(line["row"]["n"] == expected[line["row"]["Device"]] for line in lines)
    assert [line for line in result.stderr.splitlines() if not LOG_LINE.match(line)] == []
    assert list(temporary.iterdir()) == []


def test_what_a_stream_cannot_run_is_one_line(kafka: Settings, stream, tmp_path: Path) -> None:
    topic, env, temporary, _ = stream
    topics_before = list_topics(kafka)
    result = run_hhar(["sql", "SELECT x FROM events\nORDER BY x"], env, tmp_path, "bad")
    assert result.returncode == 2
    assert error_line(result.stderr) == (
        "error: ORDER BY cannot run on a stream, which has no end to sort at, except "
        "after an aggregation (GROUP BY), whose whole result is then sorted each batch"
    )
    assert list(temporary.iterdir()) == [] and list_topics(kafka) == topics_before


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["sql", "SELECT 1", "--seconds", "0"], "error: --seconds must be positive"),
        (
            ["sql", "SELECT 1;SELECT 2"],
            "error: 2 statements (line 1 starts the second): hhar sql runs one at a time",
        ),
        (
            ["sql", "SELECT 'a"],
            "error: a quote (') is never closed: it opens at line 1, position 8",
        ),
        (["sql", "SELECT 1", "-f", "x.sql"], "error: give a query or -f FILE, not both"),
    ],
)
def test_bad_arguments_are_one_line_before_spark(tmp_path: Path, args, error) -> None:
    env = hhar_env(None, (), HHAR_BOOTSTRAP="127.0.0.1:1")
    result = run_hhar(args, env, tmp_path, "args")
    assert result.returncode == 2
    assert error_line(result.stderr) == error
    assert result.stdout == ""
