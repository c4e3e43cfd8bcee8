"""Benchmark `hhar produce --max` (1, 2 and 4 workers) beside the bare client loop and `kcat -P`
on the same file and the same broker.

For N generated rows (default 1,000,000, written by `hhar data synth` and joined into one file):
- the reader alone (read + validate, no Kafka), on the file and merged over the part files;
- whole processes on the file, in turn, `--repeat` times: `kcat -P`, the bare client loop
  (bench/bare_producer.py: read lines, `produce()`, same client settings), `hhar produce --max`
  with each number of workers: wall time, rows per second, peak RSS of the largest process, and
  the 1-minute load average before each run; then the median of each and the ratios, all from
  this one run (the topics exist beforehand, so no run pays for creating them);
- CPU per row of an in-process replay, and a cProfile of it, to show where the time goes.

Usage: python bench/producer_bench.py [--rows N] [--files F] [--workers 1,2,4] [--repeat R]
       [--bootstrap HOST:PORT] [--json FILE]
Without --bootstrap a broker is started on free ports in a temporary folder and stopped after.
Not a test: figures depend on the machine, and the broker runs on it too.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from broker import bench_broker
from confluent_kafka.admin import AdminClient, NewTopic

from hhar_stream.producer.replay import replay
from hhar_stream.producer.sources import read_blocks, resolve_source
from hhar_stream.settings import Settings

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 3


def run_measured(command: list[str], work: Path) -> tuple[float, float, str]:
    """Run a command; its wall time (s), the peak RSS of its largest process (MB), its stdout."""
    out_path, err_path = work / "out.txt", work / "err.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        # wait4's ru_maxrss covers the child and the children it waited for (the workers).
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{command[0]} failed ({code}): {err_path.read_text()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out_path.read_text()


def create_topics(settings: Settings, names: list[str]) -> None:
    admin = AdminClient(settings.kafka_client_config())
    futures = admin.create_topics(
        [NewTopic(name, PARTITIONS, 1, config={"retention.ms": "-1"}) for name in names]
    )
    for future in futures.values():
        future.result(timeout=30)


def reader_rate(source: Path, order: str) -> float:
    started = time.perf_counter()
    count = sum(len(block) for block in read_blocks(resolve_source(source), order))
    return count / (time.perf_counter() - started)


class Contenders:
    """The commands of one comparison, each run on a fresh topic of the same broker."""

    def __init__(self, settings: Settings, single: Path, rows: int, work: Path) -> None:
        self.settings = settings
        self.single = single
        self.rows = rows
        self.work = work

    def run(self, name: str) -> dict[str, Any]:
        """One run of `name` (kcat, bare, or hhar-<workers>): its figures."""
        topic = f"bench.{name}.{uuid.uuid4().hex[:8]}"
        create_topics(self.settings, [topic, f"{topic}.dlq"])
        load = os.getloadavg()[0]
        wall, peak, out = run_measured(self.command(name, topic), self.work)
        figures = {
            "name": name,
            "wall_s": wall,
            "rows_per_s": self.rows / wall,
            "peak_rss_mb": peak,
            "load": load,
        }
        if name.startswith("hhar"):
            delivered = int(re.search(r"delivered ([\d,]+) events", out)[1].replace(",", ""))
            if delivered != self.rows:
                sys.exit(f"{name} delivered {delivered:,} of {self.rows:,} rows:\n{out}")
            figures["loop_s"] = float(re.search(r"elapsed ([\d.]+) s", out)[1])
        return figures

    def command(self, name: str, topic: str) -> list[str]:
        s = self.settings
        if name == "kcat":
            return [
                "kcat",
                "-P",
                "-b",
                s.bootstrap,
                "-t",
                topic,
                "-l",
                str(self.single),
                "-X",
                f"linger.ms={s.linger_ms}",
                "-X",
                f"batch.size={s.batch_size}",
                "-X",
                f"compression.codec={s.compression}",
                "-X",
                "enable.idempotence=true",
                "-X",
                "acks=all",
                "-X",
                "queue.buffering.max.messages=500000",
            ]
        if name == "bare":
            return [
                sys.executable,
                str(REPO / "bench" / "bare_producer.py"),
                s.bootstrap,
                topic,
                str(self.single),
            ]
        workers = name.removeprefix("hhar-")
        return [
            sys.executable,
            "-m",
            "hhar_stream.cli",
            "produce",
            "--bootstrap",
            s.bootstrap,
            "--max",
            "--partitions",
            str(PARTITIONS),
            "--source",
            str(self.single),
            "--topic",
            topic,
            "--workers",
            workers,
        ]


def label(name: str) -> str:
    if name == "kcat":
        return "kcat -P"
    if name == "bare":
        return "bare client loop"
    workers = int(name.removeprefix("hhar-"))
    return f"hhar produce --max, {workers} worker{'s' if workers > 1 else ''}"


def compare(contenders: Contenders, names: list[str], repeat: int) -> dict[str, Any]:
    """Every contender `repeat` times, in turn; the runs and the median of each."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    print(
        f"\n-- whole processes on the same file, {repeat} run(s) each in turn "
        "(load: 1-minute load average before the run)"
    )
    for number in range(repeat):
        for name in names:
            figures = contenders.run(name)
            runs[name].append(figures)
            print(
                f"run {number + 1}: {label(name):<30} {figures['wall_s']:6.2f} s "
                f"{figures['rows_per_s']:>10,.0f} rows/s  peak RSS "
                f"{figures['peak_rss_mb']:4.0f} MB  load {figures['load']:.2f}",
                flush=True,
            )
    medians = {}
    for name, measured in runs.items():
        middle = sorted(measured, key=lambda figures: figures["wall_s"])[len(measured) // 2]
        medians[name] = middle | {
            "runs": [round(figures["wall_s"], 3) for figures in measured],
            "loads": [round(figures["load"], 2) for figures in measured],
        }
    bare, one = medians["bare"]["wall_s"], medians.get("hhar-1", {}).get("wall_s")
    print("\n-- medians (wall time of the whole process; ratios are rates, same run)")
    for name, figures in medians.items():
        ratios = f"{bare / figures['wall_s']:.2f}x bare"
        if one and name.startswith("hhar"):
            ratios += f", {one / figures['wall_s']:.2f}x 1 worker"
        print(
            f"{label(name):<30} {figures['wall_s']:6.2f} s {figures['rows_per_s']:>10,.0f} "
            f"rows/s  {ratios}  peak RSS {figures['peak_rss_mb']:.0f} MB  "
            f"loads {'/'.join(f'{load:.1f}' for load in figures['loads'])}"
        )
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=80)
    parser.add_argument("--workers", default="1,2,4", help="worker counts of hhar produce")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--profile-rows", type=int, default=200_000)
    parser.add_argument("--json", type=Path, help="write the figures there as JSON")
    args = parser.parse_args()
    if shutil.which("kcat") is None:
        sys.exit("kcat not found: apt-get install kcat")

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hhar-bench-")))
        settings = bench_broker(stack, work, args.bootstrap)
        print(
            f"broker {settings.bootstrap}; {args.rows:,} rows in {args.files} part files; "
            f"{os.cpu_count()} cores"
        )

        data = work / "data"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "hhar_stream.cli",
                "data",
                "synth",
                "--out",
                str(data),
                "--rows",
                str(args.rows),
                "--files",
                str(args.files),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        single = work / "all.json"
        with single.open("wb") as out:
            for part in sorted(data.glob("part-*.json")):
                out.write(part.read_bytes())
        size_mb = single.stat().st_size / 1e6
        print(f"input: {size_mb:,.0f} MB, {size_mb * 1e6 / args.rows:.0f} bytes/row")

        print("\n-- reader only (read + validate, no Kafka)")
        reader_single = reader_rate(single, "by-file")
        reader_merged = reader_rate(data, "merged")
        print(f"single file:           {reader_single:>10,.0f} rows/s")
        print(f"{args.files} files, merged:     {reader_merged:>10,.0f} rows/s")

        names = ["kcat", "bare", *(f"hhar-{count}" for count in args.workers.split(","))]
        medians = compare(Contenders(settings, single, args.rows, work), names, args.repeat)

        print(f"\n-- CPU of an in-process replay of {args.profile_rows:,} rows")
        timed = settings.model_copy(
            update={
                "source": single,
                "topic": f"bench.cpu.{uuid.uuid4().hex[:8]}",
                "max_speed": True,
                "limit": args.profile_rows,
            }
        )
        thread_before, process_before = time.thread_time(), time.process_time()
        result = replay(timed)
        main_cpu = time.thread_time() - thread_before
        all_cpu = time.process_time() - process_before
        cpu = (main_cpu / args.profile_rows * 1e6, (all_cpu - main_cpu) / args.profile_rows * 1e6)
        print(
            f"{result.events_per_second:,.0f} events/s; CPU per row: {cpu[0]:.1f} us in the "
            f"Python thread, {cpu[1]:.1f} us in librdkafka's threads"
        )

        print(
            f"\n-- profile: in-process replay of {args.profile_rows:,} rows (cProfile, "
            "which slows Python code down)"
        )
        profile_settings = timed.model_copy(update={"topic": f"bench.profile.{uuid.uuid4().hex}"})
        profiler = cProfile.Profile()
        profiler.enable()
        replay(profile_settings)
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(12)

        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "rows": args.rows,
                        "cores": os.cpu_count(),
                        "repeat": args.repeat,
                        "reader_rows_per_s": round(reader_single),
                        "reader_merged_rows_per_s": round(reader_merged),
                        "cpu_us_python": round(cpu[0], 2),
                        "cpu_us_librdkafka": round(cpu[1], 2),
                        "medians": medians,
                    },
                    indent=2,
                )
            )


if __name__ == "__main__":
    main()
