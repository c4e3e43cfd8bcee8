"""How the answers of SQL queries are shown (no Spark, no Kafka): `hhar sql`'s table per output
mode and its changelog, a named query's record model and catalogue view, its dashboard chart,
and `hhar queries explain`'s plan with the tables folded."""

from __future__ import annotations

import datetime as dt
import json

from hhar_stream.apps.dashboard.panels import Observation, named_chart, page
from hhar_stream.apps.results import ResultState
from hhar_stream.apps.sql import ResultTable
from hhar_stream.processor.catalogue import named_query, with_named
from hhar_stream.processor.sql_cli import fold_views
from hhar_stream.schemas.queries import QueryColumn, QueryDefinition, record_model
from hhar_stream.schemas.results import parse_result_value

COLUMNS = (
    QueryColumn(name="gt", type="string", nullable=True),
    QueryColumn(name="count(1)", type="bigint", nullable=False),
)


def records(rows: list[tuple[str, int]], batch_id: int = 0) -> list:
    model = record_model("sql", COLUMNS, ("gt",))
    return [
        model.model_validate({"query": "sql", "batch_id": batch_id, "gt": gt, "count(1)": n})
        for gt, n in rows
    ]


def test_update_mode_replaces_rows_by_key_and_marks_the_changed_ones() -> None:
    table = ResultTable(["gt", "count(1)"], ["gt"], "update")
    first = table.apply(0, records([("walk", 2), ("sit", 1)]))
    assert [(c.kind, c.record.gt) for c in first] == [("insert", "walk"), ("insert", "sit")]
    second = table.apply(1, records([("walk", 3), ("bike", 1)], 1))
    assert [(c.kind, c.record.gt) for c in second] == [("update", "walk"), ("insert", "bike")]
    rows, marks, left_out = table.cells()
    assert rows == [["bike", "1"], ["sit", "1"], ["walk", "3"]]  # in key order
    assert marks == ["+", "", "*"] and left_out == 0
    assert table.apply(2, []) == [] and table.cells()[1] == marks  # a no-data batch
    assert (table.batches, table.changes, table.last_batch) == (3, 4, 2)
    assert json.loads(second[0].json_line()) == {
        "batch_id": 1,
        "change": "update",
        "row": {"gt": "walk", "count(1)": 3},
    }


def test_complete_mode_keeps_spark_order_and_deletes_what_is_gone() -> None:
    table = ResultTable(["gt", "count(1)"], ["gt"], "complete")
    table.apply(0, records([("walk", 5), ("sit", 4)]))
    changes = table.apply(1, records([("walk", 5), ("bike", 6)], 1))
    assert [(c.kind, c.record.gt) for c in changes] == [("insert", "bike"), ("delete", "sit")]
    rows, marks, _ = table.cells()
    assert rows == [["walk", "5"], ["bike", "6"]] and marks == ["", "+"]


def test_append_mode_keeps_every_row_and_shows_the_newest() -> None:
    table = ResultTable(["gt", "count(1)"], ["gt", "count(1)"], "append")
    table.apply(0, records([("walk", 1), ("walk", 1)]))
    table.apply(1, records([("sit", 2)], 1))
    rows, marks, left_out = table.cells(limit=2)
    assert rows == [["walk", "1"], ["sit", "2"]] and marks == ["", "+"] and left_out == 1


def test_a_named_querys_records_views_and_chart() -> None:
    definition = QueryDefinition(
        name="per_phone",
        sql="SELECT Device, window, avg(x) AS x FROM events GROUP BY ...",
        description="Mean x per phone and minute.\nSecond line.",
        output_mode="update",
        key_columns=("Device", "window"),
        columns=(
            QueryColumn(name="Device", type="string", nullable=True),
            QueryColumn(
                name="window", type="struct<start:timestamp,end:timestamp>", nullable=False
            ),
            QueryColumn(name="x", type="double", nullable=True),
        ),
        topic="hhar.results.per_phone",
        fingerprint="f",
    )
    value = json.dumps(
        {
            "query": "per_phone",
            "batch_id": 3,
            "Device": "nexus4_1",
            "window": {"start": "2015-02-23T10:20:00.000Z", "end": "2015-02-23T10:21:00.000Z"},
            "x": 0.25,
        }
    )
    model = definition.record_model()
    record = parse_result_value(value, {"per_phone": model})
    assert type(record) is model and definition.record_model() is model
    assert record.key_json() == (
        '{"Device":"nexus4_1","window":{"start":"2015-02-23T10:20:00.000Z",'
        '"end":"2015-02-23T10:21:00.000Z"}}'
    )
    entry = named_query(definition)
    assert entry.record is model and "per_phone" in with_named([definition])
    assert entry.view.rows([record]) == [
        [
            "nexus4_1",
            '{"start":"2015-02-23T10:20:00.000Z","end":"2015-02-23T10:21:00.000Z"}',
            "0.25",
        ]
    ]
    chart = named_chart(definition)
    assert chart is not None and chart.title([record]) == "Mean x per phone and minute."
    state = ResultState(named={"per_phone": model})
    state.apply("per_phone", b"k", value.encode())
    seen = Observation(
        state,
        None,
        query_names=["total_count", "per_phone"],
        named={"per_phone": definition},
    )
    panel = next(p for p in page(seen, dt.datetime.now(dt.UTC))["panels"] if p["id"] == "per_phone")
    assert panel["kind"] == "chart" and panel["figure"]["data"][0]["type"] == "bar"
    assert panel["table"]["columns"] == ["Device", "window", "x"]


def test_a_fleets_chart_draws_the_largest_bars() -> None:
    definition = QueryDefinition(
        name="per_device",
        sql="SELECT Device, count(*) AS events FROM events GROUP BY Device",
        output_mode="update",
        key_columns=("Device",),
        columns=(
            QueryColumn(name="Device", type="string", nullable=True),
            QueryColumn(name="events", type="bigint", nullable=False),
        ),
        topic="hhar.results.per_device",
        fingerprint="f",
    )
    model = definition.record_model()
    records = [
        model.model_validate({"query": "per_device", "batch_id": 0, "Device": f"d{i}", "events": i})
        for i in range(500)
    ]
    chart = named_chart(definition)
    assert chart is not None
    assert chart.title(records) == "per_device (the 20 largest of 500 Device)"
    (bars,) = chart.draw(records, None).to_dict()["data"]
    assert sorted(bars["x"]) == sorted(f"d{i}" for i in range(480, 500))
    assert chart.title(records[:20]) == "per_device"


def test_a_chart_needs_labels_and_one_number() -> None:
    def shape(*types: str) -> QueryDefinition:
        columns = tuple(
            QueryColumn(name=f"c{i}", type=t, nullable=True) for i, t in enumerate(types)
        )
        return QueryDefinition(
            name="q",
            sql="",
            output_mode="update",
            key_columns=(),
            columns=columns,
            topic="t",
            fingerprint="f",
        )

    assert named_chart(shape("string", "bigint")) is not None
    assert named_chart(shape("string", "timestamp", "double")) is not None
    assert named_chart(shape("bigint")) is None
    assert named_chart(shape("string", "bigint", "double")) is None


def test_explain_folds_the_tables() -> None:
    plan = (
        "== Analyzed Logical Plan ==\n"
        "gt: string\n"
        "~Aggregate [gt#1], [gt#1]\n"
        "+- ~SubqueryAlias events\n"
        "   +- View (`events`, [gt#1])\n"
        "      +- ~Project [a very long parse]\n"
        "         +- ~StreamingRelationV2 kafka\n"
        "\n== Optimized Logical Plan ==\n"
        "x"
    )
    assert fold_views(plan).splitlines() == [
        "== Analyzed Logical Plan ==",
        "gt: string",
        "~Aggregate [gt#1], [gt#1]",
        "+- ~SubqueryAlias events",
        "   +- View (`events`, [gt#1])",
        "         +- ... (the events topic, parsed: processor/sql.py)",
        "",
        "== Optimized Logical Plan ==",
        "x",
    ]
