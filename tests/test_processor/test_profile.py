"""`hhar profile` on a folder in Spark's layout, against figures computed here without Spark."""

from __future__ import annotations

import io
import statistics
from collections import Counter

import pytest
from rich.console import Console
from support.cli import hhar_env, run_hhar

from hhar_stream.processor.profile import profile_dataset, render_profile

from .helpers import make_events

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory):
    """Two part files (the second repeats 5 rows of the first) and Spark's marker files."""
    events = make_events(400, seed=21)
    first, second = events[:250], events[250:] + events[:5]
    root = tmp_path_factory.mktemp("activity-data")
    texts = {
        "part-00000-abc-c000.json": "".join(event.to_json() + "\n" for event in first),
        "part-00001-abc-c000.json": "".join(event.to_json() + "\n" for event in second),
    }
    for name, text in texts.items():
        (root / name).write_text(text)
    (root / "_SUCCESS").write_text("")
    (root / "_committed_123").write_text('{"added":[]}')
    return root, first + second, texts


@pytest.fixture(scope="module")
def profile(spark, folder):
    root, _, _ = folder
    return profile_dataset(spark, root, repartition=3, shuffle_partitions=5)


def test_inventory_counts_entries_files_and_bytes(profile, folder) -> None:
    _, _, texts = folder
    assert profile["inventory"] == {
        "entries": 4,
        "json_files": 2,
        "json_bytes": sum(len(text.encode()) for text in texts.values()),
    }


def test_counts_and_duplicates(profile, folder) -> None:
    _, rows, _ = folder
    assert profile["rows"] == len(rows) == 405
    assert profile["distinct_rows"] == len({event.to_json() for event in rows}) == 400
    assert profile["duplicates"] == 5


def test_schema_is_the_data_sets(profile) -> None:
    assert profile["schema_matches_sensor_event"] is True
    assert profile["schema"].splitlines()[1] == " |-- Arrival_Time: long (nullable = true)"


def test_describe_of_every_column(profile, folder) -> None:
    _, rows, _ = folder
    described = profile["describe"]
    assert set(described) == {
        "Arrival_Time",
        "Creation_Time",
        "Device",
        "Index",
        "Model",
        "User",
        "gt",
        "x",
        "y",
        "z",
    }
    xs = [event.x for event in rows]
    assert described["x"]["count"] == len(rows)
    assert described["x"]["mean"] == pytest.approx(statistics.fmean(xs), rel=1e-9)
    assert described["x"]["stddev"] == pytest.approx(statistics.stdev(xs), rel=1e-9)
    assert float(described["x"]["min"]) == min(xs)
    assert described["User"]["min"] == min(event.user for event in rows)
    assert described["Device"]["mean"] is None


def test_model_device_and_device_activity_counts(profile, folder) -> None:
    _, rows, _ = folder
    model_device = Counter((event.model, event.device) for event in rows)
    assert {
        (item["Model"], item["Device"]): item["count"] for item in profile["model_device"]
    } == model_device
    device_activity = Counter((event.device, event.gt) for event in rows)
    listed = [((item["Device"], item["gt"]), item["count"]) for item in profile["device_activity"]]
    assert dict(listed) == device_activity
    assert [count for _, count in listed] == sorted(device_activity.values(), reverse=True)
    top = profile["top_device_activity"]
    assert top["count"] == max(device_activity.values())
    assert device_activity[(top["Device"], top["gt"])] == top["count"]


def test_partitions_and_their_settings(profile, spark) -> None:
    partitions = profile["partitions"]
    assert partitions["input"] >= 1
    assert partitions["repartition"] == {"requested": 3, "partitions": 3}
    assert partitions["shuffle"]["setting"] == 5
    assert partitions["shuffle"]["aggregation_partitions"] == 5
    assert 1 <= partitions["shuffle"]["after_adaptive_coalescing"] <= 5
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"  # restored
    assert spark.conf.get("spark.sql.adaptive.enabled") == "true"


def test_the_tables_for_people(profile) -> None:
    out = io.StringIO()
    render_profile(profile, Console(file=out, width=120))
    text = out.getvalue()
    assert "4 entries, 2 JSON files" in text
    assert "rows 405, distinct 400, duplicates 5" in text
    top = profile["top_device_activity"]
    assert f"top combination: {top['Device']} / {top['gt']} ({top['count']} rows)" in text
    assert "repartition(3): 3 partitions" in text
    assert "spark.sql.shuffle.partitions = 5: an aggregation shuffles into 5 partitions" in text


def test_profile_of_nothing_is_one_error_line(tmp_path) -> None:
    missing = tmp_path / "nowhere"
    result = run_hhar(["profile", "--source", str(missing)], hhar_env(), tmp_path / "cli")
    assert result.returncode == 1
    assert result.stderr == f"error: {missing} does not exist or matches nothing\n"
