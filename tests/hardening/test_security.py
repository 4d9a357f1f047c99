"""API keys, CORS, and model files loaded without running their code."""

from __future__ import annotations

import hmac
import time

import httpx
import pytest

from kerasserve.service.http import security
from kerasserve.service.settings import Settings
from tests.hardening import support
from tests.hardening.conftest import API_KEYS, ORIGIN
from tests.hardening.support import PREDICT

MODEL_ROUTES = [
    ("POST", PREDICT),
    ("POST", "/predict"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/MobileNetV2"),
]


def call(client: httpx.Client, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    files = {"image": ("a.jpg", support.jpeg(), "image/jpeg")} if method == "POST" else None
    return client.request(method, path, files=files, headers=headers)


@pytest.mark.parametrize(("method", "path"), MODEL_ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"X-API-Key": "wrong"}, id="wrong-x-api-key"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-bearer"),
        pytest.param({"X-API-Key": API_KEYS[0][:-1]}, id="prefix-of-a-key"),
        pytest.param({"X-API-Key": API_KEYS[0] + "x"}, id="key-plus-suffix"),
        pytest.param({"Authorization": f"Basic {API_KEYS[0]}"}, id="basic-scheme"),
        pytest.param({"Authorization": API_KEYS[0]}, id="no-scheme"),
        pytest.param({"X-API-Key": "ключ".encode()}, id="non-ascii-key"),
    ],
)
def test_model_routes_need_a_valid_key(tight, method, path, headers):
    with httpx.Client(base_url=tight.base_url, timeout=60) as c:
        r = call(c, method, path, headers)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["code"] == "unauthorized"
    assert r.json()["request_id"] == r.headers["x-request-id"]


@pytest.mark.parametrize(("method", "path"), MODEL_ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-API-Key": API_KEYS[0]}, id="x-api-key"),
        pytest.param({"Authorization": f"Bearer {API_KEYS[1]}"}, id="bearer-second-key"),
        pytest.param({"Authorization": f"bearer {API_KEYS[0]}"}, id="bearer-lowercase"),
    ],
)
def test_model_routes_accept_either_header(tight, method, path, headers):
    with httpx.Client(base_url=tight.base_url, timeout=60) as c:
        r = call(c, method, path, headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"])
def test_health_metrics_and_docs_stay_open(tight, path):
    assert httpx.get(tight.base_url + path, timeout=30).status_code == 200


def test_unauthenticated_upload_is_refused_before_its_body_is_read(tight):
    """A 401 comes from the headers alone: no one without a key makes the server wait."""
    head = support.request_head(
        "POST", PREDICT, {"Content-Type": "image/jpeg", "Content-Length": "900000"}
    )
    with support.connect(tight.port) as sock:
        sock.sendall(head)
        response = support.read_response(sock, time.monotonic() + 20)
    assert response.status == 401
    assert response.elapsed < 2


def test_openapi_documents_both_security_schemes(tight):
    spec = httpx.get(tight.base_url + "/openapi.json", timeout=30).json()
    schemes = spec["components"]["securitySchemes"]
    kinds = {(s["type"], s.get("scheme") or s.get("name")) for s in schemes.values()}
    assert ("http", "bearer") in kinds
    assert ("apiKey", "X-API-Key") in kinds
    for path, method in [
        ("/v1/models/{model}/predict", "post"),
        ("/predict", "post"),
        ("/v1/models", "get"),
        ("/v1/models/{model}", "get"),
    ]:
        security_names = {name for req in spec["paths"][path][method]["security"] for name in req}
        assert security_names == set(schemes), (path, security_names)
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch):
    """Every configured key is compared with `hmac.compare_digest`, even after a match, so
    neither the content nor the position of a key shows in the time taken."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", recording)
    guard = security.Guard(Settings(api_keys=["first-key", "second-key", "third-key"]))

    assert guard.caller("first-key", None) is not None
    assert [b for _, b in compared] == [b"first-key", b"second-key", b"third-key"]


# -- admin routes --------------------------------------------------------------------------------
def admin_operations(base_url: str) -> list[tuple[str, str]]:
    """Every operation OpenAPI tags `admin` (load, unload, repository index, classifiers...)."""
    spec = httpx.get(base_url + "/openapi.json", timeout=30).json()
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "admin" in operation.get("tags", []):
                concrete = path.replace("{model}", "MobileNetV2").replace("{name}", "cats")
                found.append((method.upper(), concrete))
    return found


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"X-API-Key": API_KEYS[0]}, id="an-api-key"),
        pytest.param({"Authorization": f"Bearer {API_KEYS[0]}"}, id="an-api-key-as-bearer"),
    ],
)
@pytest.mark.parametrize("which", ["server", "tight"])
def test_admin_routes_are_closed_without_an_admin_key(request, which, headers):
    """No --admin-key: 403 naming the flag, with no keys at all (`server`) as with API keys
    (`tight`), whatever the request shows; and the model is still served after."""
    srv = request.getfixturevalue(which)
    operations = admin_operations(srv.base_url)
    assert {("POST", "/v1/models/MobileNetV2/load"), ("POST", "/v1/models/MobileNetV2/unload"),
            ("GET", "/v1/repository/index")} <= set(operations)  # fmt: skip
    with httpx.Client(base_url=srv.base_url, timeout=60) as c:
        for method, path in operations:
            r = c.request(method, path, headers=headers)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["code"] == "forbidden"
            assert "--admin-key" in r.json()["message"]
        models = c.get("/v1/models", headers={"X-API-Key": API_KEYS[0]})
    assert models.status_code == 200
    assert models.json()["models"][0]["name"] == "MobileNetV2"


def test_the_403_needs_no_body_to_be_read(server):
    head = support.request_head(
        "POST",
        "/v1/models/MobileNetV2/load",
        {"Content-Type": "application/json", "Content-Length": "900000"},
    )
    with support.connect(server.port) as sock:
        sock.sendall(head)
        response = support.read_response(sock, time.monotonic() + 20)
    assert response.status == 403
    assert response.elapsed < 2


# -- CORS --------------------------------------------------------------------------------------
def preflight(base_url: str, origin: str) -> httpx.Response:
    return httpx.options(
        base_url + PREDICT,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
        timeout=30,
    )


def test_cors_allows_the_configured_origin(tight):
    r = preflight(tight.base_url, ORIGIN)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
    with tight.client() as c:
        r = c.post(PREDICT, files={"image": support.jpeg()}, headers={"Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    exposed = r.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
    assert "retry-after" in exposed


def test_cors_refuses_other_origins(tight):
    r = preflight(tight.base_url, "https://evil.example")
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    with tight.client() as c:
        r = c.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_is_off_by_default(server):
    r = preflight(server.base_url, ORIGIN)
    assert "access-control-allow-origin" not in r.headers
    r = httpx.get(server.base_url + "/v1/models", headers={"Origin": ORIGIN}, timeout=30)
    assert "access-control-allow-origin" not in r.headers


# -- model files -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory):
    """A .keras file with a Lambda layer: loading it runs Python code from the file."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    path = tmp_path_factory.mktemp("models") / "lam.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_model_files_load_in_safe_mode_unless_the_operator_opts_out(lambda_model):
    from kerasserve.service.http.app import model_sources
    from kerasserve.service.settings import Settings

    (default,) = model_sources(Settings(model_file=[str(lambda_model)], preprocess="none"))
    assert default.safe_mode is True
    (opted_out,) = model_sources(
        Settings(model_file=[str(lambda_model)], preprocess="none", unsafe_model_files=True)
    )
    assert opted_out.safe_mode is False


async def test_model_file_with_code_is_refused_in_safe_mode(lambda_model):
    from concurrent.futures import ThreadPoolExecutor

    from kerasserve.batching import BatchPolicy
    from kerasserve.service.errors import ModelLoadError
    from kerasserve.service.inference import loading
    from kerasserve.service.inference.loaded import Decoder
    from kerasserve.service.inference.source import ModelSource

    policy = BatchPolicy(max_batch_size=1)
    with ThreadPoolExecutor(1) as pool:
        decoder = Decoder(pool, 1_000_000)
        source = ModelSource(
            name="lam", model_file=lambda_model, preprocess="none", runtime="keras"
        )
        with pytest.raises(ModelLoadError, match="safe_mode=True"):
            await loading.load(source, policy, 5.0, decoder)

        unsafe = await loading.load(
            ModelSource(
                name="lam",
                model_file=lambda_model,
                preprocess="none",
                safe_mode=False,
                runtime="keras",
            ),
            policy,
            5.0,
            decoder,
        )
        try:
            assert unsafe.output_kind == "softmax"
            assert unsafe.num_classes == 3
        finally:
            await unsafe.aclose(0)
