"""An upload over the body limit gets a readable 413 even while the client is still sending."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from kerasserve.service.settings import Settings

BIG = 24 * 1024 * 1024  # the session server's limit is 10 MB


def test_urllib_reads_the_413_not_a_reset(server):
    body = os.urandom(BIG)
    request = urllib.request.Request(
        f"{server.base_url}/v1/models/MobileNetV2/predict",
        data=body,
        headers={"Content-Type": "image/jpeg"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=60)
    assert info.value.code == 413
    error = json.loads(info.value.read())
    assert error["code"] == "payload_too_large"
    assert "10,485,760" in error["message"]
    assert info.value.headers["Connection"] == "close"


def test_curl_multipart_upload_over_the_limit_shows_the_message(server, tmp_path):
    big = tmp_path / "huge.jpg"
    big.write_bytes(os.urandom(BIG))
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-F",
            f"image=@{big}",
            "-w",
            "\n%{http_code}",
            f"{server.base_url}/v1/models/MobileNetV2/predict",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr  # no "connection reset" / "broken pipe"
    text, status = done.stdout.rsplit("\n", 1)
    assert status == "413"
    assert json.loads(text)["code"] == "payload_too_large"


def test_chunked_upload_over_the_limit_is_refused_readably(server):
    import httpx

    def chunks():
        block = os.urandom(1024 * 1024)
        for _ in range(BIG // len(block)):
            yield block

    r = httpx.post(
        f"{server.base_url}/v1/models/MobileNetV2/predict",
        content=chunks(),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    # The server is fine afterwards.
    assert httpx.get(f"{server.base_url}/readyz").status_code == 200


def test_the_default_runtime_is_auto(monkeypatch):
    monkeypatch.delenv("KERASSERVE_RUNTIME", raising=False)
    assert Settings().runtime == "auto"
    assert Settings().precision == "auto"
