"""The pipeline on a three-broker Kafka cluster and a two-worker Spark cluster, beside the
single-node default, in the same run on the same data.

It starts, in a temporary folder and on free ports, a one-broker Kafka and a three-broker KRaft
cluster (replication factor 3, min.insync.replicas 2), and a Spark standalone master with two
one-core workers. Then, for each of the two set-ups, it replays the generated rows with
`hhar produce --max` and runs `hhar process --available-now --json` over them (local[2] on the
single node, the standalone cluster on the clusters) and prints one table: events/s of each
stage and the ratio cluster / single node. Everything it started is stopped at the end.

    python bench/cluster_bench.py [--rows 200000] [--devices N] [--kill-worker]

`--devices N` fans every row out to N virtual devices per recorded one (``--rows 1000
--devices 10000``: 10,000,000 events, 1,260,000 fine keys). Every result topic of the two
set-ups is then read back and compared (counts exactly, averages to 1e-9). With
`--kill-worker`, a third run on the clusters: one Spark worker is killed (SIGKILL, with its
executor) while the processor runs, the processor is stopped and restarted from its checkpoint
with the worker back, and its results are compared with the single node's too.

On a 2-core machine both set-ups share the same two cores, so the ratio shows the cost of
replication and of the executor hops, not a gain from more hardware.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hhar_stream.apps.results import ResultReader
from hhar_stream.daemons import free_port_base
from hhar_stream.local.kafka import LocalKafka
from hhar_stream.local.spark import LocalSpark
from hhar_stream.processor.catalogue import CATALOGUE
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


def environment(settings: Settings, work: Path, data: Path, name: str, devices: int) -> dict:
    """The environment of the commands of one set-up."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HHAR_")}
    env |= {
        "HHAR_BOOTSTRAP": settings.bootstrap,
        "HHAR_TOPIC": f"bench-{name}.events",
        "HHAR_RESULTS_PREFIX": f"bench-{name}.results.",
        "HHAR_PARTITIONS": "3",
        "HHAR_REPLICATION_FACTOR": str(settings.replication_factor),
        "HHAR_MIN_INSYNC_REPLICAS": str(settings.min_insync_replicas),
        "HHAR_SOURCE": str(data),
        "HHAR_HISTORY": str(data),
        "HHAR_CHECKPOINT": str(work / name / "checkpoints"),
        "HHAR_EXECUTOR_MEMORY": "768m",
        "HHAR_DRIVER_MEMORY": "1g",
        "HHAR_DEVICES": str(devices),
        "HHAR_MAX_OFFSETS_PER_TRIGGER": "500000",
    }
    return env


def pipeline(env: dict, master: str) -> dict:
    """Produce the data and process it once; the figures."""
    produce_s, _ = hhar(["produce", "--max"], env)
    process_s, out = hhar(["process", "--available-now", "--json", "--master", master], env)
    summary = json.loads(out)
    return {
        "events": summary["events"],
        "produce_s": produce_s,
        "process_s": process_s,
        "queries_events_per_s": summary["events_per_second"],
    }


def killed_worker_run(env: dict, spark: LocalSpark) -> dict:
    """Process with one worker killed mid-run, stop, restart from the checkpoint with the
    worker back, to the end; the figures."""
    hhar(["produce", "--max"], env)
    command = [sys.executable, "-m", "hhar_stream.cli", "process", "--master", spark.master_url]
    started = time.perf_counter()
    processor = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )  # noqa: S603
    status = Path(env["HHAR_CHECKPOINT"]) / "status.json"
    killed_after = None
    while processor.poll() is None and time.perf_counter() - started < 3600:
        time.sleep(1)
        try:
            fused = json.loads(status.read_text())["queries"].get("fused", {})
        except (OSError, ValueError):
            continue
        if killed_after is None and fused.get("batches", 0) >= 2:
            killed_after = fused["input_rows"]
            spark.kill_worker(1)
            print(f"killed worker 1 after {killed_after:,} events", file=sys.stderr)
        elif killed_after is not None and fused.get("input_rows", 0) > killed_after:
            break  # the query went on with one worker: now stop it and restart
    processor.send_signal(signal.SIGTERM)
    _, stderr = processor.communicate(timeout=300)
    if processor.returncode != 0:
        sys.exit(f"the processor with a worker killed failed: {stderr.strip().splitlines()[-1:]}")
    spark.start_worker(1)
    _, out = hhar(["process", "--available-now", "--json", "--master", spark.master_url], env)
    return {"killed_after_events": killed_after, "events": json.loads(out)["events"]}


def results(env: dict) -> dict[str, dict[bytes, dict]]:
    """Every result topic of one set-up, the latest row per key (batch ids left out)."""
    settings = Settings(bootstrap=env["HHAR_BOOTSTRAP"], results_prefix=env["HHAR_RESULTS_PREFIX"])
    reader = ResultReader(settings, CATALOGUE, group=f"cluster-bench-{os.getpid()}")
    try:
        reader.read_to_end(timeout=600)
    finally:
        reader.close()
    return {
        query: {key: r.model_dump(exclude={"batch_id"}) for key, r in rows.items()}
        for query, rows in reader.state.latest.items()
    }


def differences(actual: dict, expected: dict) -> dict[str, str]:
    """Per query, what differs (empty: the same rows)."""
    found = {}
    for query in CATALOGUE:
        got, want = actual.get(query, {}), expected.get(query, {})
        if got.keys() != want.keys():
            found[query] = f"{len(got):,} keys against {len(want):,}"
            continue
        for key, row in want.items():
            same = all(
                math.isclose(got[key][name], value, rel_tol=1e-9, abs_tol=1e-12)
                if isinstance(value, float)
                else got[key][name] == value
                for name, value in row.items()
            )
            if not same:
                found[query] = f"key {key.decode()}: {got[key]} against {row}"
                break
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows to generate")
    parser.add_argument(
        "--devices", type=int, default=1, help="virtual devices per recorded one (a fleet)"
    )
    parser.add_argument(
        "--kill-worker",
        action="store_true",
        help="also a run with a Spark worker killed mid-run and the query restarted",
    )
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
            envs = {
                "single": environment(single, work, data, "single", args.devices),
                "cluster": environment(clustered, work, data, "cluster", args.devices),
            }
            figures = {
                "single node (1 broker, local[2])": pipeline(envs["single"], "local[2]"),
                "clusters (3 brokers, 2 workers)": pipeline(
                    envs["cluster"], spark_cluster.master_url
                ),
            }
            expected = results(envs["single"])
            compared = {"clusters": differences(results(envs["cluster"]), expected)}
            if args.kill_worker:
                envs["killed"] = environment(clustered, work, data, "killed", args.devices)
                killed = killed_worker_run(envs["killed"], spark_cluster)
                print(f"worker killed run: {killed}", file=sys.stderr)
                compared["clusters, a worker killed"] = differences(
                    results(envs["killed"]), expected
                )
        finally:
            spark_cluster.down()
            kafka_cluster.down()
            kafka_single.down()
    reference = next(iter(figures.values()))
    print(
        f"{args.rows:,} rows x {args.devices:,} virtual devices on {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f} at the end, the same run:"
    )
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

    for name, found in compared.items():
        rows = {q: len(r) for q, r in expected.items()}
        verdict = "the same results" if not found else f"DIFFERENT: {found}"
        print(f"{name} against the single node ({rows} rows per query): {verdict}")


if __name__ == "__main__":
    main()
