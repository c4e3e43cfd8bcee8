"""What SQL costs (issue 22): the processor's events/s with 0, 1 and 5 named queries beside the
built-in ones, and `hhar sql`'s time to its first rows and the latency of new events at
5,000 events/s.

Starts its own Kafka broker (free ports, a temporary folder), generates the data with
`hhar data synth`, and runs the real CLI:

- ``processor``: `hhar process --available-now` (fused engine, every built-in query) over the
  same events with no named query, with the first of `NAMED`, and with all five, each on a
  fresh checkpoint; the events/s of its summary (events over the processing time);
- ``sql``: while `hhar produce --rate 5000 --now` paces events into a topic, `hhar sql
  --changelog` twice: a GROUP BY over the whole topic (``--from earliest``; time from the
  command to its first row: Spark's cold start included), and every 50th new event
  (``--from latest``; per row shown after the first `WARM_UP` seconds, the time it reached the
  screen minus its Arrival_Time, the time the producer sent it).

    python bench/sql_bench.py [--rows 300000] [--seconds 60] [--sections processor,sql]

Prints the figures with the load average beside each, and writes bench/out/sql.json. Not a
test: the figures depend on the machine and its load (the broker runs on it too).
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
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import load_average, run  # noqa: E402

from hhar_stream.daemons import free_port  # noqa: E402
from hhar_stream.local.kafka import LocalKafka  # noqa: E402
from hhar_stream.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
RATE = 5_000
WARM_UP = 30.0
"""Seconds after its first row from which a query's latency counts as steady."""

NAMED = [
    """-- The share of walking per phone, in percent.
CREATE QUERY walking_percent AS
SELECT Device, round(100 * avg(CASE WHEN gt = 'walk' THEN 1 ELSE 0 END), 2) AS walking_percent
FROM events GROUP BY Device;""",
    """-- Events per user and activity.
CREATE QUERY user_activity AS
SELECT User, gt, count(*) AS events FROM events GROUP BY User, gt;""",
    """-- The largest |x| per activity.
CREATE QUERY largest_x AS
SELECT gt, max(abs(x)) AS largest_abs_x FROM events GROUP BY gt;""",
    """-- Events per minute of event time, once the minute is closed.
CREATE QUERY events_per_minute AS
SELECT window.start AS minute, count(*) AS events FROM events
GROUP BY window(event_time, '1 minute') EMIT FINAL;""",
    """-- Phones and users seen in each activity (approximately distinct).
CREATE QUERY activity_reach AS
SELECT gt, approx_count_distinct(Device) AS phones, approx_count_distinct(User) AS users
FROM events GROUP BY gt;""",
]


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def hhar(*args: str) -> list[str]:
    return [sys.executable, "-m", "hhar_stream.cli", *args]


def processor(work: Path, env: dict[str, str], data: Path, rows: int) -> dict[str, Any]:
    """The processor's events/s with 0, 1 and 5 named queries, on the same events."""
    topic = "bench.sql.events"
    produced = run(
        hhar("produce", "--source", str(data), "--topic", topic, "--max"), work, "produce", env
    ).check()
    log(f"produced {rows:,} rows in {produced.wall:.0f} s")
    figures: dict[str, Any] = {}
    for count in (0, 1, 5):
        name = f"process_{count}_named"
        files: list[str] = []
        if count:
            path = work / f"named_{count}.sql"
            path.write_text("\n\n".join(NAMED[:count]) + "\n")
            files = ["--query-file", str(path)]
        load = load_average()
        measured = run(
            hhar(
                "process",
                "--topic",
                topic,
                "--available-now",
                "--json",
                "--checkpoint",
                str(work / "checkpoints" / name),
                "--results-prefix",
                f"bench.sql.{name}.",
                "--history",
                str(data),
                *files,
            ),
            work,
            name,
            env,
        ).check()
        summary = json.loads(measured.stdout)
        figures[name] = {
            "named_queries": count,
            "events": summary["events"],
            "seconds": summary["seconds"],
            "events_per_s": summary["events_per_second"],
            "wall_s": round(measured.wall, 1),
            "load_before": round(load, 2),
            "load_after": round(load_average(), 2),
        }
        log(f"{name}: {figures[name]}")
    return figures


def _follow(command: list[str], env: dict[str, str], seconds: float) -> list[tuple[float, str]]:
    """Run `command`, returning each stdout line with the time it was read (epoch s)."""
    lines: list[tuple[float, str]] = []
    process = subprocess.Popen(  # noqa: S603 - our own command
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
    )
    assert process.stdout is not None
    deadline = time.monotonic() + seconds + 120
    for line in process.stdout:
        lines.append((time.time(), line))
        if time.monotonic() > deadline:
            process.kill()
            break
    process.wait()
    return lines


def sql(work: Path, env: dict[str, str], data: Path, seconds: float) -> dict[str, Any]:
    """`hhar sql`'s first rows and the latency of new events at `RATE` events/s."""
    topic = "bench.sql.live"
    producer = subprocess.Popen(  # noqa: S603 - our own command
        hhar(
            "produce",
            "--source",
            str(data),
            "--topic",
            topic,
            "--rate",
            str(RATE),
            "--loop",
            "--now",
            "--commit-interval",
            "0.25",
        ),
        stdout=subprocess.DEVNULL,
        stderr=(work / "paced-producer.err").open("w"),
        env=env,
    )
    figures: dict[str, Any] = {}
    try:
        time.sleep(20)  # the topic exists and holds events
        load = load_average()
        started = time.time()
        lines = _follow(
            hhar(
                "sql",
                "SELECT gt, count(*) AS events FROM events GROUP BY gt",
                "--topic",
                topic,
                "--changelog",
                "--rows",
                "1",
            ),
            env,
            0,
        )
        figures["first_rows"] = {
            "query": "GROUP BY gt over the whole topic, --from earliest",
            "seconds_to_first_row": round(lines[0][0] - started, 1) if lines else None,
            "rows": len(lines),
            "load_before": round(load, 2),
        }
        log(f"first rows: {figures['first_rows']}")
        load = load_average()
        started = time.time()
        lines = _follow(
            hhar(
                "sql",
                "SELECT Arrival_Time FROM events WHERE Index % 50 = 0",
                "--topic",
                topic,
                "--from",
                "latest",
                "--changelog",
                "--seconds",
                str(seconds + WARM_UP),
            ),
            env,
            seconds + WARM_UP,
        )
        # The first batches wait for Spark's start: the steady state is after WARM_UP seconds.
        first = lines[0][0] if lines else 0.0
        steady = [
            shown - json.loads(line)["row"]["Arrival_Time"] / 1000
            for shown, line in lines
            if shown >= first + WARM_UP
        ]
        figures["new_event_latency"] = {
            "query": "every 50th new event, --from latest",
            "seconds_to_first_row": round(lines[0][0] - started, 1) if lines else None,
            "rows": len(lines),
            "steady_rows": len(steady),
            "steady_after_s": WARM_UP,
            "p50_s": round(float(np.percentile(steady, 50)), 2) if steady else None,
            "p95_s": round(float(np.percentile(steady, 95)), 2) if steady else None,
            "max_s": round(max(steady), 2) if steady else None,
            "load_before": round(load, 2),
            "load_after": round(load_average(), 2),
        }
        log(f"new events: {figures['new_event_latency']}")
    finally:
        producer.terminate()
        producer.wait(60)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000, help="events the processor reads")
    parser.add_argument("--seconds", type=float, default=60.0, help="latency measured this long")
    parser.add_argument(
        "--sections", default="processor,sql", help="processor, sql or both (comma-separated)"
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hhar-sql-bench-") as folder:
        work = Path(folder)
        settings = Settings(
            home=REPO / ".hhar", kafka_port=free_port(), kafka_controller_port=free_port()
        )
        broker = LocalKafka(settings, run_dir=work / "kafka")
        broker.up()
        env = os.environ | {
            "HHAR_HOME": str(REPO / ".hhar"),
            "HHAR_BOOTSTRAP": broker.bootstrap,
            "HHAR_LOG_LEVEL": "INFO",
            "TERM": "dumb",
        }
        try:
            data = work / "data"
            run(
                hhar("data", "synth", "--out", str(data), "--rows", str(args.rows)),
                work,
                "synth",
                env,
            ).check()
            results: dict[str, Any] = {"rows": args.rows, "cpus": os.cpu_count()}
            if "processor" in sections:
                results["processor"] = processor(work, env, data, args.rows)
            if "sql" in sections:
                results["sql"] = sql(work, env, data, args.seconds)
        finally:
            broker.down()
    (OUT / "sql.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
