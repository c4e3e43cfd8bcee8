"""`hhar dashboard --metrics`: Prometheus metrics at /metrics on the dashboard's own port, of
what its page shows (a real broker, a real topic) and of the browsers following the page; no
/metrics unless asked."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Producer
from support.cli import HharProcess, hhar_env
from support.polling import poll_until
from support.prometheus import family_names, promtool_lint, sample_values, scrape

from hhar_stream.apps.dashboard.metrics import METRICS
from hhar_stream.daemons import free_port
from hhar_stream.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def start_dashboard(
    kafka: Settings, topic: str, folder: Path, *flags: str
) -> tuple[HharProcess, str]:
    port = free_port()
    dashboard = HharProcess(
        ["dashboard", "--port", str(port), "--topic", topic, *flags],
        hhar_env(kafka, ["bootstrap"], HHAR_CHECKPOINT=str(folder)),
        folder,
        "dashboard",
    )
    address = f"127.0.0.1:{port}"

    def up() -> bool:
        assert dashboard.running(), dashboard.stderr[-3000:]
        try:
            with urllib.request.urlopen(f"http://{address}/api/page", timeout=5):  # noqa: S310
                return True
        except OSError:
            return False

    poll_until(up, 60, "the dashboard answering", interval=0.2)
    return dashboard, address


def test_the_dashboard_serves_what_it_sees(kafka: Settings, topics, tmp_path: Path) -> None:
    topic = topics.create("dashboard-metrics")
    producer = Producer(kafka.kafka_client_config())
    for number in range(25):
        producer.produce(topic, value=b"{}", key=str(number))
    assert producer.flush(30) == 0
    dashboard, address = start_dashboard(kafka, topic, tmp_path, "--metrics")
    try:

        def figures() -> dict:
            return sample_values(scrape(address)[0])

        seen = poll_until(
            lambda: (
                (values := figures())[("hhar_dashboard_kafka_up", ())] == 1
                and values.get(("hhar_dashboard_topic_events", (("topic", topic),))) == 25
                and values
            ),
            60,
            "the dashboard's metrics showing the topic",
            interval=0.5,
        )
        assert seen[("hhar_dashboard_event_streams", ())] == 0
        assert seen[("hhar_dashboard_page_updates_total", ())] >= 1
        text = scrape(address)[0]
        assert {name for name in family_names(text) if name.startswith("hhar_")} == {
            spec.name for spec in METRICS
        }
        assert "process_cpu_seconds_total" in text
        assert promtool_lint(text) == ""
        # A browser following the page is one event stream while it stays.
        with urllib.request.urlopen(f"http://{address}/events", timeout=10) as stream:  # noqa: S310
            assert stream.readline().startswith(b"id: ")  # the first page event has come
            assert figures()[("hhar_dashboard_event_streams", ())] == 1
        poll_until(
            lambda: figures()[("hhar_dashboard_event_streams", ())] == 0,
            30,
            "the stream counted as gone",
            interval=0.2,
        )
    finally:
        dashboard.process.terminate()
        assert dashboard.wait(30) == 0, dashboard.stderr[-3000:]


def test_no_metrics_unless_asked(kafka: Settings, topics, tmp_path: Path) -> None:
    dashboard, address = start_dashboard(kafka, topics.name("none"), tmp_path)
    try:
        with pytest.raises(urllib.error.HTTPError) as error:
            scrape(address)
        assert error.value.code == 404
    finally:
        dashboard.process.terminate()
        assert dashboard.wait(30) == 0, dashboard.stderr[-3000:]
