"""The processor's reading of its settings: query and sink selection, durations."""

from __future__ import annotations

import pytest

from hhar_stream.errors import ConfigError
from hhar_stream.processor.catalogue import QUERY_NAMES, select_queries
from hhar_stream.processor.config import interval_ms, name_list, select_sinks, spark_interval


def test_all_selects_every_query_in_order() -> None:
    assert select_queries("all") == list(QUERY_NAMES)


def test_a_list_is_kept_in_the_canonical_order_without_repeats() -> None:
    chosen = select_queries("stairs_by_user, total_count,stairs_by_user")
    assert chosen == ["total_count", "stairs_by_user"]


def test_a_minus_leaves_a_query_out() -> None:
    chosen = select_queries("all,-live_vs_historical,-windowed_activity")
    assert "live_vs_historical" not in chosen and "windowed_activity" not in chosen
    assert len(chosen) == len(QUERY_NAMES) - 2


def test_an_unknown_query_is_named_with_the_choices() -> None:
    with pytest.raises(ConfigError) as error:
        select_queries("device_activity,devise_activity")
    assert str(error.value).startswith(
        "unknown query 'devise_activity' in queries (HHAR_QUERIES): choose all or any of "
        "total_count, device_activity,"
    )


def test_an_empty_selection_is_refused() -> None:
    with pytest.raises(ConfigError, match="no query selected by queries='total_count,-total_co"):
        select_queries("total_count,-total_count")


def test_sinks() -> None:
    assert select_sinks("console, kafka") == ["kafka", "console"]
    with pytest.raises(ConfigError) as error:
        select_sinks("kafka,parquet")
    assert str(error.value) == (
        "invalid sink 'parquet' (HHAR_SINK): choose any of kafka, memory, console"
    )


@pytest.mark.parametrize(
    ("text", "spark"),
    [
        ("1s", "1 second"),
        ("1 second", "1 second"),
        ("10 minutes", "10 minutes"),
        ("500ms", "500 milliseconds"),
        ("2.5s", "2500 milliseconds"),
        ("5 MIN", "5 minutes"),
        ("1h", "1 hour"),
    ],
)
def test_durations_take_short_and_spark_spellings(text: str, spark: str) -> None:
    assert spark_interval(text, "trigger") == spark


def test_durations_in_milliseconds() -> None:
    assert interval_ms("10 minutes", "window") == 600_000
    assert interval_ms("1.5s", "trigger") == 1_500
    assert interval_ms("250 ms", "trigger") == 250


@pytest.mark.parametrize("text", ["", "1", "0s", "fast", "1 fortnight", "-1s"])
def test_a_bad_duration_names_its_setting(text: str) -> None:
    with pytest.raises(ConfigError) as error:
        spark_interval(text, "watermark")
    assert str(error.value) == (
        f"watermark (HHAR_WATERMARK) {text!r} is not a duration such as 1s, 500ms, 10 minutes"
    )


def test_name_lists() -> None:
    assert name_list(" a, b ,,", "stairs_users") == ["a", "b"]
    with pytest.raises(ConfigError, match=r"stairs_users \(HHAR_STAIRS_USERS\) names nothing"):
        name_list(" , ", "stairs_users")
