"""The front-end ceiling, a real uvicorn on 127.0.0.1: kerasserve's predict shape, clear errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import images, servers
from kerasserve.schemas import ErrorResponse, PredictResponse

pytest.importorskip("sklearn", reason="the benchmark's photos need scikit-learn")


@pytest.fixture(scope="module")
def ceiling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs: Path = tmp_path_factory.mktemp("ceiling")
    server = servers.start(servers.ceiling_target(), logs)
    url = f"http://{servers.HOST}:{server.port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.process.poll() is None, server.log_tail()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        yield url
    finally:
        server.stop()


def test_answers_a_photo_in_the_shape_of_kerasserve_predict(ceiling: str) -> None:
    photo = images.load("small", limit=1)[0]
    r = httpx.post(
        f"{ceiling}/v1/models/MobileNetV2/predict",
        files={"image": (photo.filename, photo.data, "image/jpeg")},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body = PredictResponse.model_validate_json(r.content)
    (result,) = body.results
    assert result.filename == photo.filename
    assert [p.label for p in result.predictions][:2] == ["golden_retriever", "Labrador_retriever"]
    assert len(result.predictions) == 5
    assert result.timing.decode_ms is not None
    assert result.timing.decode_ms > 0
    assert body.model.name == "MobileNetV2"
    assert body.model.runtime.name == "none"


def test_bytes_that_are_not_an_image_get_kerasserves_json_error(ceiling: str) -> None:
    r = httpx.post(
        f"{ceiling}/v1/models/MobileNetV2/predict",
        files={"image": ("notes.txt", b"plain text, not pixels", "text/plain")},
        timeout=30,
    )
    assert r.status_code == 415, r.text
    error = ErrorResponse.model_validate_json(r.content)
    assert error.code.value == "unsupported_media_type"
    assert "send one of" in error.message


def test_a_truncated_jpeg_is_a_400_that_says_so(ceiling: str) -> None:
    photo = images.load("small", limit=1)[0]
    r = httpx.post(
        f"{ceiling}/v1/models/MobileNetV2/predict",
        files={"image": ("cut.jpg", photo.data[:200], "image/jpeg")},
        timeout=30,
    )
    assert r.status_code == 400, r.text
    assert ErrorResponse.model_validate_json(r.content).code.value == "invalid_image"
