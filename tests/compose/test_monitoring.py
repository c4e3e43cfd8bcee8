"""The `monitoring` profile without a Docker engine: official pinned images, Prometheus' config
valid (its own promtool) and scraping every hhar service where it serves /metrics, Grafana
provisioned with that Prometheus and a dashboard whose queries name only metrics the code
exports. (The rehearsal, test_rehearsal.py, scrapes those targets of the running services.)"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

import pytest
import yaml
from support.prometheus import promtool

from hhar_stream.settings import Settings

from .monitoring import (
    EXPORTED,
    GRAFANA,
    GRAFANA_DASHBOARD,
    PROMETHEUS_CONFIG,
    dashboard_panels,
    promql_metric_names,
    scrape_targets,
)
from .project import REPO_ROOT, ComposeProject, Service


@pytest.fixture(scope="module")
def project() -> ComposeProject:
    return ComposeProject.load()


def settings_of(service: Service) -> Settings:
    """The settings the service's hhar reads from its environment."""
    return Settings(
        **{
            name.removeprefix("HHAR_").lower(): value
            for name, value in service.environment.items()
            if name.startswith("HHAR_")
        }
    )


def mounted(service: Service, target: str) -> PurePosixPath:
    """The repository file or folder a service mounts at `target`."""
    [mount] = [mount for mount in service.volumes if mount.target == target]
    assert not mount.named and mount.read_only, mount
    return REPO_ROOT / mount.source


def test_the_profile_runs_official_pinned_images(project: ComposeProject) -> None:
    monitoring = {s.name: s for s in project.services.values() if "monitoring" in s.profiles}
    assert sorted(monitoring) == ["grafana", "prometheus"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", monitoring["prometheus"].image)
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", monitoring["grafana"].image)


def test_prometheus_reads_the_repositorys_valid_config(project: ComposeProject) -> None:
    prometheus = project.services["prometheus"]
    flag = next(arg for arg in prometheus.command if arg.startswith("--config.file="))
    assert mounted(prometheus, flag.split("=", 1)[1]) == PROMETHEUS_CONFIG
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_every_hhar_service_where_it_serves(project: ComposeProject) -> None:
    """Each long-running hhar service of `docker compose up` is a target at the port its
    settings serve metrics on, on every interface (other containers scrape it)."""
    targets = {host: port for jobs in scrape_targets().values() for host, port in jobs}
    served = {}
    for service in project.active():
        command = service.command or []
        if command[:1] != ["hhar"] or command[1] not in ("produce", "process", "dashboard"):
            continue
        settings = settings_of(service)
        if command[1] == "dashboard":
            assert settings.dashboard_metrics, service.name
            assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104
            served[service.hostname] = settings.dashboard_port
        else:
            assert settings.metrics_host == "0.0.0.0", service.name  # noqa: S104
            field = "producer_metrics_port" if command[1] == "produce" else "processor_metrics_port"
            served[service.hostname] = getattr(settings, field)
    assert targets == served


def test_grafana_is_provisioned_with_that_prometheus_and_the_dashboard(
    project: ComposeProject,
) -> None:
    grafana = project.services["grafana"]
    assert mounted(grafana, "/etc/grafana/provisioning") == GRAFANA / "provisioning"
    [source] = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "9090:9090" in project.services["prometheus"].raw["ports"]
    [provider] = yaml.safe_load((GRAFANA / "provisioning/dashboards/hhar-stream.yml").read_text())[
        "providers"
    ]
    folder = provider["options"]["path"]
    assert mounted(grafana, folder) == GRAFANA_DASHBOARD.parent
    home = grafana.environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert PurePosixPath(home) == PurePosixPath(folder) / GRAFANA_DASHBOARD.name
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]


def test_the_dashboards_queries_name_metrics_the_code_exports() -> None:
    used: set[str] = set()
    for panel in dashboard_panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = promql_metric_names(target["expr"])
            assert names, target["expr"]
            assert names <= EXPORTED, (panel["title"], names - EXPORTED)
            used |= names
    # What the dashboard is for: throughput, lag, batch duration, dead letters, bad records,
    # per-query rows.
    assert {
        "hhar_producer_events_sent_total",
        "hhar_processor_input_rows_total",
        "hhar_processor_lag_events",
        "hhar_processor_lag_seconds",
        "hhar_processor_batch_duration_seconds_bucket",
        "hhar_producer_dead_letters_total",
        "hhar_processor_bad_records_total",
        "hhar_processor_rows_out_total",
    } <= used
    assert json.loads(GRAFANA_DASHBOARD.read_text())["uid"] == "hhar-stream"


def test_metric_names_are_read_from_promql() -> None:
    assert promql_metric_names(
        'histogram_quantile(0.95, sum by (le, query) (rate(a_seconds_bucket{query="x"}[5m])))'
    ) == {"a_seconds_bucket"}
    assert promql_metric_names(
        "sum by (part) (rate(b_sum[5m])) / sum without (job) (rate(b_count[5m])) * 1000"
    ) == {"b_sum", "b_count"}
    assert promql_metric_names('max(c{reason="invalid json"}) > bool 0 and on (q) d') == {"c", "d"}
