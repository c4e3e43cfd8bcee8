"""Spark reads a generated folder as it reads the real one: same schema, all rows, no markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from hhar_stream.generator.plan import plan_dataset
from hhar_stream.generator.synth import write_dataset
from hhar_stream.schemas import SensorEvent

pytestmark = pytest.mark.spark

ROWS = 20_000


def test_spark_reads_the_data_sets_schema_and_count(spark, tmp_path: Path) -> None:
    from pyspark.testing import assertSchemaEqual

    from hhar_stream.schemas.spark import to_spark_schema

    folder = tmp_path / "activity-data"
    result = write_dataset(folder, rows=ROWS, files=8, seed=8)
    assert len(list(folder.iterdir())) == 8 + 3  # the part files and three markers
    frame = spark.read.json(str(folder))
    assertSchemaEqual(frame.schema, to_spark_schema(SensorEvent))
    read = sorted(Path(uri.removeprefix("file://")).name for uri in frame.inputFiles())
    assert read == sorted(path.name for path in result.part_files)
    counts = {
        (row["Device"], row["gt"]): row["count"]
        for row in frame.groupBy("Device", "gt").count().collect()
    }
    assert sum(counts.values()) == ROWS
    assert counts == plan_dataset(ROWS, seed=8).device_activity_counts
