"""`hhar demo` (`make demo`): the whole pipeline on this machine, with the live results view.

Its first line says which data it replays. It starts the local broker unless a broker already
answers at the bootstrap address, generates a data set unless the data folder holds one
(``HHAR_DATA`` points at the real activity-data folder when you have it; with ``HHAR_FETCH=1``
it fetches the real set there instead, `hhar data fetch`), clears the demo's topics and
checkpoints, starts the processor (with Spark's UI), a paced producer and the dashboard as
child processes, prints the addresses of the dashboard and of Spark's UI, and shows
`hhar watch`. Ctrl+C, or the end of ``--seconds``, stops everything it started, the broker
included, and leaves no process.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..daemons import free_port, launch, port_is_free, stop_child
from ..dataset.check import describe_source, identify
from ..errors import ConfigError, HharError
from ..kafka_client import broker_answers, delete_topics
from ..local.kafka import LocalKafka
from ..options import Commands, add_setting, settings_from_args
from ..settings import Settings
from .dashboard.cli import dashboard_url
from .watch import WATCHED_QUERIES

logger = logging.getLogger(__name__)


def _child(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `hhar <args>` in its own process group, its output in `log`."""
    return launch([sys.executable, "-m", "hhar_stream.cli", *args], log, env=env)


def _clear_topics(settings: Settings) -> None:
    """Delete the events, dead-letter and result topics so that the demo starts from zero."""
    wanted = {settings.topic, settings.dead_letter_topic}
    delete_topics(settings, wanted | {settings.result_topic(query) for query in WATCHED_QUERIES})


def _check_ports(settings: Settings) -> Settings:
    """Refuse a dashboard port that is taken (one line); move Spark's UI to a free port when its
    own is taken, so that the address printed is the one Spark takes."""
    if not port_is_free(settings.dashboard_port, settings.dashboard_host):
        msg = (
            f"port {settings.dashboard_port} of the dashboard is already in use: stop what "
            f"listens there or choose another (HHAR_DASHBOARD_PORT)"
        )
        raise ConfigError(msg)
    if port_is_free(settings.spark_ui_port):
        return settings
    return settings.model_copy(update={"spark_ui_port": free_port()})


def announce_data(settings: Settings, rows: int) -> list[str] | None:
    """Say which data the demo replays (its first line); the `hhar data` command that makes
    it, if any: fetch (``HHAR_FETCH``) unless the real set is there, generate when nothing is."""
    folder = settings.data
    if settings.fetch and not (folder.is_dir() and identify(folder).kind == "real"):
        print(
            f"data: fetching the real activity-data set into {folder} (hhar data fetch), "
            f"then replaying it",
            flush=True,
        )
        return ["fetch", "--out", str(folder)]
    if not folder.is_dir() or identify(folder).kind == "empty":
        print(
            f"data: generating {rows:,} HHAR-like rows into {folder}, then replaying them "
            f"(a generated set: hhar data fetch gets the real one)",
            flush=True,
        )
        return ["synth", "--out", str(folder), "--rows", str(rows)]
    print(f"data: replaying {describe_source(folder)}", flush=True)
    return None


def run_demo(settings: Settings, seconds: float | None, rows: int, speedup: float) -> int:
    """Run the pipeline until Ctrl+C or `seconds`; returns the exit code."""
    settings = _check_ports(settings)
    data_command = announce_data(settings, rows)
    env = os.environ | {"HHAR_BOOTSTRAP": settings.bootstrap, "HHAR_DATA": str(settings.data)}
    if data_command is not None:
        made = subprocess.run(  # noqa: S603 - our own command line
            [sys.executable, "-m", "hhar_stream.cli", "data", *data_command], env=env, check=False
        )
        if made.returncode != 0:
            msg = f"hhar data {data_command[0]} failed (exit {made.returncode}): see above"
            raise HharError(msg)
    work = (settings.home / "demo").resolve()
    work.mkdir(parents=True, exist_ok=True)
    local = LocalKafka(settings)
    started_broker = False
    if not broker_answers(settings.bootstrap, client_config=settings.kafka_client_config()):
        if settings.bootstrap != local.bootstrap:
            msg = f"no Kafka broker answers at {settings.bootstrap}"
            raise HharError(msg)
        print(local.up(), flush=True)
        started_broker = True

    _clear_topics(settings)
    checkpoints = work / "checkpoints"
    shutil.rmtree(checkpoints, ignore_errors=True)

    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        processor_env = env | {
            "HHAR_CHECKPOINT": str(checkpoints),
            # Small micro-batches: the first results show within seconds, not after the
            # whole backlog; short windows so that closed windows appear during the demo.
            "HHAR_MAX_OFFSETS_PER_TRIGGER": os.environ.get("HHAR_MAX_OFFSETS_PER_TRIGGER", "20000"),
            "HHAR_WINDOW": os.environ.get("HHAR_WINDOW", "1 minute"),
            "HHAR_WATERMARK": os.environ.get("HHAR_WATERMARK", "30 seconds"),
            # A live view: a micro-batch twice a second keeps the results within a second of
            # the events (with the producer's commits below).
            "HHAR_TRIGGER": os.environ.get("HHAR_TRIGGER", "500ms"),
            "HHAR_SPARK_UI": "true",
            "HHAR_SPARK_UI_PORT": str(settings.spark_ui_port),
        }
        children.append(("processor", _child(["process"], processor_env, work / "processor.log")))
        dashboard_env = env | {
            "HHAR_CHECKPOINT": str(checkpoints),
            "HHAR_DASHBOARD_HOST": settings.dashboard_host,
            "HHAR_DASHBOARD_PORT": str(settings.dashboard_port),
        }
        children.append(("dashboard", _child(["dashboard"], dashboard_env, work / "dashboard.log")))
        producer_env = env | {
            "HHAR_SOURCE": str(settings.data),
            "HHAR_SPEEDUP": str(speedup),
            "HHAR_MAX_GAP": "1",
            # Replay again and again (time shifted forward each pass) until the demo ends.
            "HHAR_LOOP": "true",
            # Events become visible to the processor (read_committed) at each commit.
            "HHAR_COMMIT_INTERVAL": os.environ.get("HHAR_COMMIT_INTERVAL", "0.25"),
        }
        children.append(("producer", _child(["produce"], producer_env, work / "producer.log")))
        print(
            f"processor, producer and dashboard started (logs in {work}); showing the results"
            + (f" for {seconds:.0f} s" if seconds else ", Ctrl+C to stop"),
            flush=True,
        )
        print(f"dashboard: {dashboard_url(settings)}", flush=True)
        print(
            f"Spark UI:  http://127.0.0.1:{settings.spark_ui_port} (once the processor has "
            f"started; Structured Streaming tab)",
            flush=True,
        )
        watch_args = ["watch", "--interval", "2"]
        if seconds:
            watch_args += ["--duration", str(seconds)]
        watch = subprocess.run(  # noqa: S603 - our own command line
            [sys.executable, "-m", "hhar_stream.cli", *watch_args], env=env, check=False
        )
        for name, process in children:
            if process.poll() not in (None, 0):
                logger.error(
                    "%s exited with code %s; see %s", name, process.returncode, work / f"{name}.log"
                )
                return 1
        return watch.returncode
    except KeyboardInterrupt:
        return 0
    finally:
        print("stopping the demo ...", flush=True)
        for name, process in reversed(children):
            stop_child(process, name)
        if started_broker:
            print(local.down(), flush=True)


def register(subparsers: Commands) -> None:
    """Add the `demo` command."""
    parser = subparsers.add_parser(
        "demo",
        help="run broker, producer, processor and the live view together",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_setting(parser, "--bootstrap", field="bootstrap")
    add_setting(parser, "--data", field="data")
    add_setting(parser, "--dashboard-port", field="dashboard_port", type=int)
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("DEMO_SECONDS") or 0) or None,
        help="stop after this many seconds [env: DEMO_SECONDS; default: until Ctrl+C]",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=200_000,
        help="rows to generate when the data folder is empty (default 200000; the replay "
        "loops, and the processor reads them all once as its history)",
    )
    parser.add_argument(
        "--speedup",
        type=float,
        default=10.0,
        help="replay speed in event time (default 10: ten minutes of recording per minute, "
        "about 4,000 events/s)",
    )
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    return run_demo(settings, args.seconds, args.rows, args.speedup)
