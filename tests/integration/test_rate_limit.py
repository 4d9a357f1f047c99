"""--rate-limit: the 31st prediction in a minute gets 429 with Retry-After, in memory and in Redis."""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from kerasserve.service.http.security import Guard
from kerasserve.service.settings import Settings
from tests.deploy.tools import require_binary
from tests.support.live_server import LiveServer, free_port, live_server, run_cli

PREDICT = "/v1/models/MobileNetV2/predict"
KEYS = ("key-alpha", "key-beta")


def _jpeg() -> dict[str, tuple[str, bytes, str]]:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (20, 160, 90)).save(out, format="JPEG")
    return {"image": ("a.jpg", out.getvalue(), "image/jpeg")}


def predict(server: LiveServer, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(server.base_url + PREDICT, files=_jpeg(), headers=headers, timeout=60)


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["code"] == "rate_limited"
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 60
    assert body["retry_after"] == float(wait)
    assert "30 requests per 1 minute" in body["message"]
    assert body["request_id"] == r.headers["x-request-id"]


@pytest.fixture(scope="module")
def memory_server() -> Iterator[LiveServer]:
    with live_server(
        "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "1",
        "--api-key", KEYS[0], "--api-key", KEYS[1], "--rate-limit", "30/minute",
    ) as srv:  # fmt: skip
        yield srv


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = require_binary("redis-server", "/usr/sbin", "/usr/local/bin")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start (exit {process.poll()})")
            time.sleep(0.1)
    try:
        yield port
    finally:
        client.close()
        if process.poll() is None:
            process.terminate()
            process.wait(10)


@pytest.fixture(scope="module")
def redis_server(redis_port: int) -> Iterator[LiveServer]:
    with live_server(
        "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "1",
        "--rate-limit", "30/minute",
        "--rate-limit-storage", f"redis://127.0.0.1:{redis_port}/0",
    ) as srv:  # fmt: skip
        yield srv


def test_no_limit_costs_nothing():
    """Without --rate-limit (and keys, and login) the guard is idle: no limiter, no lookups."""
    guard = Guard(Settings())
    assert guard.limiter is None
    assert guard.idle


def test_the_31st_prediction_of_a_key_gets_429_in_memory(memory_server):
    alpha = {"X-API-Key": KEYS[0]}
    statuses = [predict(memory_server, alpha).status_code for _ in range(30)]
    assert statuses == [200] * 30
    assert_limited(predict(memory_server, alpha))
    # Each key has its own count (the same key as a bearer token is the same caller)...
    assert_limited(predict(memory_server, {"Authorization": f"Bearer {KEYS[0]}"}))
    assert predict(memory_server, {"X-API-Key": KEYS[1]}).status_code == 200
    # ...and reading costs nothing: model listings are not counted.
    assert httpx.get(memory_server.base_url + "/v1/models", headers=alpha).status_code == 200


def test_the_429_speaks_chinese_when_asked(memory_server):
    r = predict(memory_server, {"X-API-Key": KEYS[0], "Accept-Language": "zh-CN"})
    assert r.status_code == 429
    assert r.json()["message"].startswith("请求太频繁:每 1 分钟最多 30 次")


def test_the_31st_anonymous_prediction_gets_429_counted_in_redis(redis_server, redis_port):
    import redis

    statuses = [predict(redis_server).status_code for _ in range(30)]
    assert statuses == [200] * 30
    assert_limited(predict(redis_server))
    # The count lives in Redis (shared by every worker and replica), keyed by address.
    client = redis.Redis(port=redis_port)
    try:
        keys = [k.decode() for k in client.keys("*")]
        (key,) = [k for k in keys if "ip:127.0.0.1" in k]
        assert client.llen(key) == 30
    finally:
        client.close()


def test_a_redis_outage_lets_requests_through_and_is_logged(redis_server, redis_port):
    """Runs last in this module: it stops Redis. A limit is a fairness guard; losing its
    storage must not take the service down with it."""
    import redis

    client = redis.Redis(port=redis_port)
    client.flushall()
    client.shutdown(nosave=True)
    client.close()
    r = predict(redis_server)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 10
    while "rate limit storage failed" not in redis_server.log():
        assert time.monotonic() < deadline, redis_server.log()[-2000:]
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--rate-limit", "lots", "COUNT/PERIOD"),
        ("--rate-limit-storage", "mongodb://x", "redis://HOST:PORT/DB"),
    ],
)
def test_a_bad_limit_is_refused_at_start_up(flag, value, says):
    result = run_cli("serve", "--weights", "none", flag, value, timeout=120)
    assert result.returncode == 2
    assert value in result.stderr
    assert says in result.stderr
