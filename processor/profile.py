"""`hhar profile`: the static profile of a data set (the exercise's tasks 1 to 5).

`profile_dataset` reads a folder, file or glob of JSON lines the way the exercise did (Spark's
schema inference) and returns plain data: the folder inventory, the schema tree, row and
distinct counts, ``describe()`` of every column, Model x Device and Device x gt counts, and
partition counts with the effect of a repartition and of ``spark.sql.shuffle.partitions``.
`render_profile` draws it as tables for people.
"""

from __future__ import annotations

import glob
import logging
import sys
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from rich.console import Console
from rich.table import Table

from ..errors import InputDataError
from .parse import EVENT_SCHEMA

logger = logging.getLogger(__name__)

_SHUFFLE = "spark.sql.shuffle.partitions"
_ADAPTIVE = "spark.sql.adaptive.enabled"
_REQUIRED = ("Device", "Model", "gt")


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def inventory(source: Path) -> dict[str, Any]:
    """Entries of a folder (or the files a glob matches), its JSON files and their bytes.

    Entries count everything at the top level, marker files included, as a directory listing
    shows them; JSON files are ``*.json`` and ``*.json.gz``.

    Raises:
        InputDataError: when `source` matches nothing.
    """
    text = str(source)
    if _is_glob(text):
        entries = [Path(item) for item in sorted(glob.glob(text))]
    elif source.is_dir():
        entries = sorted(source.iterdir())
    elif source.exists():
        entries = [source]
    else:
        entries = []
    if not entries:
        msg = f"{source} does not exist or matches nothing"
        raise InputDataError(msg)
    json_files = [
        item
        for item in entries
        if item.is_file()
        and item.name.endswith((".json", ".json.gz"))
        and not item.name.startswith(("_", "."))
    ]
    return {
        "entries": len(entries),
        "json_files": len(json_files),
        "json_bytes": sum(item.stat().st_size for item in json_files),
    }


def _describe(frame: DataFrame) -> dict[str, dict[str, Any]]:
    rows = frame.describe().collect()
    columns = [name for name in frame.columns if name != "summary"]
    described: dict[str, dict[str, Any]] = {name: {} for name in columns}
    for row in rows:
        statistic = row["summary"]
        for name in columns:
            value = row[name]
            if value is not None and statistic == "count":
                value = int(value)
            elif value is not None and statistic in ("mean", "stddev"):
                value = float(value)
            described[name][statistic] = value
    return described


def _counts(frame: DataFrame, *columns: str) -> list[dict[str, Any]]:
    return [row.asDict() for row in frame.groupBy(*columns).count().collect()]


def profile_dataset(
    spark: SparkSession,
    source: Path,
    repartition: int | None = None,
    shuffle_partitions: int | None = None,
) -> dict[str, Any]:
    """Profile the JSON lines at `source` (folder, file or glob) as plain JSON-ready data.

    `shuffle_partitions` sets ``spark.sql.shuffle.partitions`` for the profile's own
    aggregations (restored afterwards); `repartition` shows what ``repartition(N)`` gives.

    Raises:
        InputDataError: when `source` holds nothing or lacks the HHAR columns.
    """
    files = inventory(source)
    frame = spark.read.json(str(source))
    missing = [name for name in _REQUIRED if name not in frame.columns]
    if missing:
        msg = f"{source} is not HHAR activity data: no column {', '.join(missing)}"
        raise InputDataError(msg)
    previous = {key: spark.conf.get(key) for key in (_SHUFFLE, _ADAPTIVE)}
    if shuffle_partitions:
        spark.conf.set(_SHUFFLE, str(shuffle_partitions))
    # Every figure below reads the whole set: read the files once.
    frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        logger.info("profiling %s", source)
        rows = frame.count()
        distinct = frame.distinct().count()
        combinations = sorted(
            _counts(frame, "Device", "gt"),
            key=lambda item: (-item["count"], str(item["Device"]), str(item["gt"])),
        )
        grouped = frame.groupBy("Device", "gt").count()
        adaptive = grouped.rdd.getNumPartitions()
        shuffle_setting = spark.conf.get(_SHUFFLE)
        spark.conf.set(_ADAPTIVE, "false")
        planned = frame.groupBy("Device", "gt").count().rdd.getNumPartitions()
        partitions = {
            "input": frame.rdd.getNumPartitions(),
            "repartition": (
                {
                    "requested": repartition,
                    "partitions": frame.repartition(repartition).rdd.getNumPartitions(),
                }
                if repartition
                else None
            ),
            "shuffle": {
                "setting": None if shuffle_setting is None else int(shuffle_setting),
                "aggregation_partitions": planned,
                "after_adaptive_coalescing": adaptive,
            },
        }
        return {
            "source": str(source),
            "inventory": files,
            "schema": frame.schema.treeString(),
            "schema_matches_sensor_event": frame.schema == EVENT_SCHEMA,
            "rows": rows,
            "distinct_rows": distinct,
            "duplicates": rows - distinct,
            "describe": _describe(frame),
            "model_device": sorted(
                _counts(frame, "Model", "Device"),
                key=lambda item: (str(item["Model"]), str(item["Device"])),
            ),
            "device_activity": combinations,
            "top_device_activity": combinations[0] if combinations else None,
            "partitions": partitions,
        }
    finally:
        frame.unpersist()
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    return table


def render_profile(profile: dict[str, Any], console: Console | None = None) -> None:
    """Print a profile as tables for people."""
    out = console or Console(file=sys.stdout, width=max(Console().width, 132))
    files = profile["inventory"]
    out.print(
        f"[bold]{profile['source']}[/]: {files['entries']} entries, {files['json_files']} JSON "
        f"files, {files['json_bytes']:,} bytes of JSON"
    )
    out.print(profile["schema"], end="", markup=False, highlight=False)
    matches = "yes" if profile["schema_matches_sensor_event"] else "no"
    out.print(f"schema equals SensorEvent's: {matches}")
    out.print(
        f"rows {profile['rows']:,}, distinct {profile['distinct_rows']:,}, "
        f"duplicates {profile['duplicates']:,}"
    )
    statistics = ["count", "mean", "stddev", "min", "max"]
    out.print(
        _table(
            "describe()",
            ["column", *statistics],
            [
                [name, *(values.get(item) for item in statistics)]
                for name, values in profile["describe"].items()
            ],
        )
    )
    out.print(
        _table(
            "Model x Device",
            ["Model", "Device", "count"],
            [
                [item["Model"], item["Device"], f"{item['count']:,}"]
                for item in profile["model_device"]
            ],
        )
    )
    out.print(
        _table(
            "Device x gt (by count)",
            ["Device", "gt", "count"],
            [
                [item["Device"], item["gt"], f"{item['count']:,}"]
                for item in profile["device_activity"]
            ],
        )
    )
    top = profile["top_device_activity"]
    if top:
        out.print(f"top combination: {top['Device']} / {top['gt']} ({top['count']:,} rows)")
    partitions = profile["partitions"]
    out.print(f"input partitions: {partitions['input']}")
    if partitions["repartition"]:
        requested = partitions["repartition"]
        out.print(f"repartition({requested['requested']}): {requested['partitions']} partitions")
    shuffle = partitions["shuffle"]
    out.print(
        f"spark.sql.shuffle.partitions = {shuffle['setting']}: an aggregation shuffles into "
        f"{shuffle['aggregation_partitions']} partitions, which adaptive execution coalesces "
        f"to {shuffle['after_adaptive_coalescing']}"
    )
