"""The compose nginx config, for real: `nginx -t`, then nginx in front of two live replicas.

The replicas are real `kerasserve serve` processes (MobileNetV2, random weights) on 127.0.0.1; the
config is deploy/nginx/nginx.conf with only its upstream, port and paths swapped (nginx_conf.py).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.deploy.nginx_conf import Rendered, render
from tests.deploy.tools import require_binary
from tests.support.live_server import LiveServer, block_until_ready, free_port, live_server

REPLICA_ARGS = ("--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "4")
PREDICT = "/v1/models/MobileNetV2/predict"


def _nginx() -> str:
    return require_binary("nginx", "/usr/sbin", "/usr/local/sbin")


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


IMAGE = {"image": ("blue.png", _png(), "image/png")}


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Not pytest's tmp_path: nginx's workers may run as another user, who cannot enter it.
    path = Path(tempfile.mkdtemp(prefix="kerasserve-nginx-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_config_passes_nginx_t(workdir: Path):
    nginx = _nginx()
    (workdir / "t").mkdir()
    rendered = render(workdir / "t", free_port(), [free_port(), free_port()])
    result = rendered.test(nginx)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@contextlib.contextmanager
def _replicas(count: int = 2) -> Iterator[list[LiveServer]]:
    _nginx()  # skip (or fail under CI) before paying for the servers
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(live_server(*REPLICA_ARGS, wait_ready=False)) for _ in range(count)
        ]
        # They load and warm at once; wait for them together.
        deadline = time.monotonic() + 240
        for server in servers:
            block_until_ready(server, max(0.0, deadline - time.monotonic()))
        yield servers


@dataclass
class Balancer:
    url: str
    rendered: Rendered
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        logs = (self.rendered.error_log, self.rendered.access_log)
        return "\n".join(p.read_text(errors="replace") for p in logs if p.exists())


@contextlib.contextmanager
def _balancer(replicas: list[LiveServer], directory: Path) -> Iterator[Balancer]:
    """The real nginx, in the foreground, on the rendered config."""
    nginx = _nginx()
    directory.mkdir()
    port = free_port()
    rendered = render(directory, port, [s.port for s in replicas])
    assert rendered.test(nginx).returncode == 0
    command = rendered.command(nginx, "-g", f"daemon off; pid {rendered.pid};")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    balancer = Balancer(f"http://127.0.0.1:{port}", rendered, process)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, f"nginx exited:\n{balancer.log()}"
            try:
                if httpx.get(f"{balancer.url}/nginx-health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        yield balancer
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def replicas() -> Iterator[list[LiveServer]]:
    with _replicas() as servers:
        yield servers


@pytest.fixture(scope="module")
def balancer(replicas: list[LiveServer], workdir: Path) -> Iterator[Balancer]:
    with _balancer(replicas, workdir / "live") as b:
        yield b


@pytest.fixture
def client(balancer: Balancer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=balancer.url, timeout=60) as c:
        yield c


def _addr(server: LiveServer) -> str:
    return f"127.0.0.1:{server.port}"


def test_requests_spread_over_both_replicas(
    client: httpx.Client, replicas: list[LiveServer], balancer: Balancer
):
    served: Counter[str] = Counter()
    for _ in range(20):
        r = client.post(PREDICT, files=IMAGE)
        assert r.status_code == 200, f"{r.status_code} {r.text}\n{balancer.log()}"
        assert r.json()["results"][0]["predictions"]
        served[r.headers["x-upstream"]] += 1
    assert set(served) == {_addr(s) for s in replicas}, served
    # least_conn with no request in flight falls back to round robin: an even split.
    assert min(served.values()) >= 5, served

    # Concurrent clients too.
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: client.post(PREDICT, files=IMAGE), range(24)))
    assert [r.status_code for r in responses] == [200] * 24
    assert {r.headers["x-upstream"] for r in responses} == {_addr(s) for s in replicas}


def test_request_id_goes_through_to_the_replica(client: httpx.Client, balancer: Balancer):
    r = client.get("/v1/models", headers={"X-Request-ID": "deploy-test-4242"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "deploy-test-4242"
    # nginx writes the access log line just after the response, so give it a moment.
    deadline = time.monotonic() + 5
    while "rid=deploy-test-4242" not in balancer.rendered.access_log.read_text():
        assert time.monotonic() < deadline, balancer.log()
        time.sleep(0.05)
    # Without one, nginx makes one and the replica echoes it.
    assert len(client.get("/healthz").headers["x-request-id"]) >= 16


def test_upload_over_the_limit_is_refused_by_nginx_as_json(client: httpx.Client):
    big = {"image": ("big.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png")}
    r = client.post(PREDICT, files=big)
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    assert "x-upstream" not in r.headers, "nginx refused it without troubling a replica"


def test_metrics_are_not_public_through_the_balancer(client: httpx.Client):
    r = client.get("/metrics")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"


def test_killed_replica_does_not_fail_clients(
    client: httpx.Client, replicas: list[LiveServer], balancer: Balancer
):
    """SIGKILL one replica while requests are in flight: every client still gets a 200.

    Runs last in this module: it kills the replicas.
    """
    victim, survivor = replicas

    def predict(_: int) -> httpx.Response:
        return client.post(PREDICT, files=IMAGE)

    with ThreadPoolExecutor(4) as pool:
        warmup = list(pool.map(predict, range(8)))
        in_flight = [pool.submit(predict, i) for i in range(40)]
        victim.process.kill()
        victim.process.wait(10)
        during = [f.result() for f in in_flight]
    after = [predict(i) for i in range(10)]

    for r in [*warmup, *during, *after]:
        assert r.status_code == 200, f"{r.status_code} {r.text}\n{balancer.log()}"
    # After the kill, the survivor answers everything (a retried request lists both replicas).
    assert all(r.headers["x-upstream"].endswith(_addr(survivor)) for r in after)
    retried = sum("," in r.headers["x-upstream"] for r in during + after)
    print(f"{retried} of {len(during) + len(after)} requests were retried on the survivor")

    # With no replica left, nginx answers in the API's error shape, with Retry-After.
    survivor.process.kill()
    survivor.process.wait(10)
    r = predict(0)
    assert r.status_code == 503
    assert r.json()["code"] == "not_ready"
    assert r.headers["retry-after"] == "5"


def test_replica_stopped_with_sigterm_drains_without_failing_clients(workdir: Path):
    """`docker stop` / a rolling update: SIGTERM (the image's STOPSIGNAL) under load.

    The replica stops accepting, finishes what it accepted and exits 0 well within its drain
    timeout; nginx sends whatever it could not take to the other replica.
    """
    with (
        _replicas() as (stopping, staying),
        _balancer([stopping, staying], workdir / "drain") as balancer,
        httpx.Client(base_url=balancer.url, timeout=60) as client,
    ):

        def predict(_: int) -> httpx.Response:
            return client.post(PREDICT, files=IMAGE)

        with ThreadPoolExecutor(4) as pool:
            warmup = list(pool.map(predict, range(8)))
            in_flight = [pool.submit(predict, i) for i in range(40)]
            started = time.monotonic()
            stopping.process.send_signal(signal.SIGTERM)
            during = [f.result() for f in in_flight]
            returncode = stopping.process.wait(40)
            stopped_after = time.monotonic() - started
        after = [predict(i) for i in range(6)]

        for r in [*warmup, *during, *after]:
            assert r.status_code == 200, f"{r.status_code} {r.text}\n{balancer.log()}"
        # uvicorn re-raises the signal once it has shut down cleanly: 143 in a container.
        assert returncode in (0, -signal.SIGTERM), stopping.log()
        assert "Application shutdown complete" in stopping.log()
        print(f"SIGTERM to exit: {stopped_after:.1f}s")
        assert stopped_after < 30, f"drain took {stopped_after:.1f}s"
        assert all(r.headers["x-upstream"].endswith(_addr(staying)) for r in after)
