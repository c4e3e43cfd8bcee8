"""Benchmark what the Prometheus metrics cost: `hhar produce --max` and `hhar process
--available-now` with and without `--metrics-port`, on the same data and broker.

First the metrics' own code in-process: the CPU of each producer update, processor batch and
scrape. Then, for N generated rows (default 1,000,000 for the producer, 300,000 for the
processor), runs in turn, `--repeat` times each, alternating without and with metrics: a
whole `hhar produce --max`
of the rows into a fresh topic, and a whole `hhar process --available-now` of one such topic
(every query but live_vs_historical, a fresh checkpoint). With metrics, a scraper reads the
endpoint every `--scrape-interval` seconds (1 s: fifteen times Prometheus' default rate) for
the whole run. Each run's figure is the command's own (the producer's and the processor's
events/s in their summaries) with its wall time and the 1-minute load average before it; then
the median of each and the ratio with to without.

Usage: python bench/metrics_overhead.py [--rows N] [--processor-rows N] [--repeat R]
       [--scrape-interval S] [--bootstrap HOST:PORT] [--json FILE]
Without --bootstrap a broker is started on free ports in a temporary folder and stopped after.
Not a test: figures depend on the machine, and the broker runs on it too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from broker import bench_broker
from measure import load_average
from prometheus_client import generate_latest

from hhar_stream.daemons import free_port
from hhar_stream.metrics import process_registry
from hhar_stream.processor.metrics import ProcessorMetrics
from hhar_stream.processor.status import ProcessorStatus
from hhar_stream.producer.metrics import ReplayMetrics
from hhar_stream.producer.progress import ReplayStats
from hhar_stream.settings import Settings

REPO = Path(__file__).resolve().parent.parent
HHAR = [sys.executable, "-m", "hhar_stream.cli"]


class Scraper:
    """Reads http://127.0.0.1:<port>/metrics every `interval` seconds in a thread."""

    def __init__(self, port: int, interval: float) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:  # noqa: S310
                    response.read()
                self.scrapes += 1
            except OSError:
                pass  # not serving yet, or gone

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run(
    command: list[str], env: dict[str, str], metrics: bool, interval: float
) -> tuple[str, float, float]:
    """Run an hhar command, with metrics scraped every `interval` s when `metrics`: its
    stdout, wall time and the load average before it."""
    port = free_port() if metrics else None
    if port is not None:
        command = [*command, "--metrics-port", str(port)]
    load = load_average()
    started = time.perf_counter()
    scraper = Scraper(port, interval) if port is not None else None
    try:
        result = subprocess.run(
            command, env=env | {"HHAR_METRICS_LINGER": "0"}, capture_output=True, text=True
        )
    finally:
        if scraper is not None:
            scraper.stop()
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command[3:5])} failed: {result.stderr[-2000:]}")
    if scraper is not None and scraper.scrapes == 0:
        sys.exit(f"{' '.join(command[3:5])} was never scraped")
    return result.stdout, wall, load


def producer_run(
    settings: Settings, data: Path, env: dict[str, str], metrics: bool, interval: float
) -> dict[str, Any]:
    """One `hhar produce --max` into a fresh topic; its events/s and wall time."""
    topic = f"bench.metrics.{uuid.uuid4().hex[:8]}"
    command = [*HHAR, "produce", "--source", str(data), "--topic", topic, "--max"]
    out, wall, load = run([*command, "--bootstrap", settings.bootstrap], env, metrics, interval)
    found = re.search(r"([\d,]+) events/s", out)
    if found is None:
        sys.exit(f"no events/s in the producer's summary: {out}")
    rate = float(found.group(1).replace(",", ""))
    return {"metrics": metrics, "topic": topic, "rate": rate, "wall": wall, "load": load}


def processor_run(
    settings: Settings, topic: str, work: Path, env: dict[str, str], metrics: bool, interval: float
) -> dict[str, Any]:
    """One `hhar process --available-now` of `topic` from a fresh checkpoint."""
    checkpoint = work / f"checkpoint-{uuid.uuid4().hex[:8]}"
    command = [*HHAR, "process", "--available-now", "--json", "--topic", topic]
    command += ["--results-prefix", f"{checkpoint.name}.", "--checkpoint", str(checkpoint)]
    command += ["--queries", "all,-live_vs_historical", "--bootstrap", settings.bootstrap]
    out, wall, load = run(command, env, metrics, interval)
    summary = json.loads(out)
    return {
        "metrics": metrics,
        "rate": summary["events_per_second"],
        "events": summary["events"],
        "wall": wall,
        "load": load,
    }


def cpu_per_call(action: Callable[[], object], calls: int) -> float:
    """CPU seconds of this thread per call of `action`."""
    started = time.thread_time()
    for _ in range(calls):
        action()
    return (time.thread_time() - started) / calls


def in_process_costs(settings: Settings, topic: str, work: Path) -> dict[str, float]:
    """What the metrics' own code costs, in CPU of the calling thread: the producer's update
    (every 0.2 s of a replay) and a scrape of its endpoint; the processor's per batch (its
    observer and the sinks' watcher) and a scrape (the status, and the lag from Kafka)."""
    stats = ReplayStats(topic=topic, dead_letter_topic=f"{topic}.dlq", rows_read=10**6)
    replay_metrics = ReplayMetrics(settings.model_copy(update={"topic": topic}), None)
    producer_registry = process_registry(replay_metrics)
    status = ProcessorStatus(work / "status.json", topic)
    processor_metrics = ProcessorMetrics(settings.model_copy(update={"topic": topic}), status)
    processor_registry = process_registry(processor_metrics)
    status.started("fused", "id", "run")
    figures = {
        "batch_id": 0,
        "timestamp": "2026-01-01T00:00:00.000Z",
        "input_rows": 5000,
        "duration_ms": {"triggerExecution": 900, "addBatch": 700, "walCommit": 20},
        "watermark": "2015-02-23T10:21:00.000Z",
        "bad_records": 0,
        "late_rows": 0,
        "state_rows": 300,
        "state_bytes": None,
        "end_offsets": {topic: {"0": 10, "1": 10, "2": 10}},
    }
    written = dict.fromkeys(("total_count", "device_activity", "activity_stats"), 20)
    status.progressed("fused", figures)
    costs = {
        "producer_update": cpu_per_call(lambda: replay_metrics.update(stats), 20_000),
        "producer_scrape": cpu_per_call(lambda: generate_latest(producer_registry), 500),
        "processor_batch": cpu_per_call(
            lambda: processor_metrics.batch_recorded("fused", figures), 20_000
        ),
        "processor_sinks": cpu_per_call(
            lambda: processor_metrics.records_written(written, 0), 20_000
        ),
    }
    started = time.perf_counter()
    costs["processor_scrape_cpu"] = cpu_per_call(lambda: generate_latest(processor_registry), 50)
    costs["processor_scrape_wall"] = (time.perf_counter() - started) / 50
    print("\n-- the metrics' own code, in-process (CPU of the calling thread)")
    print(
        f"producer: {costs['producer_update'] * 1e6:.1f} us per update (5 a second: "
        f"{costs['producer_update'] * 5 * 100:.4f} % of a core), "
        f"{costs['producer_scrape'] * 1e3:.2f} ms per scrape"
    )
    print(
        f"processor: {costs['processor_batch'] * 1e6:.1f} us per batch recorded, "
        f"{costs['processor_sinks'] * 1e6:.1f} us per write of the sinks, "
        f"{costs['processor_scrape_cpu'] * 1e3:.2f} ms CPU per scrape "
        f"({costs['processor_scrape_wall'] * 1e3:.1f} ms wall, asking Kafka for the lag)"
    )
    return costs


def report(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Print each run and the medians; the medians and the ratio."""
    print(f"\n-- {name}")
    for result in runs:
        print(
            f"{'with' if result['metrics'] else 'without':>7} metrics: "
            f"{result['rate']:>10,.0f} events/s, {result['wall']:6.1f} s wall, "
            f"load {result['load']:.2f}"
        )
    medians = {}
    for metrics in (False, True):
        chosen = [result for result in runs if result["metrics"] == metrics]
        medians[metrics] = {
            key: statistics.median(result[key] for result in chosen)
            for key in ("rate", "wall", "load")
        }
    ratio = medians[True]["rate"] / medians[False]["rate"]
    print(
        f"median without: {medians[False]['rate']:,.0f} events/s ({medians[False]['wall']:.1f} s)"
        f"; with: {medians[True]['rate']:,.0f} events/s ({medians[True]['wall']:.1f} s); "
        f"with/without {ratio:.3f}"
    )
    return {"runs": runs, "without": medians[False], "with": medians[True], "ratio": ratio}


def data_of(folder: Path, rows: int) -> Path:
    """A generated data set of `rows` rows in `folder`."""
    subprocess.run(
        [*HHAR, "data", "synth", "--out", str(folder), "--rows", str(rows)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows the producer replays")
    parser.add_argument(
        "--processor-rows", type=int, default=300_000, help="events the processor reads"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scrape-interval", type=float, default=1.0)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--json", type=Path, help="write the figures there as JSON")
    args = parser.parse_args()

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hhar-bench-")))
        settings = bench_broker(stack, work, args.bootstrap)
        env = {key: value for key, value in os.environ.items() if not key.startswith("HHAR_")}
        env |= {"HHAR_HOME": str(settings.home)}
        print(
            f"broker {settings.bootstrap}; {args.rows:,} rows; scrapes every "
            f"{args.scrape_interval:g} s; {os.cpu_count()} cores"
        )
        source = producer_run(settings, data_of(work / "small", 1000), env, False, 1.0)["topic"]
        costs = in_process_costs(settings, source, work)
        data = data_of(work / "data", args.rows)
        produced = [
            producer_run(settings, data, env, metrics, args.scrape_interval)
            for _ in range(args.repeat)
            for metrics in (False, True)
        ]
        producer = report(f"hhar produce --max, {args.rows:,} rows", produced)

        subset = data_of(work / "subset", args.processor_rows)
        source = producer_run(settings, subset, env, False, args.scrape_interval)["topic"]
        processed = [
            processor_run(settings, source, work, env, metrics, args.scrape_interval)
            for _ in range(args.repeat)
            for metrics in (False, True)
        ]
        processor = report(
            f"hhar process --available-now, {args.processor_rows:,} events", processed
        )
        if args.json:
            figures = {"costs": costs, "producer": producer, "processor": processor}
            args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
