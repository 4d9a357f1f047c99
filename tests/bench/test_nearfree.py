"""The near-free bench target: a real kerasserve serving pooling + Dense, and the summary's ratios."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import frontend, images, nearfree, servers
from kerasserve.schemas import PredictResponse

pytest.importorskip("sklearn", reason="the benchmark's photos need scikit-learn")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cache: Path = tmp_path_factory.mktemp("nearfree-cache")
    # The Keras runtime: the test checks what is served, not how fast (auto times OpenVINO too).
    target = servers.nearfree_target(["--cache", str(cache), "--runtime", "keras"])
    server = servers.start(target, tmp_path_factory.mktemp("nearfree-logs"))
    url = f"http://{servers.HOST}:{server.port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.process.poll() is None, server.log_tail()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.5)
        yield url
    finally:
        server.stop()


def test_serves_the_near_free_model_without_preprocessing(served: str) -> None:
    info = httpx.get(f"{served}/v1/models/{nearfree.NAME}", timeout=10).json()
    assert info["input_shape"] == list(nearfree.INPUT)
    assert info["preprocessing"]["mode"] == "none"
    assert info["num_classes"] == nearfree.CLASSES
    photo = images.load("small", limit=1)[0]
    r = httpx.post(
        f"{served}{servers.nearfree_target([]).predict_path}",
        files={"image": (photo.filename, photo.data, "image/jpeg")},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body = PredictResponse.model_validate(r.json())
    assert body.model.name == nearfree.NAME
    assert len(body.results[0].predictions) == 5


def test_near_free_is_a_bench_target() -> None:
    target = servers.server_target("nearfree", ["--max-batch-size", "8"])
    assert target.kind == "kerasserve"
    assert target.argv[:1] == ["bench.nearfree"]
    assert target.argv[-2:] == ["--max-batch-size", "8"]
    assert "nearfree" in servers.SERVER_TARGETS


def test_summary_takes_medians_and_ratios_to_the_ceiling() -> None:
    def point(req_s: float, p50: float, cpu: float) -> dict[str, float]:
        return {"req_s": req_s, "p50_ms": p50, "cpu_ms_per_req": cpu, "errors": 0}

    points = {
        "ceiling": {32: [point(100, 5, 2.0), point(300, 9, 1.0), point(200, 7, 1.6)]},
        "nearfree-after": {32: [point(190, 8, 2.0), point(180, 9, 2.4), point(1000, 1, 0.1)]},
    }
    summary = frontend.summarize(points)
    assert summary["medians"]["ceiling"][32]["req_s"] == 200
    assert summary["medians"]["ceiling"][32]["cpu_ms_per_req"] == 1.6
    assert summary["vs_ceiling"]["nearfree-after"][32] == {
        "req_s_ratio": 0.95,
        "p50_extra_ms": 1.0,
        "cpu_ratio": 1.25,
    }
