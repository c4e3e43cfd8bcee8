"""The dashboard's feed: a thread that reads Kafka and the processor's status into page content.

It folds result records in as they arrive (`results.ResultReader`), counts the producer's dead
letters, samples the pipeline's figures once a second and keeps the page's content (`panels`)
as JSON, with a version number. Whoever waits for news registers a callback (`subscribe`): it
is called, from the feed's thread, after every new version. An unreachable broker, missing
topics, records of the wrong shape or a missing status file become words on the page, never an
exception out of the thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from plotly.utils import PlotlyJSONEncoder

from ...errors import BrokerError, HharError
from ...processor.catalogue import CATALOGUE
from ...processor.status import read_status
from ...producer.routing import HEADER_ERROR_REASON, HEADER_SOURCE_FILE, HEADER_SOURCE_LINE
from ...settings import Settings
from ..results import PipelineFigures, ResultReader
from .panels import DeadLetter, Observation, ThroughputSample, page, table_page

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
"""Longest wait for result records before the page is brought up to date."""
PUBLISH_GAP = 0.5
"""Least seconds between two versions of the page while records keep arriving."""
SAMPLE_SECONDS = 1.0
"""Seconds between samples of the pipeline's figures, the status file and the dead letters."""
RETRY_SECONDS = 2.0
"""Seconds between tries while the broker does not answer."""
BROKER_TIMEOUT = 2.0
"""Seconds a metadata request may take before the broker counts as unreachable."""
THROUGHPUT_SAMPLES = 300
"""Samples of the throughput chart (five minutes)."""
LATEST_DEAD_LETTERS = 5
_BATCH = 1000


class DeadLetters:
    """Counts the dead-letter topic's messages and keeps the latest ones' origin and reason."""

    def __init__(self, settings: Settings) -> None:
        """A consumer of its own on `settings.dead_letter_topic` (committed records only)."""
        self.topic = settings.dead_letter_topic
        self.count: int | None = None
        """None until the topic exists."""
        self.latest: deque[DeadLetter] = deque(maxlen=LATEST_DEAD_LETTERS)
        self.consumer = Consumer(
            settings.kafka_client_config()
            | {
                "group.id": "hhar-dashboard-dead-letters",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "log_level": 3,
            }
        )

    def read(self, topics: set[str]) -> None:
        """Assign the topic once it is among `topics`, then fold in what has arrived."""
        if self.count is None:
            if self.topic not in topics:
                return
            try:
                metadata = self.consumer.list_topics(self.topic, timeout=BROKER_TIMEOUT)
            except KafkaException:
                return
            partitions = metadata.topics[self.topic].partitions
            self.consumer.assign(
                [
                    TopicPartition(self.topic, partition, OFFSET_BEGINNING)
                    for partition in partitions
                ]
            )
            self.count = 0
        while True:
            messages = self.consumer.consume(_BATCH, timeout=0)
            for message in messages:
                if not message.error():
                    headers = message.headers() or []
                    self._fold(headers.items() if isinstance(headers, dict) else headers)
            if len(messages) < _BATCH:
                return

    def _fold(self, header_list: Iterable[tuple[str, str | bytes | None]]) -> None:
        headers = {
            name: value if isinstance(value, str) else (value or b"").decode(errors="replace")
            for name, value in header_list
        }
        source = headers.get(HEADER_SOURCE_FILE, "?")
        if HEADER_SOURCE_LINE in headers:
            source += f":{headers[HEADER_SOURCE_LINE]}"
        self.count = (self.count or 0) + 1
        self.latest.append(DeadLetter(source, headers.get(HEADER_ERROR_REASON, "-")))

    def close(self) -> None:
        """Leave the topic."""
        self.consumer.close()


@dataclass(frozen=True)
class Health:
    """What the feed knew when it last published the page (the dashboard's metrics)."""

    kafka_up: bool
    """The broker answered the feed's last look."""
    events: int | None
    """Events in the events topic (None: not known)."""
    dead_letters: int | None
    """Messages in the dead-letter topic (None: not known)."""
    invalid_results: int
    """Result records set aside: not JSON, not a result record, or another query's."""
    updates: int
    """Versions of the page published."""


class Feed:
    """Keeps the page's content current in a thread of its own."""

    def __init__(self, settings: Settings) -> None:
        """Read the results of every query of the catalogue (and every named query the
        processor publishes), for `settings`' topics."""
        self.settings = settings
        self.reader = ResultReader(
            settings,
            CATALOGUE,
            group="hhar-dashboard",
            broker_timeout=BROKER_TIMEOUT,
            follow_named=True,
        )
        self.dead_letters = DeadLetters(settings)
        self.throughput: deque[ThroughputSample] = deque(maxlen=THROUGHPUT_SAMPLES)
        self._lock = threading.Lock()
        self._results = threading.Lock()
        """Held while the results are read or changed (pages of tables are read by the
        server's threads)."""
        self._version = 0
        self._content = ""
        self._subscribers: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-feed", daemon=True)
        self._broker_error: str | None = None
        self._caught_up = False
        self._figures: PipelineFigures | None = None
        self._status: dict[str, Any] | None = None
        self._status_problem: str | None = None
        self._health = Health(False, None, None, 0, 0)
        self._publish()

    # --- for the server ---------------------------------------------------------------------
    def latest(self) -> tuple[int, str]:
        """The current version and the page's content as JSON."""
        with self._lock:
            return self._version, self._content

    def health(self) -> Health:
        """What the feed knew when it last published the page."""
        with self._lock:
            return self._health

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the feed's thread) after every new version."""
        self._subscribers.append(callback)

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and close the consumers."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.reader.close()
        self.dead_letters.close()

    # --- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        next_sample = 0.0
        published = 0.0
        pending = False
        while not self._stop.is_set():
            try:
                changed = self._step(time.monotonic() >= next_sample)
            except Exception as error:  # the feed outlives any surprise: it says so, goes on
                logger.error("the dashboard's feed failed: %s; trying again", error)
                logger.debug("the feed's failure", exc_info=True)
                self._stop.wait(RETRY_SECONDS)
                continue
            now = time.monotonic()
            if changed["sampled"]:
                next_sample = now + SAMPLE_SECONDS
            pending = pending or changed["records"]
            if changed["sampled"] or (pending and now - published >= PUBLISH_GAP):
                self._publish()
                published, pending = now, False
            if self._broker_error:
                self._stop.wait(RETRY_SECONDS)

    def _step(self, sample: bool) -> dict[str, bool]:
        """Read what arrived; with `sample`, also look for new topics and read the figures,
        the status and the dead letters."""
        try:
            if sample or self._broker_error is not None:
                self.reader.refresh_topics()
            with self._results:
                folded = self.reader.read_available(POLL_SECONDS)
        except BrokerError as error:
            news = self._broker_error != str(error)
            if self._broker_error is None:
                logger.warning("%s; retrying every %.0f s", error, RETRY_SECONDS)
            self._broker_error = str(error)
            self._figures = None
            self._read_status()
            return {"records": False, "sampled": news or sample}
        if self._broker_error is not None:
            logger.info("Kafka at %s answers again", self.settings.bootstrap)
            self._broker_error = None
            sample = True
        if sample:
            if not self._caught_up and self.reader.caught_up():
                # The results read so far were a backlog, not a rate: measure from here.
                self._caught_up = True
                self.reader.restart_rates()
            self._figures = figures = self.reader.figures()
            self.dead_letters.read(self.reader.topics)
            self._read_status()
            if self._caught_up:
                self.throughput.append(
                    (
                        dt.datetime.now(dt.UTC),
                        figures.events_per_second,
                        figures.processed_per_second,
                        figures.lag,
                    )
                )
        return {"records": folded > 0, "sampled": sample}

    def _read_status(self) -> None:
        try:
            self._status, self._status_problem = read_status(self.settings), None
        except HharError as error:
            self._status, self._status_problem = None, str(error)

    def observation(self) -> Observation:
        """What the feed knows now."""
        reader = self.reader
        known = self._broker_error is None and bool(reader.topics)
        return Observation(
            state=reader.state,
            figures=self._figures,
            broker_error=self._broker_error,
            events_topic=self.settings.topic,
            events_topic_exists=(self.settings.topic in reader.topics) if known else None,
            missing_queries=reader.missing_queries() if known else (),
            status=self._status,
            status_problem=self._status_problem,
            dead_letters=self.dead_letters.count,
            dead_letter_topic=self.dead_letters.topic,
            latest_dead_letters=list(reversed(self.dead_letters.latest)),
            throughput=list(self.throughput),
            query_names=list(reader.queries),
            named=dict(reader.named),
        )

    def table_page(self, query: str, first: int, search: str) -> str | None:
        """Another page of one query's table as JSON (`panels.table_page`); None for a query
        the page does not show."""
        if query not in self.reader.queries:
            return None
        with self._results:
            content = table_page(self.observation(), query, first, search)
        return json.dumps(content, separators=(",", ":"))

    def _publish(self) -> None:
        with self._results:
            content = json.dumps(
                page(self.observation(), dt.datetime.now(dt.UTC)),
                cls=PlotlyJSONEncoder,
                separators=(",", ":"),
            )
        health = Health(
            kafka_up=self._broker_error is None and self._figures is not None,
            events=self._figures.events if self._figures is not None else None,
            dead_letters=self.dead_letters.count,
            invalid_results=self.reader.state.invalid,
            updates=self._version + 1,
        )
        with self._lock:
            self._version += 1
            self._content = content
            self._health = health
        for callback in self._subscribers:
            callback()
