"""Named queries beside the built-in ones, end to end in process: events in the real broker,
the exercise written in SQL (examples/exercise.sql), the repository's ./queries and a query
that fails, one available-now run of the processor; then what the views, `hhar queries` and a
changed query see."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from confluent_kafka import Producer
from support.cli import error_line, hhar_env, run_hhar

from hhar_stream.errors import SqlError
from hhar_stream.kafka_client import list_topics
from hhar_stream.processor.catalogue import QUERY_NAMES
from hhar_stream.processor.check import check_query
from hhar_stream.processor.named import read_definitions
from hhar_stream.processor.runner import Processor
from hhar_stream.processor.status import read_status
from hhar_stream.schemas.results import ENVELOPE_FIELDS, RESULT_RECORDS, ResultRecord
from hhar_stream.settings import Settings

from .helpers import BAD_MESSAGES, make_events, produce, read_results, run_available_now

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EVENTS = 1500  # 25 minutes of event time, a second apart: the first 10-minute window closes
BROKEN = """
-- Fails in its first batch: an activity label is no number.
CREATE QUERY broken AS
SELECT gt, sum(CAST(gt AS INT)) AS total FROM events GROUP BY gt;
"""
CLI_FIELDS = ("bootstrap", "home", "master", "shuffle_partitions", "driver_memory")


@pytest.fixture(scope="module")
def run(kafka: Settings, spark, module_topics, tmp_path_factory: pytest.TempPathFactory):
    topic = module_topics.create("named")
    work = tmp_path_factory.mktemp("named")
    history = work / "history"
    history.mkdir()
    lines = [event.to_json() for event in make_events(300, seed=5)]
    (history / "part-00000.json").write_text("\n".join(lines) + "\n")
    (work / "broken.sql").write_text(BROKEN)
    files = [REPO / "examples" / "exercise.sql", REPO / "queries", work / "broken.sql"]
    settings = kafka.changed(
        **{
            "topic": topic,
            "results_prefix": f"{topic}.results.",
            "checkpoint": work / "checkpoints",
            "history": history,
            "sink": "kafka,memory",
            "query_file": files,
        }
    )
    produce(settings, topic, make_events(EVENTS, step_ms=1000), BAD_MESSAGES)
    processor = run_available_now(spark, settings)
    definitions = read_definitions(settings)
    models = {name: definition.record_model() for name, definition in definitions.items()}
    return SimpleNamespace(
        settings=settings, processor=processor, definitions=definitions, models=models, work=work
    )


def row(record: ResultRecord) -> dict:
    return record.model_dump(mode="json", by_alias=True, exclude=set(ENVELOPE_FIELDS))


def same(left: dict, right: dict) -> bool:
    return left.keys() == right.keys() and all(
        math.isclose(value, right[name], rel_tol=1e-9)
        if isinstance(value, float)
        else value == right[name]
        for name, value in left.items()
    )


@pytest.mark.parametrize("query", [name for name in QUERY_NAMES])
def test_the_exercise_in_sql_equals_the_built_in_query(run, query: str) -> None:
    settings = run.settings
    built_in = read_results(settings, settings.result_topic(query))
    in_sql = read_results(settings, settings.result_topic(f"{query}_sql"), run.models)
    keys = RESULT_RECORDS[query].key_fields
    by_built_in_key = {
        json.dumps({name: row(r)[name] for name in keys}, separators=(",", ":")): row(r)
        for r in in_sql.values()
    }
    assert built_in, f"{query} wrote nothing"
    assert sorted(by_built_in_key) == sorted(built_in)
    for key, record in built_in.items():
        assert same(by_built_in_key[key], row(record)), (key, by_built_in_key[key], row(record))


def test_a_failing_named_query_stops_alone(run) -> None:
    status = read_status(run.settings)
    broken = status["queries"]["broken"]
    assert broken["active"] is False
    assert broken["exception"].startswith("[CAST_INVALID_INPUT] The value '"), broken
    assert "Traceback" not in broken["exception"] and "\n" not in broken["exception"]
    for name in run.definitions:
        if name != "broken":
            assert status["queries"][name]["exception"] is None, name
            assert read_results(run.settings, run.settings.result_topic(name), run.models), name
    summary = run.processor.summary()
    assert summary["queries"]["device_activity_sql"]["input_rows"] == EVENTS + len(BAD_MESSAGES)


def test_the_definitions_are_published(run) -> None:
    definitions = run.definitions
    assert sorted(definitions) == sorted(
        [f"{name}_sql" for name in QUERY_NAMES] + ["walking_percent", "broken"]
    )
    walking = definitions["walking_percent"]
    assert walking.description == "How much of each phone's recording is walking, in percent."
    assert walking.source == f"{REPO / 'queries' / 'walking.sql'} line 6"
    assert walking.output_mode == "update" and walking.key_columns == ("Device",)
    assert walking.topic == run.settings.result_topic("walking_percent")
    windows = definitions["windowed_activity_sql"]
    assert (windows.output_mode, windows.window_end) == ("append", "window_end")
    assert [(c.name, c.type) for c in windows.columns] == [
        ("window_start", "timestamp"),
        ("window_end", "timestamp"),
        ("Device", "string"),
        ("gt", "string"),
        ("count", "bigint"),
    ]


def test_memory_tables_hold_the_named_queries_rows(run, spark) -> None:
    settings = run.settings
    topic = read_results(settings, settings.result_topic("device_activity_sql"), run.models)
    table = spark.sql("SELECT Device, gt, count FROM device_activity_sql").collect()
    assert sorted((r["Device"], r["gt"], r["count"]) for r in table) == sorted(
        (r.Device, r.gt, r.count) for r in topic.values()
    )
    windows = spark.sql("SELECT window_end, count FROM windowed_activity_sql").collect()
    assert windows and all(r["window_end"].minute == 30 for r in windows)


def test_check_holds_stream_equal_to_batch(run, spark) -> None:
    for name in ("live_vs_historical_sql", "windowed_activity_sql", "walking_percent"):
        result = check_query(spark, run.settings, run.definitions[name])
        assert result.equal, result.details()
        assert result.events == EVENTS + len(BAD_MESSAGES) and result.rows, name
    windows = check_query(spark, run.settings, run.definitions["windowed_activity_sql"])
    assert windows.open_rows == 28  # 10:30 and 10:40: the watermark (10:39:59) closed neither


def test_check_catches_a_wrong_result(run, kafka: Settings, tmp_path: Path) -> None:
    settings = run.settings
    topic = settings.result_topic("device_activity_sql")
    key, record = sorted(read_results(settings, topic, run.models).items())[0]
    wrong = record.model_copy(update={"count": record.count + 1})
    producer = Producer(settings.kafka_client_config())
    producer.produce(topic, key=key, value=wrong.value_json())
    assert producer.flush(30) == 0
    env = hhar_env(kafka, CLI_FIELDS)
    flags = [
        "--topic",
        settings.topic,
        "--results-prefix",
        settings.results_prefix,
        "--checkpoint",
        str(settings.checkpoint),
        "--history",
        str(settings.history),
    ]
    result = run_hhar(["queries", "check", "device_activity_sql", *flags], env, tmp_path, "check")
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"device_activity_sql: 1 of 14 rows differ from the query run as a batch over the "
        f"{EVENTS + len(BAD_MESSAGES):,} messages up to its batch 1"
    )
    assert lines[1] == (
        f"  {key}: count is {record.count + 1} in the results, {record.count} in the batch"
    )
    producer.produce(topic, key=key, value=record.value_json())  # put the right row back
    assert producer.flush(30) == 0


def test_queries_list_shows_both_kinds(run, kafka: Settings, tmp_path: Path) -> None:
    settings = run.settings
    env = hhar_env(kafka, CLI_FIELDS)
    flags = ["--topic", settings.topic, "--results-prefix", settings.results_prefix]
    flags += ["--checkpoint", str(settings.checkpoint)]
    result = run_hhar(["queries", "list", "--json", *flags], env, tmp_path, "list")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["device_activity"]["kind"] == "built-in"
    assert rows["device_activity"]["state"] == "stopped"
    assert (
        rows["device_activity_sql"]["kind"]
        == f"named ({REPO / 'examples' / 'exercise.sql'} line 17)"
    )
    assert rows["device_activity_sql"]["rows_out"] >= 14
    assert rows["device_activity_sql"]["last_batch"] >= 0
    assert rows["broken"]["state"].startswith("failed: [CAST_INVALID_INPUT]")
    assert rows["walking_percent"]["topic"] == settings.result_topic("walking_percent")


def test_a_changed_query_refuses_its_checkpoint_until_reset(run, spark, tmp_path: Path) -> None:
    changed = tmp_path / "walking.sql"
    changed.write_text(
        (REPO / "queries" / "walking.sql").read_text().replace("round(100 *", "round(1000 *")
    )
    settings = run.settings.changed(**{"query_file": [changed], "queries": "total_count"})
    topics = list_topics(settings)
    checkpoint = Path(settings.checkpoint) / "named" / "walking_percent"
    files = sorted(checkpoint.rglob("*"))
    processor = Processor(settings.changed(**{"available_now": True}))
    with pytest.raises(SqlError) as raised:
        processor.start(spark)
    assert str(raised.value) == (
        f"query walking_percent ({changed} line 6) cannot start: its SQL changed since its "
        f"checkpoint {checkpoint} was written; start it over with hhar process --reset-query "
        f"walking_percent (its checkpoint and results go), or give the new query a new name"
    )
    assert list_topics(settings) == topics and sorted(checkpoint.rglob("*")) == files

    processor = Processor(settings.changed(**{"available_now": True}))
    processor.start(spark, reset_queries=["walking_percent"])
    while not processor.wait(1.0):
        pass
    processor.stop()
    models = {"walking_percent": read_definitions(settings)["walking_percent"].record_model()}
    shares = read_results(settings, settings.result_topic("walking_percent"), models)
    assert shares and all(r.batch_id == 0 for r in shares.values())
    assert all(0 <= r.walking_percent <= 1000 for r in shares.values())
    # The processor publishes what it runs now: the other named queries are withdrawn.
    assert sorted(read_definitions(settings)) == ["walking_percent"]


def test_a_bad_query_file_stops_hhar_process_before_spark(kafka: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE QUERY device_activity AS SELECT 1;\n")
    env = hhar_env(kafka, CLI_FIELDS)
    result = run_hhar(["process", "--query-file", str(bad)], env, tmp_path, "process")
    assert result.returncode == 2
    assert error_line(result.stderr) == (
        f"error: query name device_activity ({bad} line 1) is taken by a built-in query: "
        f"choose another"
    )
    assert result.seconds < 20  # no JVM was started


def test_a_query_spark_refuses_stops_hhar_process_before_any_data(
    run, kafka: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text(
        "-- a typo\nCREATE QUERY typo AS\nSELECT Device, count(*) AS n\n"
        "FROM events\nGROUP BY Devise;\n"
    )
    prefix = f"{run.settings.topic}.refused."
    checkpoint = tmp_path / "checkpoints"
    topics = list_topics(kafka)
    env = hhar_env(kafka, CLI_FIELDS)
    flags = ["--topic", run.settings.topic, "--results-prefix", prefix]
    flags += ["--checkpoint", str(checkpoint), "--query-file", str(bad), "--queries", "total_count"]
    result = run_hhar(["process", "--available-now", *flags], env, tmp_path, "process")
    assert result.returncode == 2
    assert error_line(result.stderr) == (
        f"error: typo ({bad} line 5, position 10): unknown column Devise (did you mean "
        f"Device?); events has Arrival_Time, Creation_Time, Device, Index, Model, User, gt, x, "
        f"y, z, partition, offset, timestamp, event_time; history has Arrival_Time, "
        f"Creation_Time, Device, Index, Model, User, gt, x, y, z, event_time"
    )
    assert not checkpoint.exists() and list_topics(kafka) == topics
