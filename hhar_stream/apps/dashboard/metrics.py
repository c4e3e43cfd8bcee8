"""The dashboard's Prometheus metrics (`hhar dashboard --metrics`: ``/metrics`` on its port).

They say what the dashboard itself sees and serves: whether it reaches Kafka, the topics' sizes
as its page shows them, the result records it had to set aside, its page's updates and the
browsers that follow them. The figures are those of the feed's last published page
(`Feed.health`), read when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import Metric

from ...metrics import MetricSpec, collect_specs
from ...settings import Settings
from .feed import Feed

KAFKA_UP = MetricSpec(
    "hhar_dashboard_kafka_up", "gauge", "1 when the dashboard's last look reached Kafka, else 0"
)
TOPIC_EVENTS = MetricSpec(
    "hhar_dashboard_topic_events",
    "gauge",
    "events in the events topic as the page shows them (end offsets, summed)",
    ("topic",),
)
DEAD_LETTERS = MetricSpec(
    "hhar_dashboard_dead_letters",
    "gauge",
    "messages in the dead-letter topic as the page shows them",
    ("topic",),
)
INVALID_RESULTS = MetricSpec(
    "hhar_dashboard_invalid_result_records_total",
    "counter",
    "result records the page set aside: not JSON, not a result record, or another query's",
)
PAGE_UPDATES = MetricSpec(
    "hhar_dashboard_page_updates_total", "counter", "versions of the page pushed to browsers"
)
EVENT_STREAMS = MetricSpec(
    "hhar_dashboard_event_streams", "gauge", "browsers following the page's updates now"
)
METRICS = (KAFKA_UP, TOPIC_EVENTS, DEAD_LETTERS, INVALID_RESULTS, PAGE_UPDATES, EVENT_STREAMS)
"""Every metric of the dashboard's endpoint (besides the process's own)."""


class DashboardMetrics:
    """The collector of the dashboard's metrics."""

    def __init__(self, settings: Settings, feed: Feed, streams: Callable[[], int]) -> None:
        """Metrics of `feed` (of `settings`' topics); `streams` says how many browsers follow
        the page now."""
        self.topic = settings.topic
        self.dead_letter_topic = settings.dead_letter_topic
        self.feed = feed
        self.streams = streams

    def describe(self) -> list[Metric]:
        """The families this collector yields (for the registry)."""
        return collect_specs(METRICS)

    def collect(self) -> Iterator[Metric]:
        """The metrics of the feed's last page."""
        health = self.feed.health()
        for spec, labels, value in (
            (KAFKA_UP, [], 1 if health.kafka_up else 0),
            (TOPIC_EVENTS, [self.topic], health.events),
            (DEAD_LETTERS, [self.dead_letter_topic], health.dead_letters),
            (INVALID_RESULTS, [], health.invalid_results),
            (PAGE_UPDATES, [], health.updates),
            (EVENT_STREAMS, [], self.streams()),
        ):
            family = spec.family()
            if value is not None:
                family.add_metric(labels, value)
            yield family
