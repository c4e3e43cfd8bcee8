"""Prometheus metrics: how the producer, the processor and the dashboard declare and serve them.

Each part declares its metrics once, as `MetricSpec`s (name, type, labels, meaning): its
collector builds them from these, README's metrics table is generated from them
(`metrics_table`), and the tests hold the endpoints and the Grafana dashboard to them. Names
follow Prometheus' conventions: ``hhar_<part>_...``, counters end in ``_total``, units are
base units named last (``_seconds``, ``_bytes``).

`serve_metrics` serves a part's collector, beside the process's own figures (CPU, memory,
garbage collection), at ``http://<metrics_host>:<port>/metrics``: prometheus-client's WSGI app
on its threading WSGI server (what its ``start_http_server`` runs), started before any other
work so that a port already taken is one error line at once. The dashboard serves the same
text on its own port (`exposition`).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder
from prometheus_client.registry import Collector

from .errors import ConfigError
from .settings import Settings, env_var

logger = logging.getLogger(__name__)

MetricKind = Literal["counter", "gauge", "histogram"]
_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name as exposed (a counter's ends in ``_total``), type, meaning and
    label names; a histogram's bucket bounds in its unit."""

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    def sample_names(self) -> tuple[str, ...]:
        """The names its samples carry (a histogram's ``_bucket``, ``_sum``, ``_count``)."""
        if self.kind == "histogram":
            return tuple(f"{self.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        return (self.name,)

    def family(self) -> CounterMetricFamily | GaugeMetricFamily:
        """An empty family of this counter or gauge, for a collector to add samples to."""
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.help, labels=self.labels)
        if self.kind == "gauge":
            return GaugeMetricFamily(self.name, self.help, labels=self.labels)
        msg = f"{self.name} is a histogram: make it with `instrument`"
        raise ValueError(msg)

    def instrument(self) -> Counter | Gauge | Histogram:
        """A prometheus-client metric of this spec, in no registry (its owner collects it)."""
        if self.kind == "histogram":
            return Histogram(self.name, self.help, self.labels, registry=None, buckets=self.buckets)
        if self.kind == "counter":
            return Counter(self.name, self.help, self.labels, registry=None)
        return Gauge(self.name, self.help, self.labels, registry=None)


def metrics_table(parts: Sequence[Sequence[MetricSpec]]) -> str:
    """README's metrics table: one row per metric of every part."""
    lines = ["| metric | type | labels | meaning |", "| --- | --- | --- | --- |"]
    for specs in parts:
        for spec in specs:
            labels = ", ".join(f"`{label}`" for label in spec.labels) or "-"
            lines.append(f"| `{spec.name}` | {spec.kind} | {labels} | {spec.help} |")
    return "\n".join(lines) + "\n"


def process_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry of `collectors` and the process's own figures (``process_*``: CPU, memory,
    open files; ``python_*``: the interpreter and its garbage collector). Counters carry no
    ``_created`` series."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR, *collectors):
        registry.register(collector)
    return registry


def port_taken(port: int, host: str, flag: str, field: str) -> ConfigError:
    """The error of a port something else listens on, naming the flag and variable to change."""
    msg = (
        f"port {port} on {host} is already in use: stop what listens there or choose "
        f"another {flag} ({env_var(field)})"
    )
    return ConfigError(msg)


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry's metrics in the format a scraper's Accept header asks for (Prometheus'
    text format by default, OpenMetrics on request), and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


class _QuietHandler(WSGIRequestHandler):
    """Requests are not logged (a scrape every few seconds would fill the log)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Log nothing."""


class _Response:
    """A response body that tells when the server has written it all (WSGI calls close)."""

    def __init__(self, body: Iterable[bytes], written: Callable[[], None]) -> None:
        self._body = body
        self._written = written

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        self._written()


class MetricsEndpoint:
    """A registry served over HTTP in a thread of its own; it knows when it was scraped."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        """Listen on host:port now.

        Raises:
            OSError: when the address cannot be bound (taken, unknown host, no permission).
        """
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        server_class = type("MetricsServer", (ThreadingWSGIServer,), {"address_family": family})
        self._app = make_wsgi_app(registry)
        self._changed = threading.Condition()
        self._started = 0
        """Scrapes begun (each gets this number)."""
        self._written = 0
        """The number of the latest scrape whose response was written in full."""
        self._server: WSGIServer = make_server(
            str(address[0]), port, self._serve, server_class, handler_class=_QuietHandler
        )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-endpoint", daemon=True
        )
        self._thread.start()

    def _serve(self, environ: dict[str, Any], start_response: Any) -> _Response:
        with self._changed:
            self._started += 1
            number = self._started
        body = self._app(environ, start_response)
        return _Response(body, lambda: self._scraped(number))

    def _scraped(self, number: int) -> None:
        with self._changed:
            self._written = max(self._written, number)
            self._changed.notify_all()

    @property
    def scrapes(self) -> int:
        """Requests answered so far."""
        with self._changed:
            return self._written

    def wait_for_last_scrape(self, timeout: float, stop: threading.Event) -> bool:
        """Give the final figures time to be scraped: if anything has scraped the endpoint
        before, wait until a scrape that began after this call has been answered, at most
        `timeout` seconds or until `stop` is set. True when one was."""
        with self._changed:
            if self._written == 0 or timeout <= 0:
                return False
            begun = self._started
        logger.info("waiting up to %.0f s for the last scrape of the metrics", timeout)
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._written <= begun:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or stop.is_set():
                    return False
                self._changed.wait(min(remaining, _POLL_SECONDS))
        return True

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def serve_metrics(
    settings: Settings, field: str, flag: str, *collectors: Collector
) -> MetricsEndpoint | None:
    """Serve `collectors` (and the process's figures) on the port of setting `field` (None,
    and nothing served, while it is unset), at `settings.metrics_host`.

    Raises:
        ConfigError: when the port is taken or the address cannot be used.
    """
    port: int | None = getattr(settings, field)
    if port is None:
        return None
    host = settings.metrics_host
    try:
        endpoint = MetricsEndpoint(process_registry(*collectors), host, port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise port_taken(port, host, flag, field) from None
        reason = error.strerror or str(error)
        msg = (
            f"cannot serve metrics on {host}:{port}: {reason} (choose another {flag} "
            f"({env_var(field)}) or {env_var('metrics_host')})"
        )
        raise ConfigError(msg) from None
    logger.info("metrics at http://%s:%d/metrics", host, port)
    return endpoint


def collect_specs(specs: Iterable[MetricSpec]) -> list[Metric]:
    """Empty families of `specs` (a collector's ``describe``: its names, no samples)."""
    families: list[Metric] = []
    for spec in specs:
        if spec.kind == "histogram":
            families += spec.instrument().describe()
        else:
            families.append(spec.family())
    return families
