"""The metrics endpoint every part shares (`hhar_stream.metrics`): served over real HTTP, a
taken or bad address refused in one error, the last scrape waited for, the README table."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from support.ports import taken_port
from support.prometheus import promtool_lint, sample_values, scrape

from hhar_stream.daemons import free_port
from hhar_stream.errors import ConfigError
from hhar_stream.metrics import (
    MetricsEndpoint,
    MetricSpec,
    exposition,
    metrics_table,
    process_registry,
    serve_metrics,
)
from hhar_stream.settings import Settings

READINGS = MetricSpec("hhar_test_readings", "gauge", "a test's readings", ("probe",))


class Readings:
    """A collector of one gauge the test sets."""

    def __init__(self) -> None:
        self.value = 0.0

    def describe(self) -> list[Metric]:
        return [READINGS.family()]

    def collect(self) -> Iterator[Metric]:
        family: GaugeMetricFamily = READINGS.family()  # type: ignore[assignment]
        family.add_metric(["a"], self.value)
        yield family


def scrape_port(port: int, accept: str | None = None) -> tuple[str, str]:
    return scrape(f"127.0.0.1:{port}", accept)


def samples(text: str) -> dict[str, float]:
    """Sample name with labels -> value."""
    return {f"{name}{list(labels)}": value for (name, labels), value in sample_values(text).items()}


@pytest.fixture
def readings() -> Iterator[tuple[Readings, MetricsEndpoint]]:
    collector = Readings()
    endpoint = MetricsEndpoint(process_registry(collector), "127.0.0.1", free_port())
    try:
        yield collector, endpoint
    finally:
        endpoint.close()


def test_the_endpoint_serves_the_collector_and_the_process(readings) -> None:
    collector, endpoint = readings
    collector.value = 42.0
    text, content_type = scrape_port(endpoint.port)
    assert content_type.startswith("text/plain; version=0.0.4")
    values = samples(text)
    assert values["hhar_test_readings[('probe', 'a')]"] == 42.0
    assert "process_resident_memory_bytes[]" in values
    assert "python_info" in text
    assert "_created" not in text
    assert endpoint.scrapes == 1
    assert promtool_lint(text) == ""
    openmetrics, content_type = scrape_port(endpoint.port, "application/openmetrics-text")
    assert content_type.startswith("application/openmetrics-text")
    assert openmetrics.rstrip().endswith("# EOF")


def test_a_never_scraped_endpoint_does_not_wait(readings) -> None:
    _, endpoint = readings
    started = time.monotonic()
    assert not endpoint.wait_for_last_scrape(30, threading.Event())
    assert time.monotonic() - started < 1


def test_the_last_scrape_is_one_that_began_after_the_final_figures(readings) -> None:
    collector, endpoint = readings
    scrape_port(endpoint.port)
    collector.value = 7.0  # the final figure
    seen: list[str] = []
    scraper = threading.Timer(0.5, lambda: seen.append(scrape_port(endpoint.port)[0]))
    scraper.start()
    assert endpoint.wait_for_last_scrape(30, threading.Event())
    scraper.join()
    assert samples(seen[0])["hhar_test_readings[('probe', 'a')]"] == 7.0


def test_waiting_for_the_last_scrape_ends_on_a_stop_or_in_time(readings) -> None:
    _, endpoint = readings
    scrape_port(endpoint.port)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    assert not endpoint.wait_for_last_scrape(30, stop)
    assert time.monotonic() - started < 5
    started = time.monotonic()
    assert not endpoint.wait_for_last_scrape(0.5, threading.Event())
    assert 0.4 < time.monotonic() - started < 5


def test_metrics_are_off_while_the_port_is_unset() -> None:
    assert serve_metrics(Settings(), "producer_metrics_port", "--metrics-port") is None


def test_a_taken_port_is_one_config_error() -> None:
    with taken_port() as port:
        settings = Settings(producer_metrics_port=port)
        with pytest.raises(ConfigError) as error:
            serve_metrics(settings, "producer_metrics_port", "--metrics-port", Readings())
    assert str(error.value) == (
        f"port {port} on 127.0.0.1 is already in use: stop what listens there or choose "
        f"another --metrics-port (HHAR_PRODUCER_METRICS_PORT)"
    )
    assert error.value.exit_code == 2


def test_an_address_that_cannot_be_used_is_one_config_error() -> None:
    settings = Settings(processor_metrics_port=free_port(), metrics_host="192.0.2.1")
    with pytest.raises(ConfigError) as error:
        serve_metrics(settings, "processor_metrics_port", "--metrics-port")
    message = str(error.value)
    assert message.startswith(
        f"cannot serve metrics on 192.0.2.1:{settings.processor_metrics_port}"
    )
    assert message.endswith(
        "(choose another --metrics-port (HHAR_PROCESSOR_METRICS_PORT) or HHAR_METRICS_HOST)"
    )
    assert "\n" not in message


def test_exposition_follows_the_accept_header() -> None:
    registry = process_registry(Readings())
    text, content_type = exposition(registry, None)
    assert content_type.startswith("text/plain") and b"hhar_test_readings" in text
    _, content_type = exposition(registry, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")


def test_the_table_shows_each_metric_in_one_row() -> None:
    counter = MetricSpec("hhar_x_things_total", "counter", "things", ("topic", "reason"))
    assert metrics_table([[counter], [READINGS]]) == (
        "| metric | type | labels | meaning |\n"
        "| --- | --- | --- | --- |\n"
        "| `hhar_x_things_total` | counter | `topic`, `reason` | things |\n"
        "| `hhar_test_readings` | gauge | `probe` | a test's readings |\n"
    )
