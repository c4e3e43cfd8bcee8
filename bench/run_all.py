"""The benchmark suite (`make bench`): every figure of BENCHMARKS.md, measured in one run.

Starts its own Kafka broker (free ports, a temporary folder), generates the data with
`hhar data synth`, runs every measurement as a subprocess of the real CLI (or of a small
script) while sampling the peak memory of its process tree, and prints one table:

1. producer: `kcat -P`, the bare confluent-kafka loop and `hhar produce --max` with 1, 2 and 4
   workers on the same file and broker (bench/producer_bench.py), each with the load average,
   and Kafka's own ProducerPerformance from the project's jars;
2. processor throughput on the main size already in the topic: the exercise's file stream
   (bench/baseline_file_stream.py), the per-query engine and the fused engine, all queries;
3. end-to-end latency at a steady rate with a 1 s trigger (fused engine), p50/p95/p99;
4. peak RSS of every producer and processor run (JVM and Python apart; the producer's per
   worker from a `--workers 2` run of each size);
5. scaling: produce + process each size (default 100k, 1M and the full 6,240,991 rows).

It writes bench/out/results.json, bench/out/benchmarks.png and, unless --quick, the table
section of BENCHMARKS.md and the plot beside it (bench/benchmarks.png).

    python bench/run_all.py [--sizes 100000,1000000,6240991] [--quick]

Not a test: figures depend on the machine and its load (the broker runs on it too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Measured, Running, load_average, run  # noqa: E402
from report import render_outputs, render_table  # noqa: E402

from hhar_stream.daemons import free_port, java_executable  # noqa: E402
from hhar_stream.local.kafka import LocalKafka  # noqa: E402
from hhar_stream.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
FULL_ROWS = 6_240_991
DEFAULT_SIZES = (100_000, 1_000_000, FULL_ROWS)
QUICK_SIZES = (20_000, 100_000)
PARTITIONS = 3
PERF_PAYLOAD_LINES = 100_000
LATENCY_RATE = 5000.0
LATENCY_SECONDS = 60.0
LATENCY_SEED_EVENTS = 1000
QUICK_LATENCY_SECONDS = 15.0
PROCESS_TIMEOUT = 1800.0


def log(message: str) -> None:
    """Progress of the suite on stderr (the table goes to stdout)."""
    stamp = dt.datetime.now().astimezone().strftime("%H:%M:%S")
    print(f"[{stamp} load {load_average():.1f}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model and versions of the machine the figures come from."""
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo)[1])
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    java = subprocess.run([java_executable(), "-version"], capture_output=True, text=True,
                          check=False).stderr.splitlines()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(total_kb / 1024 / 1024, 1),
        "cpu": model[1].strip() if model else platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": java[0] if java else "?",
        "kcat": (subprocess.run(["kcat", "-V"], capture_output=True, text=True, check=False)
                 .stdout.splitlines() or ["?"])[0],
    }


def hhar(*args: str) -> list[str]:
    """The `hhar` command line, run with this interpreter."""
    return [sys.executable, "-m", "hhar_stream.cli", *args]


def processor_summary(measured: Measured) -> dict[str, Any]:
    """The JSON summary that `hhar process --json` (or the baseline) printed last."""
    text = measured.stdout
    start = text.rfind("\n{")
    start = 0 if text.startswith("{") and start < 0 else start + 1
    return json.loads(text[start:])


def memory_of(measured: Measured) -> dict[str, float]:
    """Peak RSS (MB) of the run: JVM, Python, the whole tree at one time, wait4's figure."""
    memory = measured.memory
    return {
        "jvm_mb": round(memory.peak("java"), 1),
        "python_mb": round(memory.peak("python"), 1),
        "other_mb": round(memory.peak("other"), 1),
        "tree_mb": round(memory.peak_sum, 1),
        "wait4_mb": round(measured.own_maxrss, 1),
        "cpu_s": round(memory.cpu_seconds, 1),
        "processes": sorted(
            ([memory.kind_by_pid.get(pid, "?"), round(mb, 1)]
             for pid, mb in memory.peak_by_pid.items() if mb >= 20),
            key=lambda item: -item[1]),
    }


class Suite:
    """One run of the benchmark suite against its own broker."""

    def __init__(self, args: argparse.Namespace, work: Path, bootstrap: str) -> None:
        self.args = args
        self.work = work
        self.bootstrap = bootstrap
        self.settings = Settings(home=REPO / ".hhar", bootstrap=bootstrap)
        self.env = os.environ | {
            "HHAR_HOME": str(REPO / ".hhar"),
            "HHAR_BOOTSTRAP": bootstrap,
            "HHAR_LOG_LEVEL": "INFO",
            "TERM": "dumb",
        }
        self.results: dict[str, Any] = {"runs": {}}
        self.admin = AdminClient(self.settings.kafka_client_config())

    def save(self) -> None:
        """Write what was measured so far (bench/out/results.json, table.md)."""
        (OUT / "results.json").write_text(json.dumps(self.results, indent=2))
        try:
            (OUT / "table.md").write_text(render_table(self.results))
        except (KeyError, TypeError, ValueError) as error:
            log(f"warning: no table yet: {error!r}")

    # -- helpers -------------------------------------------------------------------------------
    def run(self, name: str, command: list[str], **kwargs: Any) -> Measured:
        log(f"{name}: {' '.join(command[2:8]) if command[0] == sys.executable else command[0]}")
        kwargs.setdefault("timeout", PROCESS_TIMEOUT)
        load = load_average()
        measured = run(command, self.work, name, env=self.env, cwd=REPO, **kwargs).check()
        self.results["runs"][name] = {
            "wall_s": round(measured.wall, 2), "load_before": round(load, 2),
            "load_after": round(load_average(), 2), "memory": memory_of(measured),
        }
        return measured

    def create_topic(self, name: str, config: dict[str, str] | None = None,
                     partitions: int = PARTITIONS) -> None:
        future = self.admin.create_topics(
            [NewTopic(name, partitions, 1, config={"retention.ms": "-1"} | (config or {}))]
        )[name]
        future.result(timeout=30)

    def data(self, rows: int) -> Path:
        folder = self.work / f"data-{rows}"
        if not folder.exists():
            measured = self.run(f"synth_{rows}", hhar("data", "synth", "--out", str(folder),
                                                       "--rows", str(rows)))
            self.results["runs"][f"synth_{rows}"]["rows_per_s"] = round(rows / measured.wall)
        return folder

    def produce(self, name: str, source: Path, topic: str, *extra: str) -> dict[str, Any]:
        measured = self.run(name, hhar("produce", "--source", str(source), "--topic", topic,
                                       "--partitions", str(PARTITIONS), *extra))
        delivered = int(re.search(r"delivered ([\d,]+) events", measured.stdout)[1]
                        .replace(",", ""))
        elapsed = float(re.search(r"elapsed ([\d.]+) s", measured.stdout)[1])
        drift = float(re.search(r"max drift ([\d.]+) s", measured.stdout)[1])
        figures = self.results["runs"][name] | {
            "events": delivered,
            "loop_s": elapsed,
            "max_drift_s": drift,
            "events_per_s": round(delivered / elapsed),
            "process_events_per_s": round(delivered / measured.wall),
        }
        self.results["runs"][name] = figures
        return figures

    def process(self, name: str, topic: str, history: Path, engine: str,
                *extra: str) -> dict[str, Any]:
        checkpoint = self.work / "checkpoints" / name
        measured = self.run(name, hhar(
            "process", "--topic", topic, "--engine", engine, "--available-now", "--json",
            "--checkpoint", str(checkpoint), "--history", str(history),
            "--results-prefix", f"bench.{name}.", *extra,
        ))
        summary = processor_summary(measured)
        per_query = {query: figures.get("input_rows", 0)
                     for query, figures in summary["queries"].items()}
        figures = self.results["runs"][name] | {
            "engine": engine,
            "events": summary["events"],
            "seconds": summary["seconds"],
            "events_per_s": summary["events_per_second"],
            "streaming_queries": len(per_query),
            "input_rows_per_query": per_query,
            "batches": {query: figures.get("batches", 0)
                        for query, figures in summary["queries"].items()},
            "last_batch_ms": {query: (figures.get("last_progress") or {}).get("duration_ms")
                              for query, figures in summary["queries"].items()},
        }
        self.results["runs"][name] = figures
        return figures

    # -- 1. producer ---------------------------------------------------------------------------
    def producer_section(self, rows: int, data: Path) -> None:
        log(f"1. producer: kcat, the bare client loop and hhar produce with 1, 2 and 4 workers "
            f"({rows:,} rows), bench/producer_bench.py")
        figures = OUT / "producer_bench.json"
        measured = self.run("producer_bench", [
            sys.executable, str(REPO / "bench" / "producer_bench.py"), "--rows", str(rows),
            "--bootstrap", self.bootstrap, "--profile-rows", str(min(rows, 200_000)),
            "--workers", "1,2,4", "--json", str(figures),
        ])
        (OUT / "producer_bench.txt").write_text(measured.stdout)
        bench = json.loads(figures.read_text())
        self.results["producer"] = {
            "rows": rows,
            "cores": bench["cores"],
            "contenders": bench["medians"],
            "reader_rows_per_s": bench["reader_rows_per_s"],
            "reader_merged_rows_per_s": bench["reader_merged_rows_per_s"],
            "cpu_us_python": bench["cpu_us_python"],
            "cpu_us_librdkafka": bench["cpu_us_librdkafka"],
            "load": self.results["runs"]["producer_bench"]["load_before"],
        }
        self.producer_performance(rows, data)

    def producer_performance(self, rows: int, data: Path) -> None:
        """Kafka's ProducerPerformance: random lines of the same data, same producer settings."""
        payload = self.work / "perf-payload.txt"
        with payload.open("wb") as out:
            written = 0
            for part in sorted(data.glob("part-*.json")):
                with part.open("rb") as lines:
                    for line in lines:
                        out.write(line)
                        written += 1
                        if written >= PERF_PAYLOAD_LINES:
                            break
                if written >= PERF_PAYLOAD_LINES:
                    break
        topic = "bench.perf"
        self.create_topic(topic)
        s = self.settings
        command = [
            java_executable(), "-Xmx512m", "-cp", f"{(REPO / '.hhar' / 'kafka' / 'libs')}/*",
            "org.apache.kafka.tools.ProducerPerformance", "--bootstrap-server", self.bootstrap,
            "--topic", topic, "--num-records", str(rows), "--throughput", "-1",
            "--payload-file", str(payload), "--command-property", f"linger.ms={s.linger_ms}",
            f"batch.size={s.batch_size}", f"compression.type={s.compression}",
            "enable.idempotence=true", "acks=all",
        ]
        measured = self.run("producer_performance", command)
        # Progress lines every 5 s have the same form as the final summary: take the last.
        summaries = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", measured.stdout)
        found = summaries[-1] if summaries else None
        if found is None:
            msg = f"unexpected output of ProducerPerformance:\n{measured.stdout[-2000:]}"
            raise RuntimeError(msg)
        self.results["producer"] |= {
            "perf_events_per_s": float(found[1]),
            "perf_rss_mb": memory_of(measured)["jvm_mb"],
            "perf_wall_s": round(measured.wall, 2),
        }

    # -- 2. processor throughput ---------------------------------------------------------------
    def throughput_section(self, rows: int, data: Path, topic: str) -> None:
        log(f"2. processor throughput ({rows:,} events in {topic})")
        measured = self.run("baseline", [
            sys.executable, str(REPO / "bench" / "baseline_file_stream.py"), "--source",
            str(data), "--checkpoint", str(self.work / "checkpoints" / "baseline"),
        ])
        summary = processor_summary(measured)
        self.results["runs"]["baseline"] |= {
            "events": summary["events"], "seconds": summary["seconds"],
            "events_per_s": summary["events_per_second"], "batches": summary["batches"],
            "counted": summary["counted"],
        }
        # The three runs of this section follow each other, so that they meet similar load.
        self.process(f"per_query_{rows}", topic, data, "per-query")
        self.process(f"fused_section2_{rows}", topic, data, "fused")

    def profile_section(self, data: Path, topic: str) -> None:
        """The processor's stages timed apart (bench/profile_processor.py)."""
        log(f"profile of the processor's stages on {topic}")
        measured = self.run("profile_processor", [
            sys.executable, str(REPO / "bench" / "profile_processor.py"), "--topic", topic,
            "--history", str(data),
        ])
        self.results["profile"] = processor_summary(measured)

    # -- 3. latency ----------------------------------------------------------------------------
    def latency_section(self, data: Path) -> None:
        rate, seconds = self.args.rate, self.args.latency_seconds
        events = int(rate * seconds)
        log(f"3. latency: {events:,} events at {rate:,.0f}/s, fused engine, trigger 1 s")
        topic, prefix = "bench.latency.events", "bench.latency.results."
        append_time = {"message.timestamp.type": "LogAppendTime"}
        self.create_topic(topic, append_time)
        self.create_topic(prefix + "total_count", append_time)
        # A few events first: the processor's first batch then has data (the fused engine
        # fails on a first micro-batch without events: total_count's sum over no rows is null),
        # and its first two micro-batches, which pay for code generation, are not measured.
        seed = self.produce("latency_seed", data, topic, "--max", "--limit",
                            str(LATENCY_SEED_EVENTS))["events"]
        checkpoint = self.work / "checkpoints" / "latency"
        load = load_average()
        processor = Running(hhar(
            "process", "--topic", topic, "--engine", "fused", "--trigger", "1 second",
            "--checkpoint", str(checkpoint), "--history", str(data), "--results-prefix", prefix,
            "--json",
        ), self.work, "latency_processor", env=self.env, cwd=REPO)
        try:
            self._wait_for_queries(processor, checkpoint / "status.json", seed)
            # A second seed batch: the second micro-batch of a stateful query (the first that
            # restores state) is as slow as the first; neither is the steady state.
            seed += self.produce("latency_seed_2", data, topic, "--max", "--limit",
                                 str(LATENCY_SEED_EVENTS))["events"]
            self._wait_for_queries(processor, checkpoint / "status.json", seed)
            producer = self.produce("latency_producer", data, topic, "--rate", str(rate),
                                    "--now", "--limit", str(events))
            self._wait_for_count(processor, checkpoint / "status.json",
                                 seed + producer["events"])
        finally:
            processor.stop()
            measured = processor.finish(timeout=90)
        self.results["runs"]["latency_processor"] = {
            "wall_s": round(measured.wall, 2), "load_before": round(load, 2),
            "load_after": round(load_average(), 2), "memory": memory_of(measured),
        }
        appended = np.sort(np.array([ts for ts, _ in self.read_topic(topic, values=False)],
                                    dtype=np.int64))
        results = sorted((ts, json.loads(value)["count"])
                         for ts, value in self.read_topic(prefix + "total_count"))
        self.results["latency"] = latency_figures(appended, results, skip=seed) | {
            "rate": rate, "seconds": seconds, "seed_events": seed,
            "producer_events_per_s": producer["events_per_s"],
            "producer_max_drift_s": producer["max_drift_s"],
            "processor_exit": measured.returncode,
            "load": round(load, 2),
        }

    def _wait_for_queries(self, processor: Running, status: Path, seed: int,
                          timeout: float = 600) -> None:
        """Wait until every streaming query has processed the seed: a warm processor."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not processor.alive():
                msg = f"the processor ended early:\n{processor.err_path.read_text()[-3000:]}"
                raise RuntimeError(msg)
            try:
                queries = json.loads(status.read_text())["queries"]
            except (OSError, ValueError):
                queries = {}
            if len(queries) >= 3 and all(query["active"] and query["input_rows"] >= seed
                                         for query in queries.values()):
                time.sleep(2.0)
                return
            time.sleep(0.5)
        msg = "the processor's queries did not start in time"
        raise RuntimeError(msg)

    def _wait_for_count(self, processor: Running, status: Path, events: int,
                        timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and processor.alive():
            try:
                fused = json.loads(status.read_text())["queries"].get("fused", {})
            except (OSError, ValueError):
                fused = {}
            if fused.get("input_rows", 0) >= events:
                time.sleep(2.0)
                return
            time.sleep(0.5)
        log("warning: the processor did not catch up with the producer in time")

    def read_topic(self, topic: str, values: bool = True) -> list[tuple[int, Any]]:
        """Every committed record of `topic`: (Kafka timestamp in ms, value or None)."""
        consumer = Consumer(self.settings.kafka_client_config() | {
            "group.id": f"bench-{os.getpid()}-{topic}", "enable.auto.commit": False,
            "isolation.level": "read_committed", "enable.partition.eof": True,
        })
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = [TopicPartition(topic, p, -2) for p in metadata.partitions]
        consumer.assign(partitions)
        pending = {p.partition for p in partitions}
        records: list[tuple[int, Any]] = []
        try:
            while pending:
                for message in consumer.consume(10_000, timeout=1.0):
                    if message.error():
                        if message.error().code() == KafkaError._PARTITION_EOF:
                            pending.discard(message.partition())
                        continue
                    records.append((message.timestamp()[1],
                                    message.value() if values else None))
        finally:
            consumer.close()
        return records

    # -- 5. scaling ----------------------------------------------------------------------------
    def scaling_run(self, rows: int) -> Path:
        data = self.data(rows)
        topic = f"bench.events.{rows}"
        log(f"5. scaling: {rows:,} rows, produce --max then process (fused)")
        self.produce(f"produce_{rows}", data, topic, "--max")
        self.process(f"fused_{rows}", topic, data, "fused")
        # The producer's memory per worker (section 4), into a topic of its own.
        spare = f"{topic}.workers"
        self.produce(f"produce_workers_{rows}", data, spare, "--max", "--workers", "2")
        for future in self.admin.delete_topics([spare, f"{spare}.dlq"]).values():
            future.result(timeout=60)
        return data


def latency_figures(appended: np.ndarray, results: list[tuple[int, int]],
                    skip: int = 0) -> dict[str, Any]:
    """Per-event latency: the first result record whose count includes the event.

    `appended`: the events' append times (ms), sorted; the event of rank k (1-based) is
    included in every ``total_count`` record with count >= k. Within one producer transaction
    all events become visible together, and transactions follow each other, so the counted
    events are always a prefix of the events in append order. The first `skip` events (the
    seed, written before the measurement to warm the processor up) are left out.
    """
    measured = appended[skip:]
    if not results or len(measured) == 0:
        return {"events": int(len(measured)), "included": 0}
    times = np.array([ts for ts, _ in results], dtype=np.int64)
    counts = np.maximum.accumulate(np.array([count for _, count in results], dtype=np.int64))
    ranks = np.arange(skip + 1, len(appended) + 1)
    first = np.searchsorted(counts, ranks, side="left")
    included = first < len(counts)
    if not included.any():
        return {"events": int(len(measured)), "included": 0}
    latency = (times[first[included]] - measured[included]) / 1000.0
    p50, p95, p99 = np.percentile(latency, [50, 95, 99])
    return {
        "events": int(len(measured)),
        "included": int(included.sum()),
        "result_records": len(results),
        "p50_s": round(float(p50), 3),
        "p95_s": round(float(p95), 3),
        "p99_s": round(float(p99), 3),
        "max_s": round(float(latency.max()), 3),
        "mean_s": round(float(latency.mean()), 3),
        "histogram_s": np.histogram(latency, bins=40)[0].tolist(),
        "histogram_edges_s": np.round(np.histogram(latency, bins=40)[1], 3).tolist(),
    }


def parse_sizes(text: str) -> list[int]:
    return sorted({int(item.replace("_", "")) for item in text.split(",") if item.strip()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes,
                        help="rows of the scaling runs (default 100000,1000000,6240991)")
    parser.add_argument("--main-size", type=int,
                        help="rows of sections 1-3 (default 1,000,000; --quick: 100,000)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and a short latency run, for a smoke test; "
                             "does not touch BENCHMARKS.md")
    parser.add_argument("--rate", type=float, default=LATENCY_RATE,
                        help="producer rate of the latency run (events/s)")
    parser.add_argument("--latency-seconds", type=float,
                        help=f"length of the latency run (default {LATENCY_SECONDS:.0f} s)")
    parser.add_argument("--sections", default="1,2,3,5,profile",
                        help="sections to run (default all: 1,2,3,5,profile; 4, memory, comes "
                             "with each)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--no-docs", action="store_true",
                        help="leave BENCHMARKS.md and bench/benchmarks.png alone")
    parser.add_argument("--render-only", action="store_true",
                        help="only redraw the table, plot and BENCHMARKS.md from "
                             "bench/out/results.json")
    args = parser.parse_args()
    if args.render_only:
        results = json.loads((OUT / "results.json").read_text())
        print(render_outputs(results, OUT, REPO, write_docs=not results["quick"]))
        return 0
    sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    main_size = args.main_size or (100_000 if args.quick else 1_000_000)
    sizes = sorted(set(sizes) | {main_size})
    if args.latency_seconds is None:
        args.latency_seconds = QUICK_LATENCY_SECONDS if args.quick else LATENCY_SECONDS
    if args.rate * args.latency_seconds > main_size:
        parser.error("the latency run needs rate x seconds <= the main size")
    if shutil.which("kcat") is None:
        parser.error("kcat not found: apt-get install kcat")
    OUT.mkdir(parents=True, exist_ok=True)

    work = Path(tempfile.mkdtemp(prefix="hhar-bench-"))
    base = Settings(home=REPO / ".hhar", kafka_port=free_port(),
                    kafka_controller_port=free_port())
    broker = LocalKafka(base, run_dir=work / "kafka")
    started = time.monotonic()
    try:
        broker.up()
        suite = Suite(args, work, broker.bootstrap)
        suite.results |= {
            "machine": machine(),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "load_at_start": [round(x, 2) for x in os.getloadavg()],
            "sizes": sizes if "5" in args.sections else [main_size], "main_size": main_size,
            "quick": args.quick,
        }
        log(f"broker {broker.bootstrap}; work folder {work}; sizes {sizes}, main {main_size}")
        sections = {item.strip() for item in args.sections.split(",")}
        main_data = suite.scaling_run(main_size)
        suite.save()
        if "1" in sections:
            suite.producer_section(main_size, main_data)
            suite.save()
        if "2" in sections:
            suite.throughput_section(main_size, main_data, f"bench.events.{main_size}")
            suite.save()
        if "profile" in sections:
            suite.profile_section(main_data, f"bench.events.{main_size}")
            suite.save()
        if "3" in sections:
            suite.latency_section(main_data)
            suite.save()
        for rows in sizes:
            if rows != main_size and "5" in sections:
                suite.scaling_run(rows)
                shutil.rmtree(work / f"data-{rows}", ignore_errors=True)
                suite.save()
        suite.results |= {
            "load_at_end": [round(x, 2) for x in os.getloadavg()],
            "suite_minutes": round((time.monotonic() - started) / 60, 1),
        }
        (OUT / "results.json").write_text(json.dumps(suite.results, indent=2))
        table = render_outputs(suite.results, OUT, REPO,
                               write_docs=not (args.quick or args.no_docs))
        print(table)
    finally:
        broker.down()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
