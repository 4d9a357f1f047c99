"""Metrics in Prometheus format, a request id on every response and log line, one access log
line per request, and `Server-Timing`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid

import httpx
import pytest

from tests.hardening import support
from tests.hardening.support import PREDICT

FAMILIES = {
    "kerasserve_http_requests": "counter",
    "kerasserve_http_request_duration_seconds": "histogram",
    "kerasserve_queue_depth": "gauge",
    "kerasserve_queue_wait_seconds": "histogram",
    "kerasserve_batch_size": "histogram",
    "kerasserve_inference_duration_seconds": "histogram",
    "kerasserve_images": "counter",
    "kerasserve_images_rejected": "counter",
    "kerasserve_queue_dropped": "counter",
    "kerasserve_model_info": "gauge",  # an Info, exposed as a gauge of 1 in text format
}


@pytest.fixture(scope="module")
def metrics_text(client) -> str:
    """The exposition after some traffic: a success, a rejected upload, a 404."""
    assert client.post(PREDICT, files={"image": support.jpeg()}).status_code == 200
    assert client.post(PREDICT, files={"image": ("a.jpg", b"text")}).status_code == 415
    assert client.get("/no/such/page").status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.text


def test_metrics_pass_promtool(metrics_text):
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: install Debian's `prometheus` package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=metrics_text, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout  # no lint findings either


def test_metric_families_types_and_names(metrics_text):
    metrics = support.parse_metrics(metrics_text)
    for name, kind in FAMILIES.items():
        assert metrics.types.get(name) == kind, (name, metrics.types.get(name))
    for (sample, _), _value in metrics.samples.items():
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", sample), sample
        family = next((f for f in metrics.types if sample.startswith(f)), None)
        if family and metrics.types[family] == "counter":
            assert sample.endswith(("_total", "_created")), sample
    for family in FAMILIES:
        if "duration" in family or "wait" in family:
            assert family.endswith("_seconds"), family


def test_metrics_count_what_happened(client, metrics_text):
    before = support.parse_metrics(metrics_text)
    assert client.post(PREDICT, files={"image": ("a.svg", support.SVG)}).status_code == 415
    assert client.post(PREDICT, files={"image": support.jpeg()}).status_code == 200
    after = support.parse_metrics(client.get("/metrics").text)

    def delta(name: str, **labels: str) -> float:
        return after.get(name, **labels) - before.get(name, **labels)

    route = "/v1/models/{model}/predict"
    assert delta("kerasserve_http_requests_total", route=route, status="200") == 1
    assert delta("kerasserve_http_requests_total", route=route, status="415") == 1
    assert delta("kerasserve_images_rejected_total", reason="unsupported_media_type") == 1
    assert delta("kerasserve_images_total", model="MobileNetV2") == 1
    assert delta("kerasserve_batch_size_count", model="MobileNetV2") == 1
    assert delta("kerasserve_inference_duration_seconds_count", model="MobileNetV2") == 1
    assert delta("kerasserve_queue_wait_seconds_count", model="MobileNetV2") == 1
    assert delta("kerasserve_http_request_duration_seconds_count", route=route) == 2
    assert after.get("kerasserve_queue_depth", model="MobileNetV2") == 0
    assert after.get("kerasserve_model_info", model="MobileNetV2", weights="random") == 1
    # Unmatched paths share one label value: a scanner cannot blow up the series count.
    assert after.get("kerasserve_http_requests_total", route="unmatched", status="404") >= 1
    assert not any("no/such" in str(labels) for _, labels in after.samples)


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", PREDICT, {"files": {"image": support.jpeg()}}),
        ("POST", PREDICT, {"files": {"image": ("a.jpg", b"text")}}),
        ("POST", PREDICT, {"params": {"top_k": 0}, "files": {"image": support.jpeg()}}),
        ("POST", "/predict", {"files": {"image": support.jpeg()}}),
        ("GET", "/v1/models", {}),
        ("GET", "/v1/models/NoSuchNet", {}),
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/metrics", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/docs", {}),
        ("GET", "/", {}),
        ("GET", "/no/such/page", {}),
        ("DELETE", PREDICT, {}),
    ],
)
def test_every_response_carries_a_request_id(client, method, path, kwargs):
    r = client.request(method, path, **kwargs)
    generated = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", generated), generated
    r = client.request(method, path, headers={"X-Request-ID": "trace-abc.123"}, **kwargs)
    assert r.headers["x-request-id"] == "trace-abc.123"
    if r.headers["content-type"].startswith("application/json") and r.status_code >= 400:
        assert r.json()["request_id"] == "trace-abc.123"


@pytest.mark.parametrize("bad", ["has space", "x" * 200, "semi;colon", "ünïcode".encode()])
def test_unsafe_client_request_ids_are_replaced(client, bad):
    r = client.get("/healthz", headers={"X-Request-ID": bad})
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["x-request-id"])


def _access_lines(server, rid: str) -> list[str]:
    return [line for line in server.log().splitlines() if f"[{rid}]" in line]


def test_one_structured_access_log_line_per_request(server, client):
    rids = [f"log-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
    client.post(PREDICT, files={"image": support.jpeg()}, headers={"X-Request-ID": rids[0]})
    client.post(PREDICT, files={"image": ("a.jpg", b"no")}, headers={"X-Request-ID": rids[1]})
    client.get("/v1/models", headers={"X-Request-ID": rids[2]})
    support.wait_for(lambda: all(_access_lines(server, r) for r in rids), 10, "access lines")
    expected = [
        ("POST", "200", "-"),
        ("POST", "415", "unsupported_media_type"),
        ("GET", "200", "-"),
    ]
    for rid, (method, status, code) in zip(rids, expected, strict=True):
        (line,) = _access_lines(server, rid)
        assert "kerasserve.access" in line
        fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
        assert fields["method"] == method
        assert fields["status"] == status
        assert fields["code"] == code
        assert float(fields["duration_ms"]) >= 0
        assert fields["client"] == "127.0.0.1"


def test_a_url_cannot_forge_log_lines(server):
    """Regression: the access log wrote the decoded path, so `%0A` started a new line."""
    rid = f"inject-{uuid.uuid4().hex[:8]}"
    with support.connect(server.port) as sock:
        sock.sendall(
            support.request_head(
                "GET",
                "/x%0A2026-01-01%20INFO%20kerasserve.access%20[forged]%20ok",
                {"X-Request-ID": rid, "Connection": "close"},
            )
        )
        support.read_response(sock, time.monotonic() + 10)
    support.wait_for(lambda: bool(_access_lines(server, rid)), 10, "the access line")
    assert "[forged]" not in "".join(
        line for line in server.log().splitlines() if line.startswith("2026-01-01")
    )
    (line,) = _access_lines(server, rid)
    assert "%0A" in line


def test_server_timing_has_queue_and_inference_time(client):
    r = client.post(PREDICT, files={"image": support.jpeg()})
    timing = dict(re.findall(r"(\w+);dur=([0-9.]+)", r.headers["server-timing"]))
    assert set(timing) >= {"queue", "inference", "decode"}
    assert float(timing["inference"]) > 0
    body = r.json()["results"][0]["timing"]
    assert float(timing["inference"]) == pytest.approx(body["inference_ms"], abs=0.01)
    assert float(timing["queue"]) == pytest.approx(body["queue_ms"], abs=0.01)


def test_metrics_route_needs_no_client_state(server):
    # /metrics must answer even to a bare HTTP/1.0 client (Prometheus' scraper is simple).
    with support.connect(server.port) as sock:
        sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        response = support.read_response(sock, time.monotonic() + 10)
    assert response.status == 200
    assert b"kerasserve_http_requests_total" in response.body
    assert httpx.get(server.base_url + "/healthz").status_code == 200
