"""The benchmark suite (`make bench`): every figure of BENCHMARKS.md, measured in one run.

Starts its own Kafka broker (free ports, a temporary folder), generates the data with
`hhar data synth`, runs every measurement as a subprocess of the real CLI (or of a small
script) while sampling the memory of its process tree, each with the load average, and prints
one table. Sections (``--sections``, default all):

- ``producer``: `kcat -P`, the bare confluent-kafka loop and `hhar produce --max` with 1, 2
  and 4 workers on the same file and broker (bench/producer_bench.py), and Kafka's own
  ProducerPerformance; the producer's memory per worker for each size (``--sizes``);
- ``engines``: the processor on the same 3,000,000 events (``--engines-size``): the read-only
  ceiling (bench/ceiling.py: Spark reads the topic and counts), the fused engine and the
  per-query engine, all queries, available-now; and the exercise's file stream
  (bench/baseline_file_stream.py) on the main size;
- ``profile``: the processor's stages timed apart (bench/profile_processor.py);
- ``latency``: end-to-end latency p50/p95/p99 at 5,000 and 50,000 events/s, 5 minutes each
  (fused engine, trigger 500 ms, producer commit interval 0.25 s, `--now`);
- ``full``: the full 6,240,991 rows produced with `--max` while the processor runs, until
  every event is counted;
- ``demo``: `hhar demo` for 3 minutes: how many events the processor is behind at its end;
- ``memory``: the processor's JVM and Python memory over 15 minutes at 20,000 events/s;
- ``fleet``: the same 1,000 recorded rows fanned out to 1 to 10,000 virtual devices per
  recorded one (``--fleet-devices``: 126 to 1,260,000 fine keys), the same number of events
  each time (``--fleet-events``), processed by each engine (``--fleet-engines``; the
  per-query ones at ``--fleet-reference-devices`` only, when given): events/s,
  seconds per batch and its parts, bytes written to the checkpoint per batch, the driver's and
  the JVM's memory over the run; then a continuous processor on the 4,000-device fleet, and
  one more batch of 4,000 events after it: its time and the bytes it adds.

It writes bench/out/results.json, bench/out/benchmarks.png and, unless --quick, the table
section of BENCHMARKS.md and the plot beside it (bench/benchmarks.png).

    python bench/run_all.py [--sections engines,latency] [--quick]

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

from fleet import CheckpointWatcher, MemorySeries, batch_figures, logged_batches, thirds  # noqa: E402
from measure import Measured, Running, load_average, rss_by_kind, run  # noqa: E402
from report import render_outputs, render_table  # noqa: E402

from hhar_stream.daemons import free_port, java_executable  # noqa: E402
from hhar_stream.local.kafka import LocalKafka  # noqa: E402
from hhar_stream.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
FULL_ROWS = 6_240_991
DEFAULT_SIZES = (100_000, 1_000_000, FULL_ROWS)
QUICK_SIZES = (20_000, 100_000)
SECTIONS = ("producer", "engines", "profile", "latency", "full", "demo", "memory", "fleet")
PARTITIONS = 3
PERF_PAYLOAD_LINES = 100_000
ENGINES_SIZE = 3_000_000
ENGINES_MAX_OFFSETS = 500_000
LATENCY_RATES = (5_000, 50_000)
LATENCY_SECONDS = 300.0
LATENCY_TRIGGER = "500 milliseconds"
LATENCY_COMMIT_INTERVAL = "0.25"
SEED_EVENTS = 1000
DEMO_SECONDS = 180.0
MEMORY_RATE = 20_000
MEMORY_SECONDS = 900.0
MEMORY_SAMPLE_SECONDS = 10.0
FLEET_ROWS = 1_000
"""The recorded rows the fleet section fans out: 126 fine keys (Device, gt, Model, User)."""
FLEET_DEVICES = (1, 10, 100, 1_000, 10_000)
FLEET_EVENTS = 10_000_000
"""Events of every fleet run, or two passes over the rows where that is more (20,000,000 at
10,000 devices: 1.26M fine keys, all of them seen in the first half of the run)."""
FLEET_ENGINES = ("fused", "per-query", "per-query+rocksdb")
"""Engines of the fleet runs: ``+rocksdb`` keeps Spark's state in RocksDB (changelog)."""
FLEET_AFTER_DEVICES = 2_000
"""The issue's own fleet: 1,000 rows fanned out to 4,000 devices (2,000,000 events)."""
FLEET_AFTER_ROWS = 2
"""Rows produced after it: one batch of 2 x 2,000 = 4,000 events."""
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
    java = subprocess.run(
        [java_executable(), "-version"], capture_output=True, text=True, check=False
    ).stderr.splitlines()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(total_kb / 1024 / 1024, 1),
        "cpu": model[1].strip() if model else platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": java[0] if java else "?",
        "kcat": (
            subprocess.run(
                ["kcat", "-V"], capture_output=True, text=True, check=False
            ).stdout.splitlines()
            or ["?"]
        )[0]
        if shutil.which("kcat")
        else "not installed",
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
            (
                [memory.kind_by_pid.get(pid, "?"), round(mb, 1)]
                for pid, mb in memory.peak_by_pid.items()
                if mb >= 20
            ),
            key=lambda item: -item[1],
        ),
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
    def run(
        self, name: str, command: list[str], env: dict[str, str] | None = None, **kwargs: Any
    ) -> Measured:
        log(f"{name}: {' '.join(command[2:8]) if command[0] == sys.executable else command[0]}")
        kwargs.setdefault("timeout", PROCESS_TIMEOUT)
        load = load_average()
        measured = run(command, self.work, name, env=env or self.env, cwd=REPO, **kwargs).check()
        return self.record(name, measured, load)

    def record(self, name: str, measured: Measured, load: float) -> Measured:
        """Keep a process's wall time, memory and the load average before and after it."""
        self.results["runs"][name] = {
            "wall_s": round(measured.wall, 2),
            "load_before": round(load, 2),
            "load_after": round(load_average(), 2),
            "memory": memory_of(measured),
        }
        return measured

    def create_topic(
        self, name: str, config: dict[str, str] | None = None, partitions: int = PARTITIONS
    ) -> None:
        future = self.admin.create_topics(
            [NewTopic(name, partitions, 1, config={"retention.ms": "-1"} | (config or {}))]
        )[name]
        future.result(timeout=30)

    def data(self, rows: int) -> Path:
        folder = self.work / f"data-{rows}"
        if not folder.exists():
            measured = self.run(
                f"synth_{rows}", hhar("data", "synth", "--out", str(folder), "--rows", str(rows))
            )
            self.results["runs"][f"synth_{rows}"]["rows_per_s"] = round(rows / measured.wall)
        return folder

    def produce(self, name: str, source: Path, topic: str, *extra: str) -> dict[str, Any]:
        measured = self.run(
            name,
            hhar(
                "produce",
                "--source",
                str(source),
                "--topic",
                topic,
                "--partitions",
                str(PARTITIONS),
                *extra,
            ),
        )
        delivered = int(
            re.search(r"delivered ([\d,]+) events", measured.stdout)[1].replace(",", "")
        )
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

    def process(
        self, name: str, topic: str, history: Path, engine: str, *extra: str, **kwargs: Any
    ) -> dict[str, Any]:
        checkpoint = self.work / "checkpoints" / name
        measured = self.run(
            name,
            hhar(
                "process",
                "--topic",
                topic,
                "--engine",
                engine,
                "--available-now",
                "--json",
                "--checkpoint",
                str(checkpoint),
                "--history",
                str(history),
                "--results-prefix",
                f"bench.{name}.",
                *extra,
            ),
            **kwargs,
        )
        summary = processor_summary(measured)
        per_query = {
            query: figures.get("input_rows", 0) for query, figures in summary["queries"].items()
        }
        figures = self.results["runs"][name] | {
            "engine": engine,
            "events": summary["events"],
            "seconds": summary["seconds"],
            "events_per_s": summary["events_per_second"],
            "streaming_queries": len(per_query),
            "input_rows_per_query": per_query,
            "batches": {
                query: figures.get("batches", 0) for query, figures in summary["queries"].items()
            },
            "last_batch_ms": {
                query: (figures.get("last_progress") or {}).get("duration_ms")
                for query, figures in summary["queries"].items()
            },
        }
        self.results["runs"][name] = figures
        return figures

    # -- 1. producer ---------------------------------------------------------------------------
    def producer_section(self, rows: int, data: Path) -> None:
        log(
            f"1. producer: kcat, the bare client loop and hhar produce with 1, 2 and 4 workers "
            f"({rows:,} rows), bench/producer_bench.py"
        )
        figures = OUT / "producer_bench.json"
        measured = self.run(
            "producer_bench",
            [
                sys.executable,
                str(REPO / "bench" / "producer_bench.py"),
                "--rows",
                str(rows),
                "--bootstrap",
                self.bootstrap,
                "--profile-rows",
                str(min(rows, 200_000)),
                "--workers",
                "1,2,4",
                "--json",
                str(figures),
            ],
        )
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
            java_executable(),
            "-Xmx512m",
            "-cp",
            f"{(REPO / '.hhar' / 'kafka' / 'libs')}/*",
            "org.apache.kafka.tools.ProducerPerformance",
            "--bootstrap-server",
            self.bootstrap,
            "--topic",
            topic,
            "--num-records",
            str(rows),
            "--throughput",
            "-1",
            "--payload-file",
            str(payload),
            "--command-property",
            f"linger.ms={s.linger_ms}",
            f"batch.size={s.batch_size}",
            f"compression.type={s.compression}",
            "enable.idempotence=true",
            "acks=all",
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

    # -- engines: the processor on the same events --------------------------------------------
    def engines_section(self, full_data: Path, main_data: Path) -> None:
        rows = self.args.engines_size
        topic = "bench.engines"
        log(f"engines: read-only ceiling, fused and per-query engines on the same {rows:,} events")
        self.produce("engines_produce", full_data, topic, "--max", "--limit", str(rows))
        limit = ["--max-offsets-per-trigger", str(ENGINES_MAX_OFFSETS)]
        measured = self.run(
            "ceiling",
            [
                sys.executable,
                str(REPO / "bench" / "ceiling.py"),
                "--topic",
                topic,
                "--bootstrap",
                self.bootstrap,
                *limit,
            ],
        )
        summary = processor_summary(measured)
        self.results["runs"]["ceiling"] |= {
            "events": summary["events"],
            "seconds": summary["seconds"],
            "events_per_s": summary["events_per_second"],
            "batches": summary["batches"],
        }
        # Each engine right after the ceiling, so that they meet similar load.
        self.process("fused_engine", topic, main_data, "fused", *limit)
        self.process("per_query_engine", topic, main_data, "per-query", *limit)
        log("engines: the exercise's file stream (baseline) on the main size")
        measured = self.run(
            "baseline",
            [
                sys.executable,
                str(REPO / "bench" / "baseline_file_stream.py"),
                "--source",
                str(main_data),
                "--checkpoint",
                str(self.work / "checkpoints" / "baseline"),
            ],
        )
        summary = processor_summary(measured)
        self.results["runs"]["baseline"] |= {
            "events": summary["events"],
            "seconds": summary["seconds"],
            "events_per_s": summary["events_per_second"],
            "batches": summary["batches"],
            "counted": summary["counted"],
        }

    def profile_section(self, data: Path) -> None:
        """The processor's stages timed apart (bench/profile_processor.py)."""
        log("profile of the processor's stages on bench.engines")
        measured = self.run(
            "profile_processor",
            [
                sys.executable,
                str(REPO / "bench" / "profile_processor.py"),
                "--topic",
                "bench.engines",
                "--bootstrap",
                self.bootstrap,
                "--history",
                str(data),
            ],
        )
        self.results["profile"] = processor_summary(measured)

    # -- a processor that runs while the producer does -----------------------------------------
    def start_processor(
        self, name: str, topic: str, history: Path, *extra: str, results_prefix: str | None = None
    ) -> tuple[Running, Path, float]:
        """`hhar process` (fused, continuous) on `topic`, waited for until its query runs."""
        checkpoint = self.work / "checkpoints" / name
        load = load_average()
        processor = Running(
            hhar(
                "process",
                "--topic",
                topic,
                "--engine",
                "fused",
                "--checkpoint",
                str(checkpoint),
                "--history",
                str(history),
                "--results-prefix",
                results_prefix or f"bench.{name}.",
                "--json",
                *extra,
            ),
            self.work,
            name,
            env=self.env,
            cwd=REPO,
        )
        status = checkpoint / "status.json"
        self._wait_for(processor, status, lambda fused: fused.get("active"), "query started")
        return processor, status, load

    def finish_processor(self, name: str, processor: Running, load: float) -> Measured:
        processor.stop()
        return self.record(name, processor.finish(timeout=120), load)

    def _wait_for(
        self, processor: Running, status: Path, condition: Any, what: str, timeout: float = 600
    ) -> bool:
        """Wait until `condition` holds for the fused query's status (False on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not processor.alive():
                msg = f"the processor ended early:\n{processor.err_path.read_text()[-3000:]}"
                raise RuntimeError(msg)
            try:
                fused = json.loads(status.read_text())["queries"].get("fused", {})
            except (OSError, ValueError):
                fused = {}
            if condition(fused):
                return True
            time.sleep(0.2)
        log(f"warning: not within {timeout:.0f} s: {what}")
        return False

    def _counted(self, processor: Running, status: Path, events: int, timeout: float = 600) -> bool:
        return self._wait_for(
            processor,
            status,
            lambda fused: fused.get("input_rows", 0) >= events,
            f"{events:,} events read",
            timeout,
        )

    def timed_producer(
        self,
        name: str,
        data: Path,
        topic: str,
        seconds: float,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """`hhar produce` for `seconds`, then stopped as Ctrl+C would (it commits what it
        sent); its figures."""
        load = load_average()
        producer = Running(
            hhar(
                "produce",
                "--source",
                str(data),
                "--topic",
                topic,
                "--partitions",
                str(PARTITIONS),
                *extra,
            ),
            self.work,
            name,
            env=env or self.env,
            cwd=REPO,
        )
        deadline = time.monotonic() + seconds
        while producer.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        producer.stop()
        measured = producer.finish(timeout=120)
        delivered = int(
            re.search(r"delivered ([\d,]+) events", measured.stdout)[1].replace(",", "")
        )
        self.results["runs"][name] = {
            "wall_s": round(measured.wall, 2),
            "load_before": round(load, 2),
            "load_after": round(load_average(), 2),
            "memory": memory_of(measured),
            "events": delivered,
            "events_per_s": round(delivered / measured.wall),
        }
        return self.results["runs"][name]

    # -- latency -------------------------------------------------------------------------------
    def latency_section(self, data: Path) -> None:
        self.results["latency"] = {}
        for rate in self.args.rates:
            self.results["latency"][str(rate)] = self.latency_run(data, rate)
            self.save()

    def latency_run(self, data: Path, rate: int) -> dict[str, Any]:
        seconds = self.args.latency_seconds
        log(
            f"latency: {rate:,} events/s for {seconds:.0f} s, fused engine, trigger "
            f"{LATENCY_TRIGGER}, producer commits every {LATENCY_COMMIT_INTERVAL} s"
        )
        topic, prefix = f"bench.latency.{rate}", f"bench.latency.{rate}.results."
        append_time = {"message.timestamp.type": "LogAppendTime"}
        self.create_topic(topic, append_time)
        self.create_topic(prefix + "total_count", append_time)
        # A seed first, so that the first micro-batches (code generation, the first flush)
        # are not measured.
        seed = self.produce(
            f"latency_seed_{rate}", data, topic, "--max", "--limit", str(SEED_EVENTS)
        )["events"]
        processor, status, load = self.start_processor(
            f"latency_processor_{rate}",
            topic,
            data,
            "--trigger",
            LATENCY_TRIGGER,
            results_prefix=prefix,
        )
        try:
            self._counted(processor, status, seed)
            env = self.env | {"HHAR_COMMIT_INTERVAL": LATENCY_COMMIT_INTERVAL}
            producer = self.timed_producer(
                f"latency_producer_{rate}",
                data,
                topic,
                seconds,
                "--rate",
                str(rate),
                "--now",
                "--loop",
                env=env,
            )
            self._counted(processor, status, seed + producer["events"])
        finally:
            self.finish_processor(f"latency_processor_{rate}", processor, load)
        appended = np.sort(
            np.array([ts for ts, _ in self.read_topic(topic, values=False)], dtype=np.int64)
        )
        results = sorted(
            (ts, json.loads(value)["count"])
            for ts, value in self.read_topic(prefix + "total_count")
        )
        return latency_figures(appended, results, skip=seed) | {
            "rate": rate,
            "seconds": seconds,
            "seed_events": seed,
            "producer_events_per_s": producer["events_per_s"],
            "trigger": LATENCY_TRIGGER,
            "commit_interval_s": float(LATENCY_COMMIT_INTERVAL),
            "load": round(load, 2),
        }

    def read_topic(self, topic: str, values: bool = True) -> list[tuple[int, Any]]:
        """Every committed record of `topic`: (Kafka timestamp in ms, value or None)."""
        consumer = Consumer(
            self.settings.kafka_client_config()
            | {
                "group.id": f"bench-{os.getpid()}-{topic}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
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
                    records.append((message.timestamp()[1], message.value() if values else None))
        finally:
            consumer.close()
        return records

    # -- full: the whole data set, produced and processed at once ------------------------------
    def full_section(self, data: Path) -> None:
        topic, prefix = "bench.full", "bench.full.results."
        rows = self.results["full_size"]
        log(f"full: {rows:,} rows produced with --max while the processor runs")
        self.create_topic(topic)
        self.create_topic(prefix + "total_count", {"message.timestamp.type": "LogAppendTime"})
        processor, status, load = self.start_processor(
            "full_processor", topic, data, results_prefix=prefix
        )
        started_ms = time.time() * 1000
        try:
            produced = self.produce("full_produce", data, topic, "--max")
            counted = self._counted(processor, status, produced["events"], timeout=1200)
        finally:
            self.finish_processor("full_processor", processor, load)
        final = [
            ts
            for ts, value in self.read_topic(prefix + "total_count")
            if json.loads(value)["count"] >= produced["events"]
        ]
        self.results["full"] = {
            "events": produced["events"],
            "all_counted": counted and bool(final),
            "end_to_end_s": round((min(final) - started_ms) / 1000, 1) if final else None,
            "produce_s": produced["wall_s"],
            "load": round(load, 2),
        }

    # -- demo: how far behind the processor is at the end of make demo -------------------------
    def demo_section(self) -> None:
        seconds = self.args.demo_seconds
        log(f"demo: hhar demo for {seconds:.0f} s; the processor's lag at its end")
        data = self.work / "demo-data"  # the demo generates it, as on a fresh clone
        measured = self.run(
            "demo",
            hhar("demo", "--seconds", str(seconds)),
            # Ports of its own: a dashboard or Spark UI on the defaults does not stop the run.
            env=self.env
            | {
                "HHAR_DATA": str(data),
                "HHAR_DASHBOARD_PORT": str(free_port()),
                "HHAR_SPARK_UI_PORT": str(free_port()),
            },
            timeout=seconds + 900,
        )
        (OUT / "demo.txt").write_text(measured.stdout[-20_000:])
        statuses = re.findall(
            r"in ([\d,]+) ev/s \| last batch \d+ \| counted \d+ \+ \d+ bad \| "
            r"lag <= (\d+)",
            measured.stdout,
        )
        if not statuses:
            msg = f"no status line in the demo's output:\n{measured.stdout[-3000:]}"
            raise RuntimeError(msg)
        rates = [float(rate.replace(",", "")) for rate, _ in statuses]
        lags = [int(lag) for _, lag in statuses]
        rate = float(np.median(rates[len(rates) // 2 :]))
        self.results["demo"] = {
            "seconds": seconds,
            "lag_events": lags[-1],
            "rate": rate,
            "lag_s": round(lags[-1] / rate, 2) if rate else None,
            "lags": lags,
            "load": self.results["runs"]["demo"]["load_before"],
        }

    # -- memory: the processor over 15 minutes at a steady rate --------------------------------
    def memory_section(self, data: Path) -> None:
        seconds, rate = self.args.memory_seconds, MEMORY_RATE
        log(f"memory: the processor's JVM and Python over {seconds:.0f} s at {rate:,}/s")
        topic = "bench.memory"
        self.create_topic(topic)
        processor, status, load = self.start_processor("memory_processor", topic, data)
        producer = Running(
            hhar(
                "produce",
                "--source",
                str(data),
                "--topic",
                topic,
                "--rate",
                str(rate),
                "--now",
                "--loop",
            ),
            self.work,
            "memory_producer",
            env=self.env,
            cwd=REPO,
        )
        samples: list[dict[str, float]] = []
        started = time.monotonic()
        try:
            while time.monotonic() - started < seconds:
                time.sleep(MEMORY_SAMPLE_SECONDS)
                if not (processor.alive() and producer.alive()):
                    msg = "the processor or the producer of the memory run ended early"
                    raise RuntimeError(msg)
                rss = rss_by_kind(processor.pid)
                fused = json.loads(status.read_text())["queries"].get("fused", {})
                samples.append(
                    {
                        "t_s": round(time.monotonic() - started, 1),
                        "jvm_mb": round(rss["java"], 1),
                        "python_mb": round(rss["python"], 1),
                        "events": fused.get("input_rows", 0),
                        "load": round(load_average(), 2),
                    }
                )
        finally:
            producer.stop()
            producer.finish(timeout=120)
            self.finish_processor("memory_processor", processor, load)
        self.results["memory"] = {
            "rate": rate,
            "seconds": seconds,
            "samples": samples,
            "load": round(load, 2),
        } | memory_trend(samples)

    # -- fleet: the engines at 10^2 to 10^6 fine keys -------------------------------------------
    def fleet_section(self) -> None:
        data = self.data(FLEET_ROWS)
        events = self.args.fleet_events
        self.results["fleet"] = {"events": events, "rows": FLEET_ROWS, "runs": {}}
        for devices in self.args.fleet_devices:
            # Two passes at least, so that the state is whole in the first half of the run.
            events = max(self.args.fleet_events, 2 * FLEET_ROWS * devices)
            topic = f"bench.fleet.{devices}"
            log(
                f"fleet: {FLEET_ROWS:,} rows fanned out to {devices:,} devices each, "
                f"{events:,} events"
            )
            self.produce(
                f"fleet_produce_{devices}",
                data,
                topic,
                "--max",
                "--loop",
                "--devices",
                str(devices),
                "--limit",
                str(events // devices),
            )
            for engine in self.args.fleet_engines:
                if engine != "fused" and devices not in self.args.fleet_reference_devices:
                    continue
                name = re.sub(r"\W", "_", f"fleet_{engine}_{devices}")
                run = self.fleet_run(name, topic, data, engine)
                self.results["fleet"]["runs"][f"{engine}/{devices}"] = run | {"devices": devices}
                self.save()
            for future in self.admin.delete_topics([topic, f"{topic}.dlq"]).values():
                future.result(timeout=60)
        self.results["fleet"]["after"] = self.fleet_after(data)

    def fleet_run(self, name: str, topic: str, data: Path, engine: str) -> dict[str, Any]:
        """One engine (``per-query+rocksdb``: with Spark's RocksDB state store) over one fleet
        topic, available-now, 500,000 events a batch."""
        checkpoint = self.work / "checkpoints" / name
        memory: list[MemorySeries] = []
        engine, _, store = engine.partition("+")
        with CheckpointWatcher(checkpoint) as written:
            figures = self.process(
                name,
                topic,
                data,
                engine,
                "--state-store",
                store or "hdfs",
                "--max-offsets-per-trigger",
                str(ENGINES_MAX_OFFSETS),
                while_running=lambda running: memory.append(MemorySeries(running.pid)),
            )
        samples = memory[0].stop() if memory else []
        batches = logged_batches((self.work / f"{name}.err").read_text())
        spark_batches = max((b.batch for b in batches), default=-1) + 1
        return {
            "events": figures["events"],
            "events_per_s": figures["events_per_s"],
            "seconds": figures["seconds"],
            "load": self.results["runs"][name]["load_before"],
            "checkpoint_bytes": written.bytes_written,
            "checkpoint_bytes_per_batch": round(written.bytes_written / max(spark_batches, 1)),
            "memory": {kind: thirds(samples, kind) for kind in ("jvm_mb", "python_mb")},
            "peak": self.results["runs"][name]["memory"],
        } | batch_figures(batches)

    def fleet_after(self, data: Path) -> dict[str, Any]:
        """The issue's 4,000-device run with a continuous processor, then one batch of 4,000
        events more: how long it takes and what it adds to the checkpoint."""
        devices, topic = self.args.fleet_after_devices, "bench.fleet.after"
        log(
            f"fleet: {2 * devices:,} devices, continuous, then one batch of "
            f"{2 * devices * FLEET_AFTER_ROWS:,} events"
        )
        first = self.produce("fleet_after_produce", data, topic, "--max", "--devices", str(devices))
        name = "fleet_after_processor"
        processor, status, load = self.start_processor(name, topic, data)
        checkpoint = self.work / "checkpoints" / name
        try:
            self._counted(processor, status, first["events"], timeout=1800)
            time.sleep(5)  # idle: let the last window closing and snapshot settle
            with CheckpointWatcher(checkpoint) as written:
                before = written.scan()
                more = self.produce(
                    "fleet_after_more",
                    data,
                    topic,
                    "--max",
                    "--devices",
                    str(devices),
                    "--limit",
                    str(FLEET_AFTER_ROWS),
                )
                self._counted(processor, status, first["events"] + more["events"])
                time.sleep(2)
            added = written.bytes_written - before
        finally:
            measured = self.finish_processor(name, processor, load)
        batches = [b for b in logged_batches(measured.stderr) if b.query == "fused"]
        last = next(b for b in reversed(batches) if b.rows > 0)
        return {
            "devices": 2 * devices,
            "fleet_events": first["events"],
            "events": more["events"],
            "batch_rows": last.rows,
            "batch_s": round(last.trigger_ms / 1000, 3),
            "parts_ms": last.parts_ms,
            "state_bytes": last.state_bytes,
            "checkpoint_bytes_added": added,
            "state_rows": last.state_rows,
            "load": round(load, 2),
        }

    # -- producer memory per size --------------------------------------------------------------
    def producer_sizes(self, rows: int) -> None:
        data = self.data(rows)
        log(f"producer memory: {rows:,} rows, produce --max with 1 and 2 workers")
        for name, extra in (
            (f"produce_{rows}", ()),
            (f"produce_workers_{rows}", ("--workers", "2")),
        ):
            topic = f"bench.sizes.{name}"
            self.produce(name, data, topic, "--max", *extra)
            for future in self.admin.delete_topics([topic, f"{topic}.dlq"]).values():
                future.result(timeout=60)


def memory_trend(samples: list[dict[str, float]]) -> dict[str, Any]:
    """Is the memory flat? The first and last thirds of the run compared (after a minute of
    warming up), and the least-squares slope in MB per minute, for the JVM and Python."""
    kept = [sample for sample in samples if sample["t_s"] >= 60] or samples
    figures: dict[str, Any] = {}
    if len(kept) < 3:
        return figures
    third = max(len(kept) // 3, 1)
    for kind in ("jvm_mb", "python_mb"):
        values = np.array([sample[kind] for sample in kept])
        minutes = np.array([sample["t_s"] for sample in kept]) / 60
        slope = float(np.polyfit(minutes, values, 1)[0])
        figures[kind.removesuffix("_mb")] = {
            "first_third_mb": round(float(values[:third].mean()), 1),
            "last_third_mb": round(float(values[-third:].mean()), 1),
            "max_mb": round(float(values.max()), 1),
            "slope_mb_per_min": round(slope, 2),
        }
    return figures


def latency_figures(
    appended: np.ndarray, results: list[tuple[int, int]], skip: int = 0
) -> dict[str, Any]:
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
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"sections to run (default all: {','.join(SECTIONS)})",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        help="rows of the producer's memory runs (default 100000,1000000,6240991)",
    )
    parser.add_argument(
        "--main-size",
        type=int,
        help="rows of the producer section and the baseline (default 1,000,000)",
    )
    parser.add_argument(
        "--engines-size", type=int, help=f"events of the engines section (default {ENGINES_SIZE:,})"
    )
    parser.add_argument(
        "--rates", type=parse_sizes, help="producer rates of the latency runs (default 5000,50000)"
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        help=f"length of each latency run (default {LATENCY_SECONDS:.0f} s)",
    )
    parser.add_argument(
        "--demo-seconds", type=float, help=f"length of the demo run (default {DEMO_SECONDS:.0f} s)"
    )
    parser.add_argument(
        "--memory-seconds",
        type=float,
        help=f"length of the memory run (default {MEMORY_SECONDS:.0f} s)",
    )
    parser.add_argument(
        "--fleet-devices",
        type=parse_sizes,
        help="virtual devices per recorded one of the fleet runs (default 1,10,100,1000,10000)",
    )
    parser.add_argument(
        "--fleet-events",
        type=int,
        help=f"events of every fleet run (default {FLEET_EVENTS:,})",
    )
    parser.add_argument(
        "--fleet-after-devices",
        type=int,
        help=f"virtual devices per recorded one of the fleet a last batch follows "
        f"(default {FLEET_AFTER_DEVICES:,})",
    )
    parser.add_argument(
        "--fleet-engines",
        help=f"engines of the fleet runs (default {','.join(FLEET_ENGINES)})",
    )
    parser.add_argument(
        "--fleet-reference-devices",
        type=parse_sizes,
        help="fleet sizes of --fleet-devices at which the per-query engines run too (default "
        "every one; they are several times slower than the fused engine)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and short runs, for a smoke test; does not touch BENCHMARKS.md",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--no-docs", action="store_true", help="leave BENCHMARKS.md and bench/benchmarks.png alone"
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only redraw the table, plot and BENCHMARKS.md from bench/out/results.json",
    )
    args = parser.parse_args()
    if args.render_only:
        results = json.loads((OUT / "results.json").read_text())
        print(render_outputs(results, OUT, REPO, write_docs=not results["quick"]))
        return 0
    quick = args.quick
    sizes = args.sizes or list(QUICK_SIZES if quick else DEFAULT_SIZES)
    main_size = args.main_size or (100_000 if quick else 1_000_000)
    full_size = max(sizes) if quick else FULL_ROWS
    args.engines_size = args.engines_size or (100_000 if quick else ENGINES_SIZE)
    args.rates = args.rates or ([2_000, 10_000] if quick else list(LATENCY_RATES))
    args.latency_seconds = args.latency_seconds or (20.0 if quick else LATENCY_SECONDS)
    args.demo_seconds = args.demo_seconds or (60.0 if quick else DEMO_SECONDS)
    args.memory_seconds = args.memory_seconds or (60.0 if quick else MEMORY_SECONDS)
    args.fleet_devices = args.fleet_devices or ([1, 100] if quick else list(FLEET_DEVICES))
    args.fleet_events = args.fleet_events or (200_000 if quick else FLEET_EVENTS)
    args.fleet_after_devices = args.fleet_after_devices or (20 if quick else FLEET_AFTER_DEVICES)
    args.fleet_engines = (
        args.fleet_engines.split(",") if args.fleet_engines else list(FLEET_ENGINES)
    )
    args.fleet_reference_devices = args.fleet_reference_devices or args.fleet_devices
    sections = [item.strip() for item in args.sections.split(",") if item.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(
            f"unknown sections {', '.join(sorted(unknown))}: choose from {', '.join(SECTIONS)}"
        )
    if "producer" in sections and shutil.which("kcat") is None:
        parser.error("kcat not found: apt-get install kcat")
    OUT.mkdir(parents=True, exist_ok=True)

    work = Path(tempfile.mkdtemp(prefix="hhar-bench-"))
    base = Settings(home=REPO / ".hhar", kafka_port=free_port(), kafka_controller_port=free_port())
    broker = LocalKafka(base, run_dir=work / "kafka")
    started = time.monotonic()
    try:
        broker.up()
        suite = Suite(args, work, broker.bootstrap)
        suite.results |= {
            "machine": machine(),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "load_at_start": [round(x, 2) for x in os.getloadavg()],
            "sections": sections,
            "sizes": sizes,
            "main_size": main_size,
            "full_size": full_size,
            "engines_size": args.engines_size,
            "quick": quick,
        }
        log(f"broker {broker.bootstrap}; work folder {work}; sections {', '.join(sections)}")
        main_data = suite.data(main_size)
        full_data = suite.data(full_size)
        steps = {
            "producer": lambda: suite.producer_section(main_size, main_data),
            "engines": lambda: suite.engines_section(full_data, main_data),
            "profile": lambda: suite.profile_section(main_data),
            "latency": lambda: suite.latency_section(full_data),
            "full": lambda: suite.full_section(full_data),
            "demo": suite.demo_section,
            "memory": lambda: suite.memory_section(full_data),
            "fleet": suite.fleet_section,
        }
        for section in SECTIONS:
            if section in sections:
                steps[section]()
                if section == "producer":
                    for rows in sizes:
                        suite.producer_sizes(rows)
                suite.save()
        suite.results |= {
            "load_at_end": [round(x, 2) for x in os.getloadavg()],
            "suite_minutes": round((time.monotonic() - started) / 60, 1),
        }
        (OUT / "results.json").write_text(json.dumps(suite.results, indent=2))
        table = render_outputs(suite.results, OUT, REPO, write_docs=not (quick or args.no_docs))
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
