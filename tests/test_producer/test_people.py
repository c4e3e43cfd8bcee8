"""What people see: the progress bar, the periodic log line, the summary, and signals."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

from hhar_stream.errors import InputDataError
from hhar_stream.producer.progress import BarProgress, LogProgress, ReplayStats, format_summary
from hhar_stream.producer.replay import replay
from hhar_stream.settings import Settings


def stats(**changes) -> ReplayStats:
    figures = ReplayStats(
        topic="events",
        dead_letter_topic="events.dlq",
        rows_read=12_345,
        invalid=45,
        events_sent=12_300,
        delivered=12_000,
        dead_lettered=40,
        elapsed=2.0,
        drift=0.25,
        max_drift=0.5,
    )
    for name, value in changes.items():
        setattr(figures, name, value)
    return figures


def test_the_bar_shows_rows_rate_delivered_invalid_and_drift() -> None:
    screen = io.StringIO()
    bar = BarProgress(total=20_000, console=Console(file=screen, force_terminal=True, width=160))
    bar.update(stats(rows_read=0, events_sent=0, elapsed=0.0))
    bar.close(stats())
    shown = screen.getvalue()
    for text in ("12,345 rows", "6,150 events/s", "delivered 12,000", "invalid 45", "drift 0.25 s"):
        assert text in shown

    unused = io.StringIO()  # a replay that failed before its first row draws nothing
    BarProgress(total=None, console=Console(file=unused, force_terminal=True)).close(stats())
    assert unused.getvalue() == ""


def test_the_log_line_says_the_same(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hhar_stream.producer.progress")
    progress = LogProgress(interval=0.0)
    progress.update(stats())
    assert caplog.messages == [
        "replayed 12345 rows (6150 events/s): delivered 12000, invalid 45, failed 0, drift 0.25 s"
    ]


def test_the_summary() -> None:
    assert format_summary(stats(resumed_rows=100, failed=300, failure="broker said no")) == (
        "read 12,345 rows: 12,300 valid, 45 invalid (after 100 rows of earlier runs)\n"
        "delivered 12,000 events to events, 40 dead letters to events.dlq, 300 failed\n"
        "elapsed 2.00 s, 6,000 events/s, max drift 0.500 s, stopped by end\n"
        "failure: broker said no"
    )


def test_without_source_and_data_folder_the_error_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InputDataError) as caught:
        replay(Settings(data=tmp_path / "activity-data", max_speed=True))
    assert str(caught.value) == (
        f"no --source given and the data folder {tmp_path / 'activity-data'} does not exist: "
        "fetch the real set with `hhar data fetch`, generate one with `hhar data synth` or pass "
        "--source"
    )
