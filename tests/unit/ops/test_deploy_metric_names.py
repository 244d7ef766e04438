"""The alert rules and the dashboard query only metrics and labels that tradewire exports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.metrics import MetricWrapperBase

from tradewire.ops import metrics

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tradewire.json"

FOREIGN = {"up", "redis_up"}
"""Series that Prometheus itself (``up``) or redis_exporter provide."""
ALWAYS_LABELS = {"job", "instance", "le"}

_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _exported() -> dict[str, set[str]]:
    """Every series name tradewire exposes -> the label names it carries."""
    names: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            family = next(iter(value.describe()))
            labels = set(getattr(value, "_labelnames", ()))
            for suffix in _SUFFIXES[family.type]:
                names[family.name + suffix] = labels | ALWAYS_LABELS
    return names


EXPORTED = _exported()


def _dashboard_exprs() -> list[str]:
    board: dict[str, Any] = orjson.loads(DASHBOARD.read_bytes())
    return [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]


def _selectors(text: str) -> list[tuple[str, str]]:
    """``(metric, matchers)`` for every ``tradewire_...`` name in ``text`` (matchers may be empty)."""
    return re.findall(r"\b(tradewire_[a-z0-9_]+)(?:\{([^}]*)\})?", text)


def _check(text: str) -> None:
    found = _selectors(text)
    assert found, "no tradewire metric found"
    for name, matchers in found:
        assert name in EXPORTED, f"{name} is not a series of tradewire/ops/metrics.py"
        for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers):
            assert label in EXPORTED[name], f"{name} has no label {label!r}"
    for name in re.findall(r"\b([a-z_][a-z0-9_]*)\{", text):
        assert name.startswith("tradewire_") or name in FOREIGN, f"unknown series {name}"


def test_alert_rules_with_metrics_module_query_only_exported_series_and_labels() -> None:
    _check(ALERTS.read_text())


def test_dashboard_with_metrics_module_queries_only_exported_series_and_labels() -> None:
    _check("\n".join(_dashboard_exprs()))


def test_dashboard_with_metrics_module_shows_every_metric() -> None:
    queried = {name for name, _ in _selectors("\n".join(_dashboard_exprs()))}
    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in queried}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name = next(iter(value.describe())).name
            assert name in families, f"{name} has no panel: add one to deploy/grafana/tradewire.json"


def test_dashboard_with_grafana_layout_has_unique_ids_and_a_datasource_variable() -> None:
    board: dict[str, Any] = orjson.loads(DASHBOARD.read_bytes())
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert board["uid"] == "tradewire-overview"
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rate(tradewire_comands_total[5m])", "tradewire_comands_total is not a series"),
        ('tradewire_commands_total{outcom="rejected"}', "has no label 'outcom'"),
        ("tradewire_trades_total + node_load1{x='1'}", "unknown series node_load1"),
    ],
)
def test_name_check_with_typo_fails_naming_it(text: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        _check(text)
