"""Prometheus config and the Grafana dashboard: valid, and asking for metrics the server exports."""

from __future__ import annotations

import io
import json
import re
import subprocess

import httpx
import yaml
from PIL import Image

from tests.deploy.tools import DEPLOY, load_yaml, require_binary
from tests.support.live_server import LiveServer

DASHBOARD = DEPLOY / "grafana/dashboards/kerasserve.json"
# Grafana's own variable; Prometheus sees a plain range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}


def _exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    for variable, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(variable, value) for e in exprs]
    return exprs


def test_prometheus_config_is_valid():
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_are_valid_promql(tmp_path):
    """promtool parses each panel's query as a recording rule."""
    promtool = require_binary("promtool")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(_exprs())],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_covers_the_issue_and_is_provisioned():
    titles = {p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"]}
    for topic in ("batch size", "queue wait", "latency", "throughput"):
        assert any(topic in t for t in titles), topic
    provider = load_yaml(DEPLOY / "grafana/provisioning/dashboards/kerasserve.yml")
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    (source,) = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")["datasources"]
    uids = {t["datasource"]["uid"] for t in json.loads(DASHBOARD.read_text())["panels"]}
    assert uids == {source["uid"]}


_METRIC = re.compile(r"\b(kerasserve_[a-z_]+?)(_bucket|_sum|_count)?\b(\{[^}]*\})?")
_BY = re.compile(r"by \(([^)]*)\)\s*\(\s*rate\((kerasserve_[a-z_]+?)(?:_bucket|_sum|_count)?\b")


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


def test_dashboard_metrics_and_labels_exist_on_a_live_server(server: LiveServer):
    from prometheus_client.parser import text_string_to_metric_families

    files = {"image": ("red.png", _png(), "image/png")}
    r = httpx.post(f"{server.base_url}/v1/models/MobileNetV2/predict", files=files, timeout=60)
    assert r.status_code == 200, r.text
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    labels: dict[str, set[str]] = {}
    values: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # Both names: the family's (`kerasserve_batch_size`) and the sample's (`..._total`).
            for name in (family.name, sample.name):
                labels.setdefault(name, set()).update(sample.labels)
                for key, value in sample.labels.items():
                    values.setdefault(f"{name}.{key}", set()).add(value)
    for expr in _exprs():
        for base, suffix, selector in _METRIC.findall(expr):
            name = base + suffix
            assert name in labels, f"{name} (in `{expr}`) is not exported; have {sorted(labels)}"
            for key, pattern in re.findall(r'(\w+)=~"([^"]*)"', selector):
                seen = values.get(f"{name}.{key}", set())
                assert any(re.fullmatch(pattern, v) for v in seen), (name, key, pattern, seen)
        for by, name in _BY.findall(expr):
            wanted = {label.strip() for label in by.split(",")} - {"le"}
            assert wanted <= labels[name], f"{name} lacks labels {wanted - labels[name]}"
