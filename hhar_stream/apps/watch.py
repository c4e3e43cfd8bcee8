"""`hhar watch`: a live view of the processor's result topics.

The result topics are compacted, so their current state is the last value per key. The view
reads each topic from the beginning, keeps the latest row per key and redraws one table per
query: on a terminal with rich, refreshing as updates arrive; without a terminal as plain
periodic snapshots (``--once`` prints one snapshot of everything published so far and exits).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from ..errors import BrokerError, ConfigError
from ..kafka_client import check_broker
from ..options import Commands, add_setting, settings_from_args
from ..processor.catalogue import CATALOGUE
from ..schemas.results import ResultRecord, parse_result_value
from ..settings import Settings

if TYPE_CHECKING:
    from rich.console import Group, RenderableType

logger = logging.getLogger(__name__)

WATCHED_QUERIES = tuple(CATALOGUE)


@dataclass
class Table:
    """One rendered query: a title, column names and rows of text cells."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class ResultState:
    """The latest record per key of every watched result topic."""

    latest: dict[str, dict[bytes, ResultRecord]] = field(default_factory=dict)
    invalid: int = 0

    def apply(self, query: str, key: bytes | None, value: bytes | None) -> None:
        """Fold one result-topic record in (a null value deletes the key, as compaction does)."""
        rows = self.latest.setdefault(query, {})
        if value is None:
            rows.pop(key or b"", None)
            return
        try:
            rows[key or b""] = parse_result_value(value)
        except ValueError:
            self.invalid += 1

    def records(self, query: str) -> list[Any]:
        """The current rows of one query."""
        return list(self.latest.get(query, {}).values())

    def last_batch(self) -> int | None:
        """The newest batch id seen in any result."""
        ids = [r.batch_id for rows in self.latest.values() for r in rows.values()]
        return max(ids) if ids else None


def build_tables(state: ResultState, queries: Iterable[str]) -> list[Table]:
    """Turn the current results into one table per query, as the catalogue's views show them."""
    tables = []
    for name in queries:
        view = CATALOGUE[name].view
        records = state.records(name)
        title = view.title.format(name=name, count=len(records))
        tables.append(Table(title, list(view.columns), view.rows(records)))
    return tables


def render_plain(tables: list[Table], status: str) -> str:
    """The snapshot as plain text: one aligned table per query, then the status line."""
    out: list[str] = []
    for table in tables:
        out.append(f"== {table.title}")
        if not table.rows:
            out.append("(no results yet)")
            out.append("")
            continue
        widths = [
            max(len(column), *(len(row[i]) for row in table.rows))
            for i, column in enumerate(table.columns)
        ]
        for line in [table.columns, *table.rows]:
            cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            out.append("  ".join(cells).rstrip())
        out.append("")
    out.append(status)
    return "\n".join(out) + "\n"


def render_rich(tables: list[Table], status: str) -> Group:
    """The snapshot as rich tables for a terminal."""
    from rich.console import Group
    from rich.table import Table as RichTable
    from rich.text import Text

    parts: list[RenderableType] = []
    for table in tables:
        rich_table = RichTable(title=table.title, title_justify="left", expand=False)
        for column in table.columns:
            rich_table.add_column(column, justify="left")
        for row in table.rows:
            rich_table.add_row(*row)
        if not table.rows:
            rich_table.add_row(*(["(no results yet)"] + [""] * (len(table.columns) - 1)))
        parts.append(rich_table)
    parts.append(Text(status, style="bold"))
    return Group(*parts)


class ResultWatcher:
    """Reads the result topics (and the events topic's size) into a `ResultState`."""

    def __init__(self, settings: Settings, queries: list[str]) -> None:
        """Assign every partition of the queries' result topics from the beginning."""
        self.settings = settings
        self.queries = queries
        self.state = ResultState()
        self.consumer = Consumer(
            settings.kafka_client_config()
            | {
                "group.id": "hhar-watch",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "log_level": 3,
            }
        )
        self.topic_query = {settings.result_topic(q): q for q in queries}
        self._assigned: set[str] = set()
        self._rate_sample: tuple[float, int] | None = None
        self.events_per_second: float | None = None

    def _assign_new_topics(self) -> None:
        try:
            metadata = self.consumer.list_topics(timeout=10)
        except KafkaException as error:
            msg = f"cannot reach Kafka at {self.settings.bootstrap}: {error.args[0].str()}"
            raise BrokerError(msg) from None
        partitions = []
        for topic in self.topic_query:
            if topic in metadata.topics and topic not in self._assigned:
                self._assigned.add(topic)
                partitions += [
                    TopicPartition(topic, partition, OFFSET_BEGINNING)
                    for partition in metadata.topics[topic].partitions
                ]
        if partitions:
            self.consumer.incremental_assign(partitions)

    def _caught_up(self) -> bool:
        for tp in self.consumer.assignment():
            try:
                _, high = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            except KafkaException:
                return False
            position = self.consumer.position([tp])[0].offset
            if high > 0 and (position < 0 or position < high):
                return False
        return True

    def poll(self, seconds: float) -> None:
        """Fold in what arrives within `seconds`."""
        self._assign_new_topics()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = self.consumer.poll(min(0.2, max(deadline - time.monotonic(), 0)))
            if message is not None and not message.error() and (topic := message.topic()):
                self.state.apply(self.topic_query[topic], message.key(), message.value())

    def read_to_end(self, timeout: float = 30.0) -> None:
        """Read every assigned topic up to its current end."""
        self._assign_new_topics()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(0.5)
            if self._caught_up():
                return
        logger.warning("result topics not read to the end within %.0f s", timeout)

    def events_in_topic(self) -> int | None:
        """The events topic's end offsets, summed: its messages (and transaction markers)."""
        try:
            metadata = self.consumer.list_topics(self.settings.topic, timeout=10)
        except KafkaException:
            return None
        topic = metadata.topics.get(self.settings.topic)
        if topic is None or topic.error is not None:
            return None
        total = 0
        for partition in topic.partitions:
            try:
                _, high = self.consumer.get_watermark_offsets(
                    TopicPartition(self.settings.topic, partition), timeout=5, cached=False
                )
            except KafkaException:
                # A topic just created (or a leader moving) has no answer yet: say nothing.
                return None
            total += high
        now = time.monotonic()
        if self._rate_sample is not None and now > self._rate_sample[0]:
            self.events_per_second = (total - self._rate_sample[1]) / (now - self._rate_sample[0])
        self._rate_sample = (now, total)
        return total

    def status_line(self, with_rate: bool) -> str:
        """Events in, last batch, and how far the processor lags behind the events topic."""
        events = self.events_in_topic()
        totals = self.state.records("total_count")
        counted = totals[0].count if totals else 0
        bad = len(self.state.records("bad_records"))
        parts = [f"events topic {self.settings.topic}: "
                 + ("no answer yet" if events is None else f"offset {events}")]
        if with_rate and self.events_per_second is not None:
            parts.append(f"in {self.events_per_second:,.0f} ev/s")
        batch = self.state.last_batch()
        parts.append(f"last batch {'-' if batch is None else batch}")
        parts.append(f"counted {counted} + {bad} bad")
        if events is not None:
            # Offsets include transaction markers: an upper bound of the unprocessed events.
            parts.append(f"lag <= {max(events - counted - bad, 0)}")
        return " | ".join(parts)

    def close(self) -> None:
        """Leave the topics."""
        self.consumer.close()


def register(subparsers: Commands) -> None:
    """Add the `watch` command."""
    parser = subparsers.add_parser(
        "watch",
        help="live view of the result topics (current state per key)",
        description="Show the processor's results: one table per query, refreshed as updates "
        "arrive. Without a terminal it prints plain snapshots every --interval seconds.",
    )
    add_setting(parser, "--bootstrap", field="bootstrap")
    add_setting(parser, "--topic", field="topic")
    add_setting(parser, "--results-prefix", field="results_prefix")
    parser.add_argument(
        "--query", action="append", choices=WATCHED_QUERIES, metavar="NAME",
        help=f"a query to show (repeatable; default: all of {', '.join(WATCHED_QUERIES)})",
    )
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between snapshots (default 2)")
    parser.add_argument("--once", action="store_true",
                        help="read everything published so far, print one snapshot, exit")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: until Ctrl+C)")
    parser.set_defaults(func=_watch)


def _watch(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.interval <= 0:
        msg = "--interval must be positive"
        raise ConfigError(msg)
    queries = args.query or list(WATCHED_QUERIES)
    check_broker(settings)  # one line for an unreachable broker or refused credentials
    watcher = ResultWatcher(settings, queries)
    try:
        if args.once:
            watcher.read_to_end()
            sys.stdout.write(render_plain(build_tables(watcher.state, queries),
                                          watcher.status_line(with_rate=False)))
            return 0
        deadline = None if args.duration is None else time.monotonic() + args.duration
        if sys.stdout.isatty():
            _watch_live(watcher, queries, args.interval, deadline)
        else:
            while deadline is None or time.monotonic() < deadline:
                watcher.poll(args.interval)
                sys.stdout.write(render_plain(build_tables(watcher.state, queries),
                                              watcher.status_line(with_rate=True)))
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.close()
    return 0


def _watch_live(
    watcher: ResultWatcher, queries: list[str], interval: float, deadline: float | None
) -> None:
    from rich.live import Live

    with Live(auto_refresh=False, screen=False) as live:
        while deadline is None or time.monotonic() < deadline:
            watcher.poll(interval)
            tables = build_tables(watcher.state, queries)
            live.update(render_rich(tables, watcher.status_line(with_rate=True)), refresh=True)
