"""The Open Inference Protocol against a live server, through the real `tritonclient[http]`
(and KServe's REST client where it is installed): health, metadata, JSON and binary tensors,
classification, versions, and `{"error"}` answers.

The server serves a model repository with two versions of MobileNetV2: version 1 with Keras'
own random initialisation, version 2 with He-rescaled weights (outputs far from uniform), so
comparisons between paths and versions mean something.
"""

from __future__ import annotations

import asyncio
import base64
import re

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.support.live_server import live_server
from tests.support.models import he_rescale, photos

MODEL = "mobilenet"
CLASSES = 1000


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("repository")
    folder = root / MODEL
    (folder / "1").mkdir(parents=True)
    (folder / "2").mkdir()
    (folder / "config.toml").write_text(
        'family = "MobileNetV2"\nweights = "none"\n\n[versions]\npolicy = "all"\n',
        encoding="utf-8",
    )
    model = keras.applications.MobileNetV2(weights=None)
    he_rescale(model)
    model.save_weights(folder / "2" / "rescaled.weights.h5")
    return root


@pytest.fixture(scope="module")
def v2_server(repository):
    with live_server(
        "--model-repository", str(repository), "--max-batch-size", "8", "--max-wait-ms", "20"
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(v2_server):
    with triton.InferenceServerClient(f"127.0.0.1:{v2_server.port}", network_timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def http(v2_server):
    with httpx.Client(base_url=v2_server.base_url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def images():
    return photos(3, seed=5)


def bytes_input(items, binary=True):
    tensor = triton.InferInput("image", [len(items)], "BYTES")
    tensor.set_data_from_numpy(np.array(items, dtype=np.object_), binary_data=binary)
    return tensor


def pixels_input(pixels, binary=True):
    tensor = triton.InferInput("pixels", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels, binary_data=binary)
    return tensor


def probabilities(client, inputs, version="", **kwargs):
    result = client.infer(MODEL, inputs, model_version=version, **kwargs)
    return result.as_numpy("probabilities"), result.get_response()


def v1_top(http, image, version=None, lang=None):
    """The v1 API's top 100 for one image, as {index: (probability, label)}."""
    params = {"top_k": 100}
    if lang:
        params["lang"] = lang
    path = f"/v1/models/{MODEL}/predict"
    response = http.post(path, params=params, files={"image": ("a.jpg", image, "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    if version is not None:
        assert body["model"]["version"] == version
    return {p["index"]: (p["probability"], p["label"]) for p in body["results"][0]["predictions"]}


# -- health and metadata --------------------------------------------------------------------------


def test_live_ready_and_server_metadata(client, http):
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "kerasserve"
    assert {"binary_tensor_data", "classification"} <= set(meta["extensions"])
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}


def test_model_metadata_names_shapes_datatypes_and_platform(client, v2_server):
    meta = client.get_model_metadata(MODEL)
    assert meta["name"] == MODEL
    assert meta["versions"] == ["1", "2"]
    # The default runtime: OpenVINO when it passed its check against Keras, else Keras.
    runtime = httpx.get(f"{v2_server.base_url}/v1/models/{MODEL}").json()["runtime"]["name"]
    assert meta["platform"] == {"openvino": "keras_openvino", "keras": "keras_tensorflow"}[runtime]
    assert meta["inputs"] == [
        {"name": "image", "datatype": "BYTES", "shape": [-1]},
        {"name": "pixels", "datatype": "UINT8", "shape": [-1, 224, 224, 3]},
    ]
    assert meta["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, CLASSES]}
    ]
    assert client.get_model_metadata(MODEL, model_version="1") == meta


def test_model_readiness_by_name_and_version(client, http):
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, "1")
    assert client.is_model_ready(MODEL, "2")
    assert not client.is_model_ready(MODEL, "3")
    assert not client.is_model_ready("nope")
    assert http.get(f"/v2/models/{MODEL}/ready").json() == {"name": MODEL, "ready": True}


# -- inference ------------------------------------------------------------------------------------


def test_binary_bytes_answer_what_the_v1_api_answers(client, http, images):
    got, response = probabilities(client, [bytes_input(images)])
    assert got.dtype == np.float32
    assert got.shape == (3, CLASSES)
    assert response["model_name"] == MODEL
    assert response["model_version"] == "2"
    assert response["parameters"]["output_kind"] == "softmax"
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-4)
    for row, image in zip(got, images, strict=True):
        top = v1_top(http, image, version=2)
        indices = list(top)
        np.testing.assert_allclose(row[indices], [top[i][0] for i in indices], atol=1e-5)
        # He-rescaled weights: far from uniform, so agreeing on the top class means something.
        assert int(np.argmax(row)) == indices[0]
        assert row.max() > 5 / CLASSES


def test_json_bytes_base64_and_json_output(client, images):
    binary, _ = probabilities(client, [bytes_input(images)])
    encoded = [base64.b64encode(image).decode() for image in images]
    json_out = [triton.InferRequestedOutput("probabilities", binary_data=False)]
    got, response = probabilities(client, [bytes_input(encoded, binary=False)], outputs=json_out)
    assert "data" in response["outputs"][0]
    np.testing.assert_allclose(got, binary, atol=1e-6)


def test_gzip_request_body(client, images):
    plain, _ = probabilities(client, [bytes_input(images[:1])])
    packed, _ = probabilities(
        client, [bytes_input(images[:1])], request_compression_algorithm="gzip"
    )
    np.testing.assert_allclose(packed, plain, atol=1e-6)


def test_uint8_pixels_binary_and_json_equal_the_decoded_images(client, images):
    from kerasserve.service.inference.imaging import decode_image

    pixels = np.stack([decode_image(image, (224, 224), 10**8) for image in images])
    from_bytes, _ = probabilities(client, [bytes_input(images)])
    from_pixels, _ = probabilities(client, [pixels_input(pixels)])
    np.testing.assert_allclose(from_pixels, from_bytes, atol=1e-5)
    from_json, _ = probabilities(client, [pixels_input(pixels[:1], binary=False)])
    np.testing.assert_allclose(from_json, from_bytes[:1], atol=1e-5)
    # Any size is resized to the model's input.
    other = np.random.default_rng(0).integers(0, 256, (1, 150, 300, 3), dtype=np.uint8)
    resized, _ = probabilities(client, [pixels_input(other)])
    assert resized.shape == (1, CLASSES)


@pytest.mark.parametrize("binary", [True, False])
def test_classification_top3_as_triton_writes_it(client, http, images, binary):
    full, _ = probabilities(client, [bytes_input(images)])
    top3 = [triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=3)]
    got, response = probabilities(client, [bytes_input(images)], outputs=top3)
    assert got.shape == (3, 3)
    assert response["outputs"][0]["datatype"] == "BYTES"
    for row, scores, image in zip(got, full, images, strict=True):
        labels = v1_top(http, image)
        entries = [e.decode() if isinstance(e, bytes) else e for e in row]
        parsed = [re.fullmatch(r"(\d+\.\d{6}):(\d+):(.+)", e) for e in entries]
        assert all(parsed), entries
        indices = [int(m.group(2)) for m in parsed]
        assert indices == list(np.argsort(-scores, kind="stable")[:3])
        for m, i in zip(parsed, indices, strict=True):
            assert float(m.group(1)) == pytest.approx(float(scores[i]), abs=1e-6)
            assert m.group(3) == labels[i][1]


def test_classification_labels_follow_accept_language(client, http, images):
    top1 = [triton.InferRequestedOutput("probabilities", binary_data=False, class_count=1)]
    result = client.infer(
        MODEL,
        [bytes_input(images[:1])],
        outputs=top1,
        headers={"Accept-Language": "zh-CN,zh;q=0.9"},
    )
    (entry,) = result.as_numpy("probabilities").ravel()
    entry = entry.decode() if isinstance(entry, bytes) else entry
    _, index, label = entry.split(":", 2)
    assert result.get_response()["parameters"]["labels_language"] == "zh-CN"
    assert label == v1_top(http, images[0], lang="zh-CN")[int(index)][1]
    assert label != v1_top(http, images[0])[int(index)][1]


def test_versions_answer_separately(client, images):
    newest, newest_meta = probabilities(client, [bytes_input(images[:1])])
    second, second_meta = probabilities(client, [bytes_input(images[:1])], version="2")
    first, first_meta = probabilities(client, [bytes_input(images[:1])], version="1")
    assert (newest_meta["model_version"], second_meta["model_version"]) == ("2", "2")
    assert first_meta["model_version"] == "1"
    np.testing.assert_allclose(newest, second, atol=1e-6)
    # Keras' default initialisation gives near-uniform outputs; the rescaled one does not.
    assert np.abs(first - second).max() > 1e-3


def test_v2_requests_ride_the_models_batcher(http, images):
    def images_total():
        text = http.get("/metrics").text
        found = re.search(rf'kerasserve_images_total{{model="{MODEL}"}} (\S+)', text)
        return float(found.group(1)) if found else 0.0

    async def burst():
        body = {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [base64.b64encode(images[0]).decode()],
                }
            ]
        }
        async with httpx.AsyncClient(base_url=str(http.base_url), timeout=120) as c:
            v2 = [c.post(f"/v2/models/{MODEL}/infer", json=body) for _ in range(6)]
            v1 = [
                c.post(
                    f"/v1/models/{MODEL}/predict",
                    files={"image": ("a.jpg", images[0], "image/jpeg")},
                )
                for _ in range(6)
            ]
            return await asyncio.gather(*v2, *v1)

    before = images_total()
    answers = asyncio.run(burst())
    assert [r.status_code for r in answers] == [200] * 12
    assert images_total() - before == 12
    first_v2 = answers[0].json()["outputs"][0]["data"]
    for r in answers[1:6]:
        np.testing.assert_allclose(r.json()["outputs"][0]["data"], first_v2, atol=1e-5)


# -- errors: {"error": "..."} ---------------------------------------------------------------------


def test_unknown_model_is_404_with_an_error_body(client, http, images):
    with pytest.raises(InferenceServerException) as caught:
        client.infer("nope", [bytes_input(images[:1])])
    assert caught.value.status() == "404"
    assert "nope" in caught.value.message()
    for response in (
        http.get("/v2/models/nope"),
        http.get(f"/v2/models/{MODEL}/versions/7"),
        http.get(f"/v2/models/{MODEL}/versions/latest"),
        http.post("/v2/models/nope/infer", json={"inputs": []}),
    ):
        assert response.status_code == 404
        assert list(response.json()) == ["error"]


def test_bad_image_is_400_naming_the_image(client, images):
    with pytest.raises(InferenceServerException) as caught:
        client.infer(MODEL, [bytes_input([images[0], images[1][:300]])])  # truncated JPEG
    assert caught.value.status() == "400"
    assert caught.value.message().startswith("image 2")
    with pytest.raises(InferenceServerException) as caught:
        client.infer(MODEL, [bytes_input([b"certainly not an image"])])
    assert caught.value.status() == "415"
    assert "unsupported" in caught.value.message()


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 422, "invalid inference request"),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["eA=="]}]}',
            422,
            "unknown input 'x'",
        ),
        (
            b'{"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["%%"]}]}',
            422,
            "is not base64",
        ),
    ],
)
def test_malformed_requests_answer_an_error_body(http, body, status, fragment):
    response = http.post(f"/v2/models/{MODEL}/infer", content=body)
    assert response.status_code == status
    assert fragment in response.json()["error"]


def test_unmatched_v2_paths_and_methods_answer_an_error_body(http):
    missing = http.get("/v2/nothing/here")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    wrong_method = http.get(f"/v2/models/{MODEL}/infer")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert list(wrong_method.json()) == ["error"]
    # The v1 API keeps its own error shape.
    assert http.get("/v1/models/nope").json()["code"] == "model_not_found"


def test_body_over_the_limit_is_413(http):
    response = http.post(f"/v2/models/{MODEL}/infer", content=b"x" * (11 * 1024 * 1024))
    assert response.status_code == 413
    assert "limit" in response.json()["error"]


# -- KServe's own client ---------------------------------------------------------------------------


def test_kserve_rest_client(v2_server, images):
    kserve = pytest.importorskip("kserve", reason="kserve is not installed in this environment")

    async def run():
        config = kserve.RESTConfig(protocol="v2", retries=0, timeout=120)
        async with kserve.InferenceRESTClient(config) as c:
            assert await c.is_server_live(v2_server.base_url)
            assert await c.is_server_ready(v2_server.base_url)
            assert await c.is_model_ready(v2_server.base_url, MODEL)
            assert not await c.is_model_ready(v2_server.base_url, "nope")
            tensor = kserve.InferInput("image", [2], "BYTES")
            tensor.set_data_from_numpy(np.array(images[:2], dtype=np.object_), binary_data=True)
            request = kserve.InferRequest(model_name=MODEL, infer_inputs=[tensor])
            response = await c.infer(v2_server.base_url, request, model_name=MODEL)
            return response.outputs[0].as_numpy()

    got = asyncio.run(run())
    with triton.InferenceServerClient(f"127.0.0.1:{v2_server.port}") as client:
        want, _ = probabilities(client, [bytes_input(images[:2])])
    assert got.shape == (2, CLASSES)
    np.testing.assert_allclose(got, want, atol=1e-6)
