"""Benchmark of `hhar data check`: how long reading a full-size folder takes, in one process
and in one per core, with the load average beside each figure.

The folder is a generated one of the real set's size (`hhar data synth`, 6,240,991 rows,
about 1.2 GB) unless ``--folder`` names one (the real set, once fetched).

    python bench/check_bench.py [--folder DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hhar_stream.dataset import check
from hhar_stream.generator.synth import write_dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="folder to check (default: a generated one)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each way (default 2)")
    args = parser.parse_args()
    scratch = None
    if args.folder is None:
        scratch = Path(tempfile.mkdtemp(prefix="hhar-check-bench-"))
        args.folder = scratch / "activity-data"
        started = time.perf_counter()
        write_dataset(args.folder)
        print(f"generated the folder in {time.perf_counter() - started:.1f} s")
    try:
        size = check.bytes_to_check(args.folder)
        cores = os.cpu_count() or 1
        for _ in range(args.rounds):
            for processes, threshold in ((1, 1 << 62), (cores, 0)):
                check.PARALLEL_BYTES = threshold
                started = time.perf_counter()
                report = check.check_folder(args.folder)
                seconds = time.perf_counter() - started
                load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
                print(
                    f"{processes} process(es): {size / 1e6:,.1f} MB in {seconds:.1f} s "
                    f"({size / 1e6 / seconds:,.0f} MB/s), {len(report.findings)} findings; "
                    f"load average {load}"
                )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
