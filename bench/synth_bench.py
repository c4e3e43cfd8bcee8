"""Benchmark of `hhar data synth`: wall time and peak memory, then the calibration table.

Runs the real CLI in a child process (so its peak RSS is measured alone), then reads the
written part files back and prints each calibrated figure next to the real one (STATS.md §11).

    python bench/synth_bench.py [--rows N] [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hhar_stream.dataset.real import REAL_JSON_BYTES, REAL_ROWS
from hhar_stream.generator.check import calibration_rows, summarise_folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=REAL_ROWS)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, help="folder to write (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    args = parser.parse_args()
    scratch = None
    if args.out is None:
        scratch = Path(tempfile.mkdtemp(prefix="hhar-synth-bench-"))
        args.out = scratch / "activity-data"
    command = [
        sys.executable,
        "-m",
        "hhar_stream.cli",
        "--log-level",
        "WARNING",
        "data",
        "synth",
        "--out",
        str(args.out),
        "--rows",
        str(args.rows),
        "--seed",
        str(args.seed),
        "--force",
    ]
    try:
        started = time.perf_counter()
        subprocess.run(command, check=True, env=os.environ | {"TERM": "dumb"})
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size = sum(path.stat().st_size for path in args.out.glob("part-*.json"))
        print(
            f"generate: {args.rows:,} rows in {seconds:.1f} s "
            f"({args.rows / seconds:,.0f} rows/s), peak RSS {peak_mb:.0f} MB, "
            f"{size:,} bytes of JSON (real set at full size: {REAL_JSON_BYTES:,}), "
            f"{os.cpu_count()} cores"
        )
        started = time.perf_counter()
        summary = summarise_folder(args.out)
        print(f"read back {summary.rows:,} rows in {time.perf_counter() - started:.1f} s\n")
        print("| figure | generated | real | difference |")
        print("|---|---:|---:|---:|")
        for name, generated, real in calibration_rows(summary):
            if name.startswith("count"):
                print(
                    f"| {name} | {generated:,.0f} | {real:,.0f} | "
                    f"{100 * (generated - real) / real:+.3f} % |"
                )
            elif name in ("mean x", "mean y", "mean z"):
                print(f"| {name} | {generated:.6f} | {real:.6f} | {generated - real:+.6f} |")
            elif name == "mean Arrival_Time":
                print(
                    f"| {name} | {generated:.6g} | {real:.6g} | "
                    f"{(generated - real) / 60_000:+.1f} min |"
                )
            elif name == "mean Creation_Time":
                print(
                    f"| {name} | {generated:.6g} | {real:.6g} | "
                    f"{(generated - real) / 60e9:+.1f} min |"
                )
            else:
                print(
                    f"| {name} | {generated:.6g} | {real:.6g} | "
                    f"{100 * (generated - real) / abs(real):+.2f} % |"
                )
    finally:
        if scratch is not None and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
