"""`hhar spark up|down|status`: a local Spark standalone cluster for the processor."""

from __future__ import annotations

import argparse

from ..options import Commands, add_setting, settings_from_args
from .spark import LocalSpark


def register(subparsers: Commands) -> None:
    """Add the `spark` command group."""
    spark = subparsers.add_parser(
        "spark",
        help="run a local Spark standalone cluster (master + workers)",
        description="Start, stop and inspect a Spark standalone cluster on 127.0.0.1, "
        "started from the installed pyspark; run the processor on it with "
        "`hhar process --master spark://127.0.0.1:7077`.",
    )
    actions = spark.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, helptext, func in (
        ("up", "start the master and the workers", _up),
        ("down", "stop the workers and the master", _down),
        ("status", "say whether the master and every worker run (exit 1 if not)", _status),
    ):
        parser = actions.add_parser(name, help=helptext)
        add_setting(parser, "--workers", field="spark_workers", type=int)
        add_setting(parser, "--master-port", field="spark_master_port", type=int)
        add_setting(parser, "--ui-port", field="spark_master_ui_port", type=int)
        add_setting(parser, "--home", field="home")
        if name == "up":
            add_setting(parser, "--worker-cores", field="spark_worker_cores", type=int)
            add_setting(parser, "--worker-memory", field="spark_worker_memory")
        parser.set_defaults(func=func)


def _up(args: argparse.Namespace) -> int:
    print(LocalSpark(settings_from_args(args)).up())
    return 0


def _down(args: argparse.Namespace) -> int:
    print(LocalSpark(settings_from_args(args)).down())
    return 0


def _status(args: argparse.Namespace) -> int:
    healthy, text = LocalSpark(settings_from_args(args)).status()
    print(text)
    return 0 if healthy else 1
