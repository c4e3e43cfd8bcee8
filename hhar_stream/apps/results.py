"""Reading the processor's results back from Kafka, for `hhar watch` and `hhar dashboard`.

The result topics are compacted, so their current state is the last value per key: a
`ResultReader` reads each topic from the beginning and folds every record into a `ResultState`
(a null value deletes its key, as compaction does). It also sizes the events topic, so that
both views can say how many events came in, how fast, and how far the processor lags behind
(`PipelineFigures`). The processor's named queries are learned from its definitions topic
(`processor.named`), read by the same consumer: their records' models, and (when the reader
follows them) their result topics, picked up as they are defined.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from ..errors import BrokerError
from ..processor.catalogue import BAD_RECORDS, CATALOGUE
from ..rates import RateMeter
from ..schemas.queries import QueryDefinition
from ..schemas.results import RESULT_RECORDS, ResultRecord, parse_result_value
from ..settings import Settings

logger = logging.getLogger(__name__)

NEWEST_ROWS = 100_000
"""Records a query with a `newest` rule keeps at most (beyond its newest value's): a fleet's
windows hold tens of thousands of rows each."""


@dataclass
class ResultState:
    """The latest record per key of every result topic read, and what could not be read."""

    latest: dict[str, dict[bytes, ResultRecord]] = field(default_factory=dict)
    invalid: int = 0
    """Records set aside: not JSON, not a result record, or another query's record."""
    last_invalid: str | None = None
    """Why the last of them was set aside, and where it was."""
    named: dict[str, type[ResultRecord]] = field(default_factory=dict)
    """The record models of the named queries known."""
    newest: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Per query, (field, n): only the records of the n newest values of the field are kept
    (`catalogue.View.newest`: what the views can show)."""
    _keys_by_value: dict[str, dict[Any, set[bytes]]] = field(default_factory=dict)

    def apply(self, query: str, key: bytes | None, value: bytes | None) -> None:
        """Fold one record of `query`'s topic in (a null value deletes the key)."""
        rows = self.latest.setdefault(query, {})
        if value is None:
            rows.pop(key or b"", None)
            return
        try:
            # The topic's own model first: pydantic parses and checks the JSON in one go.
            model = self.named.get(query) or RESULT_RECORDS[query]
            record: ResultRecord = model.model_validate_json(value)
        except (KeyError, ValueError):
            try:  # not that model: say what it is (another query's record, not JSON, ...)
                record = parse_result_value(value, self.named)
            except ValueError as error:
                self._reject(query, str(error).splitlines()[0])
                return
        if record.query != query:
            self._reject(query, f"a record of query {record.query}")
            return
        rows[key or b""] = record
        if query in self.newest:
            self._forget_the_oldest(query, key or b"", record)

    def _forget_the_oldest(self, query: str, key: bytes, record: ResultRecord) -> None:
        """Keep the records of the newest values of the query's `newest` field only, and
        fewer while they are more than `NEWEST_ROWS` (the newest value's records stay)."""
        name, kept = self.newest[query]
        keys = self._keys_by_value.setdefault(query, {})
        keys.setdefault(getattr(record, name), set()).add(key)
        rows = self.latest[query]
        while len(keys) > kept or (len(keys) > 1 and len(rows) > NEWEST_ROWS):
            for old in keys.pop(min(keys)):
                rows.pop(old, None)

    def _reject(self, query: str, reason: str) -> None:
        self.invalid += 1
        self.last_invalid = f"{query}: {reason}"

    def records(self, query: str) -> list[Any]:
        """The current rows of one query."""
        return list(self.latest.get(query, {}).values())

    def last_batch(self) -> int | None:
        """The newest batch id seen in any result."""
        ids = [r.batch_id for rows in self.latest.values() for r in rows.values()]
        return max(ids) if ids else None


@dataclass(frozen=True)
class PipelineFigures:
    """How the pipeline keeps up, from the events topic and the results."""

    events: int | None
    """The events topic's end offsets, summed (None: no answer, or no topic yet)."""
    events_per_second: float | None
    """Events arriving in the topic per second, lately."""
    processed_per_second: float | None
    """Events counted in the results (valid or bad) per second, lately."""
    counted: int
    """Valid events in ``total_count``."""
    bad: int
    """Messages in ``bad_records``."""
    last_batch: int | None
    """The newest micro-batch that wrote a result."""

    @property
    def lag(self) -> int | None:
        """Events not in the results yet: an upper bound, since offsets include the markers
        of the producer's transactions."""
        return None if self.events is None else max(self.events - self.counted - self.bad, 0)


class ResultReader:
    """Reads the result topics of `queries` (and sizes the events topic) into a `ResultState`.

    Topics that do not exist yet are picked up when they appear.
    """

    def __init__(
        self,
        settings: Settings,
        queries: Iterable[str],
        group: str = "hhar-watch",
        broker_timeout: float = 10.0,
        follow_named: bool = False,
    ) -> None:
        """A consumer of its own (`group`, committing nothing); `broker_timeout` bounds each
        metadata request; with `follow_named`, every named query is read as it is defined
        (else only those of `queries`)."""
        self.settings = settings
        self.queries = list(queries)
        self.state = ResultState(
            newest={
                query: rule
                for query in self.queries
                if query in CATALOGUE and (rule := CATALOGUE[query].view.newest) is not None
            }
        )
        self.broker_timeout = broker_timeout
        config = settings.kafka_client_config() | {
            "group.id": group,
            "enable.auto.commit": False,
            "log_level": 3,
        }
        self.consumer = Consumer(config | {"enable.partition.eof": True})
        # Metadata and offsets are asked on a connection of their own: a broker answers one
        # request of a connection at a time, and the reading consumer's fetches wait there
        # for new records (up to fetch.wait.max.ms).
        self.probe = Consumer(config)
        self.topic_query = {settings.result_topic(q): q for q in self.queries}
        self.definitions_topic = settings.query_definitions_topic
        self.follow_named = follow_named
        self.named: dict[str, QueryDefinition] = {}
        """The named queries the processor runs (from its definitions topic)."""
        self.topics: set[str] = set()
        """The broker's topics at the last look."""
        self._assigned: set[str] = set()
        self._arrivals = RateMeter()
        self._processed = RateMeter()

    def refresh_topics(self) -> None:
        """Look at the broker's topics; start reading the result topics that appeared.

        Raises:
            BrokerError: when the broker does not answer within the broker timeout.
        """
        try:
            metadata = self.probe.list_topics(timeout=self.broker_timeout)
        except KafkaException as error:
            msg = f"cannot reach Kafka at {self.settings.bootstrap}: {error.args[0].str()}"
            raise BrokerError(msg) from None
        self.topics = set(metadata.topics)
        partitions = []
        for topic in self._readable():
            if topic in metadata.topics and topic not in self._assigned:
                self._assigned.add(topic)
                partitions += [
                    TopicPartition(topic, partition, OFFSET_BEGINNING)
                    for partition in metadata.topics[topic].partitions
                ]
        if partitions:
            self.consumer.incremental_assign(partitions)

    def _readable(self) -> list[str]:
        """The topics to read: the definitions, then the results of the queries whose records
        can be read (a named query's once its definition is known)."""
        known = [
            topic
            for topic, query in self.topic_query.items()
            if query in CATALOGUE or query in self.named
        ]
        return [self.definitions_topic, *known]

    def missing_queries(self) -> list[str]:
        """The queries whose result topic did not exist at the last look."""
        return [query for topic, query in self.topic_query.items() if topic not in self._assigned]

    def caught_up(self) -> bool:
        """True when every assigned partition has been read to its current end (and every
        readable topic that exists is assigned)."""
        if any(t in self.topics and t not in self._assigned for t in self._readable()):
            return False
        for tp in self.consumer.assignment():
            try:
                _, high = self.probe.get_watermark_offsets(tp, timeout=5, cached=False)
            except KafkaException:
                return False
            position = self.consumer.position([tp])[0].offset
            if high > 0 and (position < 0 or position < high):
                return False
        return True

    def poll(self, seconds: float) -> int:
        """Fold in what arrives within `seconds`; the number of records folded in.

        Raises:
            BrokerError: when the broker does not answer the look for new topics.
        """
        self.refresh_topics()
        deadline = time.monotonic() + seconds
        folded = 0
        while time.monotonic() < deadline:
            message = self.consumer.poll(min(0.2, max(deadline - time.monotonic(), 0)))
            folded += self._fold(message)
        return folded

    def read_available(self, wait: float) -> int:
        """Wait up to `wait` seconds for a record, then fold in every record already here (no
        look for new topics: `refresh_topics`); the number folded in."""
        folded = 0
        message = self.consumer.poll(wait)
        while message is not None:
            folded += self._fold(message)
            message = self.consumer.poll(0)
        return folded

    def _fold(self, message: Message | None) -> bool:
        """Fold a result record (or a definition) into the state; whether it was one."""
        if message is None or message.error() or (topic := message.topic()) is None:
            return False
        if topic == self.definitions_topic:
            self._define((message.key() or b"").decode(errors="replace"), message.value())
        else:
            self.state.apply(self.topic_query[topic], message.key(), message.value())
        return True

    def _define(self, name: str, value: bytes | None) -> None:
        """Learn (or forget, for a null value) the definition of named query `name`."""
        if value is None:  # the processor no longer runs it
            self.named.pop(name, None)
            self.state.named.pop(name, None)
            self.state.latest.pop(name, None)
            if name in self.queries and name not in CATALOGUE:
                self.queries.remove(name)
            return
        try:
            definition = QueryDefinition.model_validate_json(value)
        except ValueError as error:
            self.state.invalid += 1
            self.state.last_invalid = f"{self.definitions_topic}: {str(error).splitlines()[0]}"
            return
        if name in self.named and self.named[name].fingerprint != definition.fingerprint:
            self.state.latest.pop(name, None)  # another query under the same name
        self.named[name] = definition
        self.state.named[name] = definition.record_model()
        if name in self.queries or self.follow_named:
            if name not in self.queries:
                self.queries.append(name)
            self.topic_query[definition.topic] = name

    def read_to_end(self, timeout: float = 30.0) -> None:
        """Read every assigned topic up to its current end."""
        self.refresh_topics()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(0.5)
            if self.caught_up():
                return
        logger.warning("result topics not read to the end within %.0f s", timeout)

    def events_in_topic(self) -> int | None:
        """The events topic's end offsets, summed: its messages (and transaction markers)."""
        try:
            metadata = self.probe.list_topics(self.settings.topic, timeout=self.broker_timeout)
        except KafkaException:
            return None
        topic = metadata.topics.get(self.settings.topic)
        if topic is None or topic.error is not None:
            return None
        total = 0
        for partition in topic.partitions:
            try:
                _, high = self.probe.get_watermark_offsets(
                    TopicPartition(self.settings.topic, partition), timeout=5, cached=False
                )
            except KafkaException:
                # A topic just created (or a leader moving) has no answer yet: say nothing.
                return None
            total += high
        return total

    def restart_rates(self) -> None:
        """Measure the rates from now on (after reading a backlog, which is no rate)."""
        self._arrivals = RateMeter()
        self._processed = RateMeter()

    def figures(self) -> PipelineFigures:
        """The events topic's size now, the rates lately and the results' counts."""
        events = self.events_in_topic()
        totals = self.state.records("total_count")
        counted = totals[0].count if totals else 0
        bad = len(self.state.records(BAD_RECORDS))
        now = time.monotonic()
        if events is not None:
            self._arrivals.add(events, now)
        self._processed.add(counted + bad, now)
        return PipelineFigures(
            events, self._arrivals.rate, self._processed.rate, counted, bad, self.state.last_batch()
        )

    def close(self) -> None:
        """Leave the topics."""
        self.consumer.close()
        self.probe.close()
