"""The pipeline on a three-broker Kafka cluster and a two-worker Spark cluster, beside the
single-node default, in the same run on the same data.

It starts, in a temporary folder and on free ports, a one-broker Kafka and a three-broker KRaft
cluster (replication factor 3, min.insync.replicas 2), and a Spark standalone master with two
one-core workers. Then, for each of the two set-ups, it replays the generated rows with
`hhar produce --max` and runs `hhar process --available-now --json` over them (local[2] on the
single node, the standalone cluster on the clusters) and prints one table: events/s of each
stage and the ratio cluster / single node. Everything it started is stopped at the end.

    python bench/cluster_bench.py [--rows 200000]

On a 2-core machine both set-ups share the same two cores, so the ratio shows the cost of
replication and of the executor hops, not a gain from more hardware.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hhar_stream.daemons import free_port_base
from hhar_stream.local.kafka import LocalKafka
from hhar_stream.local.spark import LocalSpark
from hhar_stream.settings import Settings


def hhar(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Run `hhar <args>`; its wall time and stdout (exits on failure)."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "hhar_stream.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"hhar {' '.join(args[:2])} failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - started, done.stdout


def pipeline(settings: Settings, master: str, work: Path, data: Path, name: str) -> dict:
    """Produce the data and process it once; the figures."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HHAR_")}
    env |= {
        "HHAR_BOOTSTRAP": settings.bootstrap,
        "HHAR_TOPIC": f"bench-{name}.events",
        "HHAR_RESULTS_PREFIX": f"bench-{name}.results.",
        "HHAR_PARTITIONS": "3",
        "HHAR_REPLICATION_FACTOR": str(settings.replication_factor),
        "HHAR_MIN_INSYNC_REPLICAS": str(settings.min_insync_replicas),
        "HHAR_HISTORY": str(data),
        "HHAR_CHECKPOINT": str(work / name / "checkpoints"),
        "HHAR_EXECUTOR_MEMORY": "768m",
        "HHAR_DRIVER_MEMORY": "1g",
    }
    produce_s, _ = hhar(["produce", "--source", str(data), "--max"], env)
    process_s, out = hhar(["process", "--available-now", "--json", "--master", master], env)
    summary = json.loads(out)
    return {
        "events": summary["events"],
        "produce_s": produce_s,
        "process_s": process_s,
        "queries_events_per_s": summary["events_per_second"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows to generate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hhar-cluster-bench-") as folder:
        work = Path(folder)
        data = work / "data"
        hhar(["data", "synth", "--out", str(data), "--rows", str(args.rows)], dict(os.environ))
        step = LocalKafka.PORT_STEP
        base = Settings()
        single_port = free_port_base(0, 1)
        cluster_port = free_port_base(*(n * step + o for n in range(3) for o in (0, 1)))
        spark_port = free_port_base(0, 1, 2, 3)
        single = base.changed(
            **{
                "kafka_port": single_port,
                "kafka_controller_port": single_port + 1,
                "kafka_heap": "512m",
            }
        )
        clustered = base.changed(
            **{
                "kafka_brokers": 3,
                "kafka_port": cluster_port,
                "kafka_controller_port": cluster_port + 1,
                "kafka_heap": "384m",
                "replication_factor": 3,
                "min_insync_replicas": 2,
                "spark_workers": 2,
                "spark_master_port": spark_port,
                "spark_master_ui_port": spark_port + 1,
                "spark_worker_memory": "1g",
            }
        )
        kafka_single = LocalKafka(single, run_dir=work / "kafka-single")
        kafka_cluster = LocalKafka(clustered, run_dir=work / "kafka-cluster")
        spark_cluster = LocalSpark(clustered, run_dir=work / "spark")
        try:
            for started in (kafka_single, kafka_cluster, spark_cluster):
                print(started.up(), file=sys.stderr)
            single = single.changed(**{"bootstrap": kafka_single.bootstrap})
            clustered = clustered.changed(**{"bootstrap": kafka_cluster.bootstrap})
            figures = {
                "single node (1 broker, local[2])": pipeline(
                    single, "local[2]", work, data, "single"
                ),
                "clusters (3 brokers, 2 workers)": pipeline(
                    clustered, spark_cluster.master_url, work, data, "cluster"
                ),
            }
        finally:
            spark_cluster.down()
            kafka_cluster.down()
            kafka_single.down()
    reference = next(iter(figures.values()))
    print(f"{args.rows:,} rows on {os.cpu_count()} cores, the same run:")
    print(
        "| set-up | produce --max | process --available-now (queries) | whole process run | "
        "ratio to single node |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, run in figures.items():
        ratio = run["queries_events_per_s"] / reference["queries_events_per_s"]
        print(
            f"| {name} | {run['events'] / run['produce_s']:,.0f} events/s | "
            f"{run['queries_events_per_s']:,.0f} events/s | {run['process_s']:.0f} s | "
            f"{ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
