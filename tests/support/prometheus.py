"""What the metrics tests share: scraping an endpoint as Prometheus does, Prometheus' own lint
of what it serves (`promtool check metrics`), and a real Prometheus server (Debian's
``prometheus``) with a configuration and data folder of its own, asked through its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from hhar_stream.daemons import free_port, launch, stop_child

from .polling import poll_until


def scrape(address: str, accept: str | None = None) -> tuple[str, str]:
    """GET http://<address>/metrics: the body and its content type."""
    request = urllib.request.Request(f"http://{address}/metrics")  # noqa: S310
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.read().decode(), response.headers["Content-Type"]


def sample_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, of an exposition in Prometheus' text format."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def family_names(text: str) -> dict[str, str]:
    """Family name (a counter's with ``_total``) -> type, of an exposition."""
    names = {}
    for family in text_string_to_metric_families(text):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        names[name] = family.type
    return names


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: `make setup` installs Debian's prometheus")
    return found


def promtool(*args: str, text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``promtool ARGS`` (with `text` on its input)."""
    return subprocess.run(
        [_tool("promtool"), *args], input=text, capture_output=True, text=True, check=False
    )


def promtool_lint(text: str) -> str:
    """`promtool check metrics` of an exposition: its complaints ('' when none)."""
    result = promtool("check", "metrics", text=text)
    return (result.stdout + result.stderr).strip()


class PrometheusServer:
    """A real Prometheus scraping `targets` (job name -> host:port) every `interval`, with its
    configuration, data and log in `folder`; on a free port of 127.0.0.1."""

    def __init__(self, folder: Path, targets: dict[str, str], interval: str = "500ms") -> None:
        """Start it and wait until it is ready."""
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in targets.items()
            ],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.address = f"127.0.0.1:{free_port()}"
        self.log = folder / "prometheus.log"
        self.process = launch(
            [
                _tool("prometheus"),
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={self.address}",
            ],
            self.log,
        )
        poll_until(self._ready, 60, "Prometheus ready", interval=0.2)

    def _ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://{self.address}/-/ready", timeout=5):  # noqa: S310
                return True
        except OSError:
            return False

    def query(self, expression: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query: labels (without ``__name__``, ``job``, ``instance``) -> value."""
        url = f"http://{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            answer = json.load(response)
        assert answer["status"] == "success", answer
        result = {}
        for series in answer["data"]["result"]:
            labels = {
                key: value
                for key, value in series["metric"].items()
                if key not in ("__name__", "job", "instance")
            }
            result[tuple(sorted(labels.items()))] = float(series["value"][1])
        return result

    def value(self, expression: str) -> float | None:
        """The one value of an instant query (None when it has no series)."""
        result = self.query(expression)
        assert len(result) <= 1, result
        return next(iter(result.values()), None)

    def stop(self) -> None:
        """Stop it (and wait until it has)."""
        stop_child(self.process, "prometheus", timeout=30)
