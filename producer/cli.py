"""`hhar produce`: replay HHAR rows into Kafka."""

from __future__ import annotations

import argparse
import logging
import threading

from hhar_stream.daemons import stop_on_signals
from hhar_stream.errors import BrokerError, HharError
from hhar_stream.metrics import serve_metrics
from hhar_stream.options import Commands, add_setting, settings_from_args

from .metrics import ReplayMetrics
from .progress import ProgressReporter, format_summary, progress_for_stderr
from .replay import replay

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Replay HHAR rows (JSON lines, .json.gz or the UCI CSV layout) into Kafka: each row is validated
against SensorEvent; valid rows go to the events topic (the line as read, key Device, record
timestamp Arrival_Time, header schema_version), invalid ones with the reason, source file and
line to the dead-letter topic, as do rows timed more than 55 minutes ahead of now (Kafka refuses
record timestamps over an hour ahead of its clock). Pacing: --speedup X, --rate N or --max; with
none of them the replay runs in real time (--speedup 1). Rows, dead letters and the replay's
position are committed together in Kafka transactions, so --resume after any stop or crash
delivers every row exactly once to read_committed consumers. --workers N shares the replay
among N processes (one core each), each with its own transactions and position.

On Ctrl+C or SIGTERM the producer stops reading, commits what it read and prints the summary;
a second Ctrl+C aborts at once (the open transaction is then discarded). The exit code is
non-zero when any event could not be delivered or any worker failed.

--metrics-port P serves Prometheus metrics at http://<metrics host>:P/metrics while the
replay runs; a replay that ends by itself waits (up to HHAR_METRICS_LINGER s) for one last
scrape of its final figures when it was scraped before."""


def register(subparsers: Commands) -> None:
    """Add the `produce` command."""
    parser = subparsers.add_parser(
        "produce",
        help="replay HHAR rows into Kafka (validated, paced, exactly once)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_argument_group("source and destination")
    add_setting(
        where,
        "--source",
        field="source",
        help=(
            "folder of part files, single file or glob (quote it); .json, .jsonl, .csv, .tsv, "
            "optionally .gz; default: the data folder (HHAR_DATA)"
        ),
    )
    add_setting(where, "--order", field="order", choices=["merged", "by-file"])
    add_setting(where, "--topic", field="topic")
    add_setting(where, "--dlq-topic", field="dlq_topic")
    add_setting(where, "--bootstrap", field="bootstrap")
    add_setting(
        where,
        "--partitions",
        field="partitions",
        type=int,
        help=("partitions of the events and dead-letter topics when the producer creates them"),
    )
    add_setting(where, "--replication-factor", field="replication_factor", type=int)
    add_setting(where, "--state-topic", field="state_topic")

    pacing = parser.add_argument_group("pacing (default: real time, as --speedup 1)")
    add_setting(
        pacing,
        "--speedup",
        field="speedup",
        type=float,
        help=(
            "replay the recording's gaps between Arrival_Times divided by this factor "
            "(1 = real time)"
        ),
    )
    add_setting(pacing, "--rate", field="rate", type=float)
    add_setting(pacing, "--max", field="max_speed")
    add_setting(
        pacing,
        "--max-gap",
        field="max_gap",
        type=float,
        help=(
            "wait at most this many seconds (of event time) for a gap in the recording; the "
            "records keep their timestamps"
        ),
    )

    extras = parser.add_argument_group("simulation")
    add_setting(extras, "--limit", field="limit", type=int)
    add_setting(
        extras,
        "--loop",
        field="loop",
        help=(
            "replay forever; each pass has its own run_id header and times shifted past the "
            "previous pass"
        ),
    )
    add_setting(
        extras,
        "--devices",
        field="devices",
        type=int,
        help=(
            "fan each recorded device out into this many virtual devices (Device, Device-v2, ...)"
        ),
    )
    add_setting(
        extras,
        "--now",
        field="rebase_now",
        help=(
            "stamp every event with the time the pacing sends it (Arrival_Time and the record "
            "timestamp; Creation_Time moves with them): the recording's gaps with --speedup 1, "
            "divided with --speedup X, even with --rate; with --max the time it is sent"
        ),
    )
    add_setting(extras, "--resume", field="resume")
    add_setting(
        extras,
        "--fail-on-invalid",
        field="fail_on_invalid",
        help=("stop at the first invalid row (with an error) instead of dead-lettering it"),
    )

    tuning = parser.add_argument_group("Kafka producer tuning")
    add_setting(
        tuning,
        "--compression",
        field="compression",
        choices=["none", "gzip", "snappy", "lz4", "zstd"],
    )
    add_setting(tuning, "--linger-ms", field="linger_ms", type=int)
    add_setting(tuning, "--batch-size", field="batch_size", type=int)
    add_setting(tuning, "--commit-interval", field="commit_interval", type=float)
    add_setting(
        tuning,
        "--workers",
        field="workers",
        type=int,
        help=(
            "processes sharing the replay, one core each: whole files each when there are at "
            "least 4 per worker, else every N-th line of every file; --rate and --limit are "
            "their totals; "
            "--resume needs as many workers as the stopped replay had"
        ),
    )
    monitoring = parser.add_argument_group("Prometheus metrics")
    add_setting(
        monitoring, "--metrics-port", field="producer_metrics_port", type=int, metavar="PORT"
    )
    add_setting(monitoring, "--metrics-host", field="metrics_host")
    parser.set_defaults(func=_produce)


def _produce(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    stop = threading.Event()
    limit = None if settings.loop else settings.limit
    progress: ProgressReporter = progress_for_stderr(limit)
    metrics = ReplayMetrics(settings, progress)
    endpoint = serve_metrics(settings, "producer_metrics_port", "--metrics-port", metrics)
    try:
        with stop_on_signals(stop, "stopping, committing what was read"):
            stats = replay(settings, stop=stop, progress=progress if endpoint is None else metrics)
            if endpoint is not None and not stop.is_set():
                endpoint.wait_for_last_scrape(settings.metrics_linger, stop)
    finally:
        if endpoint is not None:
            endpoint.close()
    print(format_summary(stats))
    if stats.failed or stats.failure:
        msg = f"{stats.failed:,} events or dead letters were not delivered: {stats.failure}"
        raise BrokerError(msg)
    if stats.errors:
        raise HharError("; ".join(stats.errors))
    return 0
