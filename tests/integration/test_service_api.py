"""The HTTP API end to end: a real `kerasserve serve` subprocess with MobileNetV2 (random weights)."""

from __future__ import annotations

import io
import re

import httpx
import pytest
from PIL import Image

from tests.support.models import photos


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def photo() -> bytes:
    return photos(1)[0]


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_predict_returns_five_predictions_with_model_weights_and_timing(client, photo):
    r = client.post(
        "/v1/models/MobileNetV2/predict", files={"image": ("cat.jpg", photo, "image/jpeg")}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["name"] == "MobileNetV2"
    assert body["model"]["weights"] == {
        "kind": "random",
        "path": None,
        "random": True,
        "warning": body["model"]["weights"]["warning"],
    }
    assert "meaningless" in body["model"]["weights"]["warning"]
    # The session server runs the default, `--runtime auto`: the fastest that passed its check.
    assert body["model"]["runtime"]["name"] in ("keras", "openvino")
    (result,) = body["results"]
    assert result["filename"] == "cat.jpg"
    preds = result["predictions"]
    assert len(preds) == 5
    assert all(set(p) == {"index", "class_id", "label", "probability"} for p in preds)
    assert [p["probability"] for p in preds] == sorted(
        (p["probability"] for p in preds), reverse=True
    )
    assert all(re.fullmatch(r"n\d{8}", p["class_id"]) for p in preds)
    timing = result["timing"]
    assert timing["batch_size"] >= 1
    assert timing["inference_ms"] > 0
    assert "inference;dur=" in r.headers["server-timing"]
    assert r.headers["x-kerasserve-warning"].startswith("random weights")


def test_model_name_is_case_and_punctuation_insensitive(client, photo):
    r = client.post("/v1/models/mobilenet_v2/predict?top_k=2", files={"image": photo})
    assert r.status_code == 200
    assert r.json()["model"]["name"] == "MobileNetV2"
    assert len(r.json()["results"][0]["predictions"]) == 2


def test_several_images_in_one_request_come_back_in_order(client):
    imgs = photos(3, seed=5)
    files = [("image", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(imgs)]
    r = client.post("/v1/models/MobileNetV2/predict", files=files)
    assert r.status_code == 200
    assert [x["filename"] for x in r.json()["results"]] == ["p0.jpg", "p1.jpg", "p2.jpg"]


def test_raw_image_body_is_accepted(client, photo):
    r = client.post(
        "/v1/models/MobileNetV2/predict", content=photo, headers={"Content-Type": "image/jpeg"}
    )
    assert r.status_code == 200, r.text


def test_seed_contract_predict(client, photo):
    r = client.post("/predict", files={"image": ("photo.jpg", photo, "image/jpeg")})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True
    assert len(body["predictions"]) == 5
    assert set(body["predictions"][0]) == {"label", "probability"}


def test_seed_contract_failure_says_success_false(client):
    r = client.post("/predict", files={"image": ("notes.jpg", b"just some text", "image/jpeg")})
    assert r.status_code == 415
    body = r.json()
    assert body["success"] is False
    assert "unsupported image type" in body["error"]
    assert body["code"] == "unsupported_media_type"


def test_models_listing_describes_everything(client):
    body = client.get("/v1/models").json()
    assert body["default_model"] == "MobileNetV2"
    (info,) = body["models"]
    assert info["input_shape"] == [224, 224, 3]
    assert info["preprocessing"]["mode"] == "tf"
    assert info["preprocessing"]["module"] == "mobilenet_v2"
    assert info["num_classes"] == 1000
    assert info["state"] == "ready"
    assert info["batching"]["buckets"] == [1, 2, 4, 8, 16]
    assert info["weights"]["random"] is True
    assert client.get("/v1/models/MOBILENETV2").json()["name"] == "MobileNetV2"


def test_health_and_readiness(client):
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "models": {"MobileNetV2": "ready"}, "detail": None}


def test_unknown_model_is_404_with_suggestions(client, photo):
    r = client.post("/v1/models/MobileNetV3/predict", files={"image": photo})
    body = assert_error(r, 404, "model_not_found")
    assert "MobileNetV2" in body["message"]
    assert_error(client.get("/v1/models/resnet50"), 404, "model_not_found")


def test_not_an_image_is_415(client):
    r = client.post(
        "/v1/models/MobileNetV2/predict", files={"image": ("a.jpg", b"hello", "image/jpeg")}
    )
    assert_error(r, 415, "unsupported_media_type")


def test_truncated_jpeg_is_400(client, photo):
    r = client.post(
        "/v1/models/MobileNetV2/predict", files={"image": ("t.jpg", photo[:2000], "image/jpeg")}
    )
    assert_error(r, 400, "invalid_image")


def test_empty_file_is_400(client):
    r = client.post("/v1/models/MobileNetV2/predict", files={"image": ("e.jpg", b"", "image/jpeg")})
    assert_error(r, 400, "empty_file")


def test_wrong_field_name_is_422_naming_the_field(client, photo):
    r = client.post(
        "/v1/models/MobileNetV2/predict", files={"file": ("a.jpg", photo, "image/jpeg")}
    )
    body = assert_error(r, 422, "missing_image")
    assert "'image'" in body["message"]
    assert "file" in body["message"]


@pytest.mark.parametrize("top_k", ["0", "101", "abc"])
def test_bad_top_k_is_422(client, photo, top_k):
    r = client.post(f"/v1/models/MobileNetV2/predict?top_k={top_k}", files={"image": photo})
    assert_error(r, 422, "invalid_request")


def test_body_over_the_limit_is_413(client):
    big = b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024)
    r = client.post(
        "/v1/models/MobileNetV2/predict", files={"image": ("big.jpg", big, "image/jpeg")}
    )
    assert_error(r, 413, "payload_too_large")


def test_pixel_bomb_is_413_before_decoding(client):
    # A tiny PNG whose header claims 30000 x 30000 pixels.
    buf = io.BytesIO()
    Image.new("L", (30000, 30000)).save(buf, "PNG", optimize=True)
    r = client.post(
        "/v1/models/MobileNetV2/predict", files={"image": ("bomb.png", buf.getvalue(), "image/png")}
    )
    assert len(buf.getvalue()) < 2_000_000
    assert_error(r, 413, "image_too_large")


def test_unknown_route_and_method_are_json_errors(client):
    assert_error(client.get("/nope/at/all"), 404, "not_found")
    assert_error(client.get("/v1/models/MobileNetV2/predict"), 405, "method_not_allowed")


def test_request_id_is_echoed(client):
    r = client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"


def test_openapi_documents_errors_with_examples(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/models/{model}/predict"]["post"]
    for status in ("400", "404", "413", "415", "422", "503", "504"):
        assert status in op["responses"], status
        content = op["responses"][status]["content"]["application/json"]
        assert content["schema"]["$ref"].endswith("/ErrorResponse")
        assert content["example"]["code"]
    assert "Retry-After" in op["responses"]["503"]["headers"]
    assert "multipart/form-data" in op["requestBody"]["content"]
    assert "ErrorResponse" in spec["components"]["schemas"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_render_from_local_assets_only(client, page):
    html = client.get(page).text
    external = re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
    assert external == [], f"{page} pulls assets from the internet: {external}"
    assets = re.findall(r"""(?:src|href)=["'](/[^"']+)""", html)
    assert assets
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200, asset
        assert len(r.content) > 100, asset


def test_web_page_is_served_but_not_the_files_beside_it(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    for path in ("/__init__.py", "/README.md"):
        assert_error(client.get(path), 404, "not_found")
