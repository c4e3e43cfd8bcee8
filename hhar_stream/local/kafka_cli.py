"""`hhar kafka up|down|status|topics|consume|create-topics`: the project's local broker and its
tools, and the creation of hhar-stream's topics on any cluster (compose's kafka-init)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from ..kafka_client import prepare_topics, topic_specs, wait_for_brokers
from ..options import Commands, add_setting, settings_from_args
from .kafka import LocalKafka


def register(subparsers: Commands) -> None:
    """Add the `kafka` command group."""
    kafka = subparsers.add_parser(
        "kafka",
        help="run the local Kafka broker (KRaft, from Maven Central jars)",
        description="Start, stop and inspect the project's local Kafka broker.",
    )
    actions = kafka.add_subparsers(dest="action", required=True, metavar="ACTION")

    def common(parser: argparse.ArgumentParser) -> None:
        add_setting(parser, "--port", field="kafka_port", type=int)
        add_setting(parser, "--controller-port", field="kafka_controller_port", type=int)
        add_setting(parser, "--home", field="home")
        add_setting(parser, "--brokers", field="kafka_brokers", type=int)
        add_setting(parser, "--secure", field="kafka_secure")

    up = actions.add_parser("up", help="start the broker (no-op when it already runs)")
    common(up)
    add_setting(up, "--heap", field="kafka_heap")
    add_setting(up, "--timeout", field="kafka_ready_timeout", type=float)
    up.set_defaults(func=_up)

    down = actions.add_parser("down", help="stop the broker started by `hhar kafka up`")
    common(down)
    down.set_defaults(func=_down)

    status = actions.add_parser("status", help="say whether the broker answers (exit 1 if not)")
    common(status)
    status.set_defaults(func=_status)

    topics = actions.add_parser("topics", help="list the topics with partitions and configs")
    common(topics)
    add_setting(topics, "--bootstrap", field="bootstrap")
    topics.set_defaults(func=_topics)

    consume = actions.add_parser(
        "consume", help="print a topic's records with keys, timestamps and headers"
    )
    common(consume)
    add_setting(consume, "--bootstrap", field="bootstrap")
    consume.add_argument("topic", help="the topic to read")
    consume.add_argument("--max", type=int, default=10, help="records to show (default 10)")
    consume.add_argument(
        "--timeout-ms", type=int, default=10000, help="stop after this long without a record"
    )
    consume.set_defaults(func=_consume)

    create = actions.add_parser(
        "create-topics",
        help="create the events, dead-letter and producer-state topics with their configs",
        description=(
            "Create the topics `hhar produce` writes (events, dead letters, its state) on the "
            "cluster at --bootstrap with the configs hhar-stream gives them (the events never "
            "expire: they carry the recording's timestamps). Topics that exist get those "
            "configs too. Waits for the cluster to list as many brokers as the replication "
            "factor. docker compose's kafka-init service runs this."
        ),
    )
    add_setting(create, "--bootstrap", field="bootstrap")
    add_setting(create, "--topic", field="topic")
    add_setting(create, "--partitions", field="partitions", type=int)
    add_setting(create, "--replication-factor", field="replication_factor", type=int)
    add_setting(create, "--min-insync-replicas", field="min_insync_replicas", type=int)
    add_setting(
        create,
        "--timeout",
        field="kafka_ready_timeout",
        type=float,
        help="seconds to wait for the brokers to answer",
    )
    create.set_defaults(func=_create_topics)


def _local(args: argparse.Namespace) -> LocalKafka:
    return LocalKafka(settings_from_args(args))


def _up(args: argparse.Namespace) -> int:
    print(_local(args).up())
    return 0


def _down(args: argparse.Namespace) -> int:
    print(_local(args).down())
    return 0


def _status(args: argparse.Namespace) -> int:
    answers, text = _local(args).status()
    print(text)
    return 0 if answers else 1


def _topics(args: argparse.Namespace) -> int:
    local = _local(args)
    result = local.run_tool(
        "org.apache.kafka.tools.TopicCommand",
        ["--bootstrap-server", local.settings.bootstrap, "--describe", "--exclude-internal"],
    )
    return result.returncode


def _consume(args: argparse.Namespace) -> int:
    local = _local(args)
    result = local.run_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        [
            "--bootstrap-server",
            local.settings.bootstrap,
            "--topic",
            args.topic,
            "--from-beginning",
            "--max-messages",
            str(args.max),
            "--timeout-ms",
            str(args.timeout_ms),
            "--formatter-property",
            "print.key=true",
            "--formatter-property",
            "print.headers=true",
            "--formatter-property",
            "print.timestamp=true",
            "--formatter-property",
            "print.partition=true",
            "--formatter-property",
            "print.offset=true",
        ],
        stdout=sys.stdout,
        stderr=subprocess.PIPE,
    )
    # The console consumer ends a quiet wait with an ERROR and a TimeoutException: that is the
    # end of the topic, not a failure. Its advert for the new rebalance protocol is noise here.
    lines = result.stderr.splitlines()
    timed_out = "org.apache.kafka.common.errors.TimeoutException" in lines
    for line in lines:
        if line.startswith("The consumer rebalance protocol (KIP-848)") or (
            timed_out
            and (
                "Error processing message, terminating" in line
                or line == "org.apache.kafka.common.errors.TimeoutException"
            )
        ):
            continue
        print(line, file=sys.stderr)
    if timed_out:
        print(f"no more records within {args.timeout_ms / 1000:g} s", file=sys.stderr)
    return result.returncode


def _create_topics(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    wait_for_brokers(settings, settings.replication_factor, settings.kafka_ready_timeout)
    for line in prepare_topics(settings, topic_specs(settings)):
        print(line)
    return 0
