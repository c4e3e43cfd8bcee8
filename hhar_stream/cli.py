"""`hhar`: the single command-line entry point of hhar-stream."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import NoReturn

from pydantic import ValidationError

from . import __version__
from .apps import demo, sql, watch
from .apps.dashboard import cli as dashboard_cli
from .errors import HharError
from .local import kafka_cli, spark_cli
from .metrics import metrics_table
from .options import (
    add_setting,
    default_text,
    describe_settings_error,
    env_var,
    settings_from_args,
)
from .schemas import sensor_event_json_schema
from .settings import Settings

logger = logging.getLogger(__name__)


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``error:`` line, like every hhar error.

    Its subcommands' parsers are of the same class (argparse's default ``parser_class``).
    """

    def error(self, message: str) -> NoReturn:
        """Print ``error: <message> (see <command> --help)`` and exit 2."""
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The `hhar` argument parser with every subcommand."""
    from .dataset import cli as dataset_cli
    from .generator import synth
    from .processor import cli as processor_cli
    from .processor import sql_cli
    from .producer import cli as producer_cli

    parser = OneLineErrorParser(
        prog="hhar",
        description="HHAR sensor events through Kafka into Spark Structured Streaming.",
        epilog="Every setting can also be given as an HHAR_* environment variable.",
    )
    parser.add_argument("--version", action="version", version=f"hhar-stream {__version__}")
    add_setting(parser, "--log-level", field="log_level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    schema = subparsers.add_parser(
        "schema", help="print the event schema as Spark's printSchema tree"
    )
    schema.add_argument("--json-schema", action="store_true", help="print the JSON Schema instead")
    schema.set_defaults(func=_schema)

    config = subparsers.add_parser("config", help="print the effective settings")
    config.add_argument("--json", action="store_true", help="as JSON (secrets masked)")
    config.add_argument(
        "--reference",
        action="store_true",
        help="print the reference table of every setting (Markdown, as in README.md)",
    )
    config.add_argument(
        "--metrics-reference",
        action="store_true",
        help="print the reference table of every Prometheus metric (Markdown, as in README.md)",
    )
    config.set_defaults(func=_config)

    kafka_cli.register(subparsers)
    spark_cli.register(subparsers)
    data = subparsers.add_parser(
        "data",
        help="HHAR data sets: fetch the real activity-data set, check a folder, generate one",
        description="Work with HHAR data folders.",
    )
    data_actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    dataset_cli.register(data_actions)
    synth.register(data_actions)
    producer_cli.register(subparsers)
    processor_cli.register(subparsers)
    sql_cli.register(subparsers)
    watch.register(subparsers)
    sql.register(subparsers)
    dashboard_cli.register(subparsers)
    demo.register(subparsers)
    return parser


def _schema(args: argparse.Namespace) -> int:
    if args.json_schema:
        print(json.dumps(sensor_event_json_schema(), indent=2))
        return 0
    from .schemas.events import SensorEvent
    from .schemas.spark import to_spark_schema

    print(to_spark_schema(SensorEvent).treeString(), end="")
    return 0


def settings_reference() -> str:
    """A Markdown table of every setting: variable, default and meaning."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for field, info in Settings.model_fields.items():
        shown = default_text(field)
        lines.append(
            f"| `{env_var(field)}` | {f'`{shown}`' if shown != '' else '(unset)'} "
            f"| {info.description} |"
        )
    return "\n".join(lines) + "\n"


def metrics_reference() -> str:
    """A Markdown table of every metric of the producer, the processor and the dashboard."""
    from .apps.dashboard import metrics as dashboard_metrics
    from .processor import metrics as processor_metrics
    from .producer import metrics as producer_metrics

    return metrics_table(
        [producer_metrics.METRICS, processor_metrics.METRICS, dashboard_metrics.METRICS]
    )


def _config(args: argparse.Namespace) -> int:
    if args.reference:
        print(settings_reference(), end="")
        return 0
    if args.metrics_reference:
        print(metrics_reference(), end="")
        return 0
    settings = settings_from_args(args)
    values = settings.model_dump(mode="json")
    if args.json:
        print(json.dumps(values, indent=2))
        return 0
    for field, value in values.items():
        print(f"{env_var(field)}={'' if value is None else value}")
    return 0


def _not_from_py4j(record: logging.LogRecord) -> bool:
    """Py4J logs its connection errors on the root logger while Spark shuts down: noise that
    hhar reports as one line of its own (shown again with --log-level DEBUG)."""
    return f"{os.sep}py4j{os.sep}" not in record.pathname


def configure_logging(level: str) -> None:
    """One readable log format on stderr, for people."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if level != "DEBUG":
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_from_py4j)
    librdkafka_level = logging.DEBUG if level == "DEBUG" else logging.CRITICAL
    logging.getLogger("librdkafka").setLevel(librdkafka_level)


def main(argv: list[str] | None = None) -> int:
    """Run `hhar`; errors end in one ``error:`` line on stderr and a non-zero exit."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        level = settings_from_args(args).log_level
        configure_logging(level)
        return int(args.func(args) or 0)
    except HharError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except ValidationError as error:
        print(f"error: {describe_settings_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`hhar status | head`): nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
