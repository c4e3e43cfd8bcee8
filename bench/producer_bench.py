"""Benchmark `hhar produce --max` beside `kcat -P` on the same rows and the same broker.

Prints, for N generated rows (default 1,000,000, written by `hhar data synth`):
- the reader alone (read + validate, no Kafka), on the concatenated file and merged over the
  part files;
- `hhar produce --max` (validation on, transactions, headers) on the concatenated file and on
  the part folder (merged by Arrival_Time): events/s, process wall time, peak RSS;
- `kcat -P -l` pushing the concatenated file's lines with the same batching, compression and
  idempotence, and the ratio of the two;
- a cProfile of an in-process replay of a slice, to show where the time goes.

Usage: python bench/producer_bench.py [--rows N] [--files F] [--bootstrap HOST:PORT]
Without --bootstrap a broker is started on free ports in a temporary folder and stopped after.
Not a test: figures depend on the machine, and the broker runs on it too.
"""

from __future__ import annotations

import argparse
import cProfile
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

from confluent_kafka.admin import AdminClient, NewTopic

from hhar_stream.daemons import free_port
from hhar_stream.local.kafka import LocalKafka
from hhar_stream.producer.replay import replay
from hhar_stream.producer.sources import read_rows, resolve_source
from hhar_stream.settings import Settings

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 3


def run_measured(command: list[str], work: Path) -> tuple[float, float, str]:
    """Run a command; return its wall time (s), its own peak RSS (MB) and its stdout."""
    out_path, err_path = work / "out.txt", work / "err.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{command[0]} failed ({code}): {err_path.read_text()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out_path.read_text()


def create_topic(settings: Settings, name: str) -> None:
    admin = AdminClient(settings.kafka_client_config())
    admin.create_topics([NewTopic(name, PARTITIONS, 1, config={"retention.ms": "-1"})])[
        name].result(timeout=30)


def reader_rate(source: Path, order: str) -> float:
    started = time.perf_counter()
    count = sum(1 for _ in read_rows(resolve_source(source), order))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=80)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--profile-rows", type=int, default=200_000)
    args = parser.parse_args()
    if shutil.which("kcat") is None:
        sys.exit("kcat not found: apt-get install kcat")

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hhar-bench-")))
        base = Settings(home=REPO / ".hhar")
        if args.bootstrap:
            settings = Settings(home=REPO / ".hhar", bootstrap=args.bootstrap)
        else:
            local = LocalKafka(
                base.model_copy(update={"kafka_port": free_port(),
                                        "kafka_controller_port": free_port()}),
                run_dir=work / "kafka",
            )
            local.up()
            stack.callback(local.down)
            settings = Settings(home=REPO / ".hhar", bootstrap=local.bootstrap)
        print(f"broker {settings.bootstrap}; {args.rows:,} rows in {args.files} part files")

        data = work / "data"
        subprocess.run([sys.executable, "-m", "hhar_stream.cli", "data", "synth", "--out",
                        str(data), "--rows", str(args.rows), "--files", str(args.files)],
                       check=True, stdout=subprocess.DEVNULL)
        single = work / "all.json"
        with single.open("wb") as out:
            for part in sorted(data.glob("part-*.json")):
                out.write(part.read_bytes())
        size_mb = single.stat().st_size / 1e6
        print(f"input: {size_mb:,.0f} MB, {size_mb * 1e6 / args.rows:.0f} bytes/row")

        print("\n-- reader only (read + validate, no Kafka)")
        print(f"single file:           {reader_rate(single, 'by-file'):>10,.0f} rows/s")
        print(f"{args.files} files, merged:     {reader_rate(data, 'merged'):>10,.0f} rows/s")

        run = uuid.uuid4().hex[:8]
        hhar = [sys.executable, "-m", "hhar_stream.cli", "produce", "--bootstrap",
                settings.bootstrap, "--max", "--partitions", str(PARTITIONS)]
        print("\n-- hhar produce --max (validation, headers, transactions)")
        results = {}
        for label, source in (("single file", single), (f"{args.files} files merged", data)):
            topic = f"bench.hhar.{label.split()[0]}.{run}"
            wall, peak, out = run_measured(
                [*hhar, "--source", str(source), "--topic", topic], work)
            delivered = int(re.search(r"delivered ([\d,]+) events", out)[1].replace(",", ""))
            elapsed = float(re.search(r"elapsed ([\d.]+) s", out)[1])
            results[label] = (delivered / elapsed, delivered / wall)
            print(f"{label:<18} {delivered / elapsed:>10,.0f} events/s in the replay loop "
                  f"({elapsed:.1f} s); {delivered / wall:,.0f}/s over the whole process "
                  f"({wall:.1f} s); peak RSS {peak:,.0f} MB")
            assert delivered == args.rows, out

        print("\n-- kcat -P (same file, same broker, same batching/compression/idempotence)")
        topic = f"bench.kcat.{run}"
        create_topic(settings, topic)
        kcat = ["kcat", "-P", "-b", settings.bootstrap, "-t", topic, "-l", str(single),
                "-X", f"linger.ms={settings.linger_ms}", "-X", f"batch.size={settings.batch_size}",
                "-X", f"compression.codec={settings.compression}",
                "-X", "enable.idempotence=true", "-X", "acks=all",
                "-X", "queue.buffering.max.messages=500000"]
        wall, peak, _ = run_measured(kcat, work)
        kcat_rate = args.rows / wall
        print(f"kcat               {kcat_rate:>10,.0f} msgs/s ({wall:.1f} s); "
              f"peak RSS {peak:,.0f} MB")

        loop_rate, process_rate = results["single file"]
        print(f"\nratio hhar/kcat (single file): {loop_rate / kcat_rate:.2f} (replay loop), "
              f"{process_rate / kcat_rate:.2f} (whole process incl. start-up)")

        print(f"\n-- CPU of an in-process replay of {args.profile_rows:,} rows")
        timed = settings.model_copy(update={
            "source": single, "topic": f"bench.cpu.{run}", "max_speed": True,
            "limit": args.profile_rows,
        })
        thread_before, process_before = time.thread_time(), time.process_time()
        result = replay(timed)
        main_cpu = time.thread_time() - thread_before
        all_cpu = time.process_time() - process_before
        print(f"{result.events_per_second:,.0f} events/s; CPU per row: "
              f"{main_cpu / args.profile_rows * 1e6:.1f} us in the Python thread, "
              f"{(all_cpu - main_cpu) / args.profile_rows * 1e6:.1f} us in librdkafka's threads")

        print(f"\n-- profile: in-process replay of {args.profile_rows:,} rows (cProfile, "
              "which slows Python code down)")
        profile_settings = timed.model_copy(update={"topic": f"bench.profile.{run}"})
        profiler = cProfile.Profile()
        profiler.enable()
        replay(profile_settings)
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
