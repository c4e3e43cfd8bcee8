"""Where the fused engine's driver-side state stops paying: its costs per micro-batch by the
number of fine keys (Device, gt, Model, User).

The fused engine keeps one entry per fine key on the driver; every micro-batch it collects
the batch's aggregate (at most one row per fine key and window), merges it, writes the state
file and derives every result. HHAR has 126 to 300 fine keys; ``hhar produce --devices K``
multiplies the devices by K. For each key count this prints, one JSON line each:

- ``collect_s``: Spark collecting an aggregate of that many rows to the driver;
- ``merge_s``: `FusedState.merge` of that aggregate into a state of that many keys;
- ``derive_s``: every query derived in plain Python as validated records;
- ``write_s`` and ``state_mb``: the state file written through Hadoop's FileSystem, its size;
- ``changed_rows``: the result rows a batch that touches every key writes.

    python bench/fused_state_scale.py [--keys 1000,10000,100000]

Not a test: figures depend on the machine and its load (printed with each line).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from hhar_stream.processor.catalogue import CATALOGUE
from hhar_stream.processor.checkpoints import CheckpointFiles
from hhar_stream.processor.fused_state import FusedState, FusedStateFiles
from hhar_stream.processor.session import build_session
from hhar_stream.schemas import ACTIVITY_LABELS
from hhar_stream.settings import Settings

MODELS = ("nexus4", "s3", "s3mini", "samsungold")
USERS = "abcdefghi"
WINDOW_MS, DELAY_MS = 600_000, 300_000


def aggregate(keys: int, seed: int = 7) -> list[tuple]:
    """A micro-batch aggregate that touches `keys` fine keys, one window each."""
    rng = random.Random(seed)
    devices = max(1, keys // (len(ACTIVITY_LABELS) * len(USERS)))
    rows = []
    for number in range(keys):
        device = f"{MODELS[number % len(MODELS)]}_{number % devices}"
        gt = ACTIVITY_LABELS[(number // devices) % len(ACTIVITY_LABELS)]
        user = USERS[(number // (devices * len(ACTIVITY_LABELS))) % len(USERS)]
        count = rng.randint(1, 50)
        rows.append(
            (
                device,
                gt,
                device.split("_")[0],
                f"{user}{number}",
                1424686800000,
                count,
                rng.uniform(-1, 1) * count,
                rng.uniform(-1, 1) * count,
                rng.uniform(-1, 1) * count,
                1424686800000 + rng.randint(0, 59_999),
            )
        )
    return rows


def timed(action: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return round(time.perf_counter() - started, 4), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", default="1000,10000,100000")
    args = parser.parse_args()
    settings = Settings(home=Path(__file__).resolve().parent.parent / ".hhar")
    spark = build_session(settings, app_name="hhar-bench-state-scale")
    work = Path(tempfile.mkdtemp(prefix="hhar-state-scale-"))
    try:
        for keys in (int(item) for item in args.keys.split(",")):
            groups = aggregate(keys)
            frame = spark.createDataFrame(
                groups,
                "Device string, gt string, Model string, User string, "
                "window_start long, count long, x_sum double, y_sum double, z_sum double, "
                "latest long",
            ).cache()
            frame.count()
            collect_s, rows = timed(frame.collect)
            frame.unpersist()
            base = FusedState().merge(0, groups, 0, WINDOW_MS, DELAY_MS)
            merge_s, state = timed(
                lambda base=base, groups=groups: base.merge(1, groups, 0, WINDOW_MS, DELAY_MS)
            )
            store = FusedStateFiles(CheckpointFiles(spark, work / f"keys-{keys}"), "fused")
            write_s, _ = timed(lambda store=store, state=state: store.save(state))
            size = sum(path.stat().st_size for path in (work / f"keys-{keys}").rglob("*.json"))

            def derive_all(state: FusedState = state) -> int:
                count = 0
                for query in CATALOGUE.values():
                    if query.derive is None:
                        continue
                    parameters = query.parameters(settings)
                    if query.uses_history:
                        parameters["historical"] = {}
                    for row in query.derive(state.totals, **parameters):
                        query.record.model_validate(row | {"query": query.name, "batch_id": 1})
                        count += 1
                return count

            derive_s, changed = timed(derive_all)
            print(
                json.dumps(
                    {
                        "keys": keys,
                        "collected_rows": len(rows),
                        "collect_s": collect_s,
                        "merge_s": merge_s,
                        "derive_s": derive_s,
                        "changed_rows": changed,
                        "write_s": write_s,
                        "state_mb": round(size / 1e6, 2),
                        "load1": round(os.getloadavg()[0], 2),
                    }
                ),
                flush=True,
            )
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
