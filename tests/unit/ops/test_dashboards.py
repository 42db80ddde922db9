"""Grafana dashboards and Prometheus rules in deploy/ use only metrics shared/metrics.py declares."""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import shared.metrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana").glob("*.json"))
RULE_FILES = sorted((DEPLOY / "prometheus").glob("*alerts*.yaml"))

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
}


def declared_series() -> set[str]:
    """Every sample name the metrics in shared/metrics.py expose."""
    names = set()
    for value in vars(shared.metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: identifiers outside label matchers, ranges,
    grouping clauses and strings, that are neither functions nor keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name, rest = match.group(), text[match.end() :].lstrip()
        aggregation = re.match(r"(by|without)\b", rest) is not None
        if rest.startswith("(") or aggregation or name in KEYWORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names


def dashboard_exprs(path: Path) -> list[str]:
    dashboard = json.loads(path.read_text())
    panels = [*dashboard["panels"], *(p for row in dashboard["panels"] for p in row.get("panels", []))]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def rules(path: Path) -> list[dict]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_there_are_dashboards_and_alert_rules() -> None:
    assert DASHBOARDS and RULE_FILES


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_use_declared_metrics(path: Path) -> None:
    exprs = dashboard_exprs(path)
    assert exprs, "a dashboard without queries"
    used = set().union(*(metric_names(e) for e in exprs))
    assert used and used <= declared_series(), sorted(used - declared_series())


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_importable(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] and dashboard["title"]
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"datasource"}
    for panel in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"][
            "w"
        ] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}" and target["refId"]


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_alert_rules_use_declared_metrics_and_say_what_to_do(path: Path) -> None:
    found = rules(path)
    assert found
    for rule in found:
        used = metric_names(rule["expr"])
        assert used and used <= declared_series(), (rule["alert"], sorted(used - declared_series()))
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_rules_cover_lag_dead_letters_outbox_and_errors() -> None:
    used = set().union(*(metric_names(r["expr"]) for path in RULE_FILES for r in rules(path)))
    assert {
        "fieldcollect_consumer_group_lag_messages",
        "fieldcollect_events_dead_lettered_total",
        "fieldcollect_outbox_backlog_messages",
        "fieldcollect_http_requests_total",
    } <= used


def test_the_expression_parser_finds_unknown_metrics() -> None:
    assert metric_names('sum by (job) (rate(up{job="x"}[5m])) > 0') == {"up"}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / b") == {"a_bucket", "b"}
    assert "up" not in declared_series()
