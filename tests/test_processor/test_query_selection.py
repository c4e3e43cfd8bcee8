"""Which queries `hhar process --queries` (HHAR_QUERIES) selects, by the catalogue."""

from __future__ import annotations

import pytest

from hhar_stream.errors import ConfigError
from hhar_stream.processor.catalogue import QUERY_NAMES, select_queries


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
