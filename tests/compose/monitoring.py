"""The monitoring profile's files read as Prometheus and Grafana read them: the scrape targets
of docker/prometheus/prometheus.yml, Grafana's provisioning and the metric names in the PromQL
of its dashboard; and the metrics the code exports, for both to be checked against."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from hhar_stream.apps.dashboard import metrics as dashboard_metrics
from hhar_stream.processor import metrics as processor_metrics
from hhar_stream.producer import metrics as producer_metrics

from .project import REPO_ROOT

PROMETHEUS_CONFIG = REPO_ROOT / "docker" / "prometheus" / "prometheus.yml"
GRAFANA = REPO_ROOT / "docker" / "grafana"
GRAFANA_DASHBOARD = GRAFANA / "dashboards" / "hhar-stream.json"

SPECS = (*producer_metrics.METRICS, *processor_metrics.METRICS, *dashboard_metrics.METRICS)
EXPORTED = {name for spec in SPECS for name in (spec.name, *spec.sample_names())}
"""Every metric and sample name the producer, the processor and the dashboard export."""

_NOT_METRICS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
    | {"unless", "offset", "inf", "nan"}
)


def scrape_targets(path: Path = PROMETHEUS_CONFIG) -> dict[str, list[tuple[str, int]]]:
    """Job name -> its static targets as (host, port)."""
    config = yaml.safe_load(path.read_text())
    targets: dict[str, list[tuple[str, int]]] = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                targets.setdefault(job["job_name"], []).append((host, int(port)))
    return targets


def promql_metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects: its identifiers that are neither a
    function or aggregation (followed by a parenthesis), a keyword, nor inside label
    matchers, label lists, ranges or strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group() in _NOT_METRICS:
            continue
        names.add(match.group())
    return names


def dashboard_panels(path: Path = GRAFANA_DASHBOARD) -> list[dict[str, Any]]:
    """The panels of a Grafana dashboard JSON (rows' panels too)."""
    panels: list[dict[str, Any]] = []
    for panel in json.loads(path.read_text())["panels"]:
        panels += [panel, *panel.get("panels", [])]
    return panels
