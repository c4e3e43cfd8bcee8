"""`hhar process`, `hhar profile` and `hhar status`: the processor's commands."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
import time
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..daemons import stop_on_signals
from ..errors import QueryFailedError, SqlError
from ..metrics import serve_metrics
from ..options import Commands, add_setting, settings_from_args
from .catalogue import QUERY_NAMES

logger = logging.getLogger(__name__)

_POLL_SECONDS = 1.0


def register(subparsers: Commands) -> None:
    """Add the processor's commands."""
    process = subparsers.add_parser(
        "process",
        help="run the streaming queries over the events topic",
        description=(
            "Read the events topic with Spark Structured Streaming, run the selected queries "
            "and write their results to the chosen sinks. Messages that are not valid events "
            "are counted and kept in the bad_records output. live_vs_historical needs a static "
            "history (--history, default the data folder); when it is missing, the run stops "
            f"with an error. Queries: {', '.join(QUERY_NAMES)}."
        ),
    )
    add_setting(process, "--bootstrap", field="bootstrap")
    add_setting(process, "--topic", field="topic")
    add_setting(
        process,
        "--queries",
        field="queries",
        help="all, or a comma-separated list; -name leaves one out (all,-stairs_by_user)",
    )
    add_setting(process, "--engine", field="engine", choices=["fused", "per-query"])
    add_setting(process, "--snapshot-interval", field="snapshot_interval", type=int)
    add_setting(process, "--state-store", field="state_store", choices=["hdfs", "rocksdb"])
    add_setting(process, "--sink", field="sink")
    add_setting(process, "--trigger", field="trigger", help="micro-batch interval (1s, 500ms)")
    add_setting(process, "--available-now", field="available_now")
    add_setting(process, "--max-offsets-per-trigger", field="max_offsets_per_trigger", type=int)
    add_setting(
        process, "--starting-offsets", field="starting_offsets", choices=["earliest", "latest"]
    )
    add_setting(process, "--fail-on-data-loss", field="fail_on_data_loss")
    add_setting(process, "--checkpoint", field="checkpoint")
    add_setting(process, "--history", field="history")
    add_setting(
        process,
        "--query-file",
        field="query_file",
        action="append",
        help="a SQL file (or a folder of *.sql files) of named continuous queries, "
        "CREATE QUERY name AS SELECT ...; (repeatable)",
    )
    add_setting(process, "--data", field="data")
    add_setting(process, "--window", field="window")
    add_setting(process, "--watermark", field="watermark")
    add_setting(process, "--stairs-users", field="stairs_users")
    add_setting(process, "--stairs-device", field="stairs_device")
    add_setting(process, "--results-prefix", field="results_prefix")
    _spark_options(process)
    add_setting(process, "--spark-ui", field="spark_ui")
    add_setting(process, "--spark-ui-port", field="spark_ui_port", type=int)
    add_setting(process, "--metrics-port", field="processor_metrics_port", type=int, metavar="PORT")
    add_setting(process, "--metrics-host", field="metrics_host")
    process.add_argument(
        "--reset",
        action="store_true",
        help="start over: delete the selected queries' checkpoints and result topics",
    )
    process.add_argument(
        "--reset-query",
        action="append",
        default=[],
        metavar="NAME",
        help="start this named query over: delete its checkpoint and result topic (repeatable)",
    )
    process.add_argument("--json", action="store_true", help="print the final summary as JSON")
    process.set_defaults(func=_process)

    profile = subparsers.add_parser(
        "profile",
        help="profile a data set: inventory, schema, counts, describe, partitions",
        description="The static profile of an HHAR folder, file or glob of JSON lines.",
    )
    add_setting(
        profile,
        "--source",
        field="source",
        help="folder, file or glob to profile (default: the data folder)",
    )
    add_setting(profile, "--data", field="data")
    profile.add_argument(
        "--repartition", type=int, metavar="N", help="also show the partitions after repartition(N)"
    )
    profile.add_argument("--json", action="store_true", help="print JSON for machines")
    _spark_options(profile)
    profile.set_defaults(func=_profile)

    status = subparsers.add_parser(
        "status",
        help="show the running processor's queries: name, id, active, last progress",
        description="Read the status the processor keeps under its checkpoint root.",
    )
    add_setting(status, "--checkpoint", field="checkpoint")
    status.add_argument("--json", action="store_true", help="print JSON for machines")
    status.set_defaults(func=_status)


def _spark_options(parser: argparse.ArgumentParser) -> None:
    add_setting(parser, "--master", field="master")
    add_setting(parser, "--shuffle-partitions", field="shuffle_partitions", type=int)
    add_setting(parser, "--driver-memory", field="driver_memory")
    add_setting(parser, "--executor-memory", field="executor_memory")


def _process(args: argparse.Namespace) -> int:
    from .metrics import ProcessorMetrics
    from .runner import Processor
    from .session import build_session

    settings = settings_from_args(args)
    on_terminal = sys.stderr.isatty()
    processor = Processor(settings, logging.DEBUG if on_terminal else logging.INFO)
    unknown = [name for name in args.reset_query if name not in processor.named.names]
    if unknown:
        msg = (
            f"--reset-query {unknown[0]}: no named query of that name in the query files "
            f"({', '.join(processor.named.names) or 'none given: --query-file'}); the built-in "
            f"queries start over together, with --reset"
        )
        raise SqlError(msg)
    metrics = ProcessorMetrics(settings, processor.status)
    endpoint = serve_metrics(settings, "processor_metrics_port", "--metrics-port", metrics)
    try:
        processor.preflight()  # before Spark: Ctrl+C may still interrupt at once here
        stop = threading.Event()
        watching = metrics.watching() if endpoint is not None else contextlib.nullcontext()
        with stop_on_signals(stop, "stopping the queries"), watching:
            spark = build_session(settings, app_name="hhar-process")
            try:
                _start_and_run(processor, spark, args.reset, args.reset_query, stop, on_terminal)
            finally:
                _shut_down(processor, spark)
            if endpoint is not None and not stop.is_set():
                endpoint.wait_for_last_scrape(settings.metrics_linger, stop)
    finally:
        if endpoint is not None:
            endpoint.close()
    if stop.is_set():
        logger.info("stopped on request: the checkpoints keep the progress for the next run")
    _print_summary(processor.summary(), args.json)
    return 0


def _start_and_run(
    processor: Any,
    spark: Any,
    reset: bool,
    reset_queries: list[str],
    stop: threading.Event,
    on_terminal: bool,
) -> None:
    """Start the queries, then wait for them to end or for a stop request.

    A SIGTERM sent to the whole process group (systemd, `kill -- -PID`, the end of
    `hhar demo`) also ends Spark's JVM, during the start (reading the history, planning the
    queries) as well as later; once a stop was requested, losing the JVM under a call is the
    stop, not an error.
    """
    from py4j.protocol import Py4JError

    try:
        processor.start(spark, reset=reset, reset_queries=reset_queries)
        if on_terminal:
            _watch_with_progress(processor, stop)
        else:
            while not processor.wait(_POLL_SECONDS) and not stop.is_set():
                pass
    except (Py4JError, ConnectionError, QueryFailedError):
        if not stop.is_set():
            raise


def _shut_down(processor: Any, spark: Any) -> None:
    """Stop the queries and Spark; a JVM that is already gone (killed with us) is no error."""
    from py4j.protocol import Py4JError

    try:
        processor.stop()
        spark.stop()
    except (Py4JError, ConnectionError) as error:
        logger.warning("Spark was already gone while stopping: %s", error)


def _watch_with_progress(processor: Any, stop: threading.Event) -> None:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<24}"),
        TextColumn("{task.fields[text]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        tasks = {
            name: progress.add_task(name, total=None, text="starting")
            for name in [*processor.streaming_names(), *processor.named.names]
        }
        started = time.monotonic()
        while True:
            done = processor.wait(_POLL_SECONDS)
            elapsed = max(time.monotonic() - started, 1e-3)
            for name, query in processor.status.snapshot()["queries"].items():
                last = query["last_progress"] or {}
                text = (
                    f"batch {last.get('batch_id', '-')}, {query['input_rows']:,} rows, "
                    f"bad {query['bad_records']:,}, late {query['late_rows']:,}, "
                    f"{query['input_rows'] / elapsed:,.0f} rows/s"
                )
                if name in tasks:
                    progress.update(tasks[name], text=text)
            if done or stop.is_set():
                return


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    table = Table(title="hhar process", title_justify="left")
    for column in ("query", "batches", "input rows", "bad", "late"):
        table.add_column(column, justify="left" if column == "query" else "right")
    for name, query in summary["queries"].items():
        table.add_row(
            name,
            *(
                f"{query.get(key, 0):,}"
                for key in ("batches", "input_rows", "bad_records", "late_rows")
            ),
        )
    console = Console(file=sys.stdout)
    console.print(table)
    rate = summary["events_per_second"]
    console.print(
        f"{summary['events']:,} events in {summary['seconds']} s"
        + (f" ({rate:,.0f} events/s)" if rate else "")
    )
    if summary["skipped_events"]:
        console.print(
            f"{summary['skipped_events']:,} unread events skipped: Kafka had removed "
            f"them (fail_on_data_loss is off)"
        )


def _profile(args: argparse.Namespace) -> int:
    from .profile import inventory, profile_dataset, render_profile
    from .session import build_session

    settings = settings_from_args(args)
    source = settings.source or settings.data
    inventory(source)  # fails before the JVM starts when there is nothing to read
    spark = build_session(settings, app_name="hhar-profile")
    try:
        result = profile_dataset(
            spark,
            source,
            repartition=args.repartition,
            shuffle_partitions=settings.shuffle_partitions,
        )
    finally:
        spark.stop()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        render_profile(result)
    return 0


def _status(args: argparse.Namespace) -> int:
    from .status import read_status

    settings = settings_from_args(args)
    state = read_status(settings)
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    running = "running" if state["running"] else "not running"
    print(
        f"processor pid {state['pid']} on {state['host']}: {running}; topic {state['topic']}; "
        f"started {state['started_at']}, updated {state['updated_at']}"
    )
    if state.get("spark_ui") and state["running"]:
        print(f"Spark UI: {state['spark_ui']}")
    for query in state["queries"].values():
        named = f" (named, {query['named']}; {query['topic']})" if query.get("named") else ""
        print(
            f"{query['name']}{named}: id {query['id']}, "
            f"active {'yes' if query['active'] else 'no'}, "
            f"status {query['exception'] or query['status'] or '-'}"
        )
        last = query["last_progress"]
        if last:
            print(
                f"  last batch {last['batch_id']} at {last['timestamp']}: "
                f"{last['input_rows']:,} rows (bad {last['bad_records']:,}, "
                f"late {last['late_rows']:,}), "
                f"{last['processed_rows_per_second'] or 0:,.0f} rows/s, "
                f"watermark {last['watermark'] or '-'}"
            )
        print(
            f"  this run: {query['batches']:,} batches, {query['input_rows']:,} rows, "
            f"bad {query['bad_records']:,}, late {query['late_rows']:,}"
        )
    return 0
