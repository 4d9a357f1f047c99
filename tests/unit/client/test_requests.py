"""What the twins send (paths, query, multipart parts, headers) and what they return."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

from kerasserve.schemas import (
    FeaturesResponse,
    Health,
    LayerList,
    ModelInfo,
    ModelList,
    PredictResponse,
    Readiness,
)
from kerasserve_client import __version__, features_to_numpy
from tests.unit.client.fake_server import JPEG, PNG, FakeServer, error, parts


@pytest.fixture
def jpeg_file(tmp_path: Path) -> Path:
    path = tmp_path / "cat.jpg"
    path.write_bytes(JPEG)
    return path


async def test_predict_sends_one_image_part_and_returns_a_predict_response(make, fake, jpeg_file):
    client = make(model="MobileNetV2")

    answer = await client.predict(jpeg_file, top_k=3)

    assert isinstance(answer, PredictResponse)
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.url.path == "/v1/models/MobileNetV2/predict"
    assert dict(request.url.params) == {"top_k": "3"}
    (part,) = parts(request)
    assert (part.name, part.filename, part.content_type, part.content) == (
        "image",
        "cat.jpg",
        "image/jpeg",
        JPEG,
    )
    (result,) = answer.results
    assert result.filename == "cat.jpg"
    assert [p.index for p in result.predictions] == [len(JPEG), len(JPEG) + 1, len(JPEG) + 2]
    assert answer.model.name == "MobileNetV2"
    assert answer.request_id == "req-1"


@pytest.mark.parametrize(
    ("make_input", "filename", "content_type"),
    [
        pytest.param(lambda p: str(p), "cat.jpg", "image/jpeg", id="str path"),
        pytest.param(lambda p: p, "cat.jpg", "image/jpeg", id="Path"),
        pytest.param(lambda p: p.read_bytes(), "image-0.jpg", "image/jpeg", id="bytes"),
        pytest.param(
            lambda p: bytearray(p.read_bytes()), "image-0.jpg", "image/jpeg", id="bytearray"
        ),
        pytest.param(
            lambda p: memoryview(p.read_bytes()), "image-0.jpg", "image/jpeg", id="memoryview"
        ),
        pytest.param(
            lambda p: io.BytesIO(p.read_bytes()), "image-0.jpg", "image/jpeg", id="BytesIO"
        ),
        pytest.param(lambda p: p.open("rb"), "cat.jpg", "image/jpeg", id="open file"),
    ],
)
async def test_every_kind_of_image_input_uploads_the_same_bytes(
    make, fake, jpeg_file, make_input, filename, content_type
):
    client = make(model="MobileNetV2")
    image = make_input(jpeg_file)

    await client.predict(image)

    if hasattr(image, "close"):
        image.close()
    (part,) = parts(fake.requests[0])
    assert (part.filename, part.content_type, part.content) == (filename, content_type, JPEG)


async def test_content_type_is_sniffed_from_bytes_whatever_the_file_is_called(make, fake, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(PNG)
    client = make(model="MobileNetV2")

    await client.predict(path)

    (part,) = parts(fake.requests[0])
    assert part.content_type == "image/png"


async def test_unknown_bytes_go_as_octet_stream_for_the_server_to_judge(make, fake):
    client = make(model="MobileNetV2")

    await client.predict(b"not an image")

    (part,) = parts(fake.requests[0])
    assert (part.filename, part.content_type) == ("image-0", "application/octet-stream")


async def test_a_text_mode_file_is_refused_with_a_hint(make, tmp_path):
    path = tmp_path / "cat.jpg"
    path.write_text("text")
    client = make(model="MobileNetV2")

    with path.open() as text_file, pytest.raises(TypeError, match="open it in binary mode"):
        await client.predict(text_file)


async def test_an_unsupported_input_type_is_refused(make):
    client = make(model="MobileNetV2")

    with pytest.raises(TypeError, match="pass a path, bytes, a file opened 'rb', a uint8 numpy"):
        await client.predict(12345)


async def test_a_missing_file_raises_before_anything_is_sent(make, fake, tmp_path):
    client = make(model="MobileNetV2")

    with pytest.raises(FileNotFoundError):
        await client.predict(tmp_path / "nope.jpg")
    assert fake.requests == []


async def test_top_k_is_left_to_the_server_when_not_given(make, fake):
    client = make(model="MobileNetV2")

    await client.predict(JPEG)

    assert "top_k" not in fake.requests[0].url.params


@pytest.mark.parametrize("top_k", [0, -1])
async def test_top_k_below_one_is_refused_before_sending(make, fake, top_k):
    client = make(model="MobileNetV2")

    with pytest.raises(ValueError, match=f"top_k must be >= 1, got {top_k}"):
        await client.predict(JPEG, top_k=top_k)
    assert fake.requests == []


async def test_model_names_are_quoted_into_the_path(make):
    fake = FakeServer(models=("my model/v2",))
    client = make(fake)

    await client.predict(JPEG, model="my model/v2")

    assert fake.requests[0].url.raw_path == b"/v1/models/my%20model%2Fv2/predict"


async def test_no_model_means_the_servers_default_asked_once(make, fake):
    fake.default = "MobileNetV2"
    client = make()

    await client.predict(JPEG)
    await client.predict(JPEG)

    assert fake.paths() == [
        "GET /v1/models",
        "POST /v1/models/MobileNetV2/predict",
        "POST /v1/models/MobileNetV2/predict",
    ]


async def test_the_clients_model_is_used_without_asking(make, fake):
    fake.models = ("MobileNetV2", "ResNet50")
    client = make(model="ResNet50")

    await client.predict(JPEG)

    assert fake.paths() == ["POST /v1/models/ResNet50/predict"]


async def test_a_call_model_beats_the_clients(make, fake):
    fake.models = ("MobileNetV2", "ResNet50")
    client = make(model="ResNet50")

    await client.predict(JPEG, model="MobileNetV2")

    assert fake.paths() == ["POST /v1/models/MobileNetV2/predict"]


async def test_one_served_model_is_the_default_even_when_unnamed(make):
    fake = FakeServer(models=("EfficientNetB0",), default="")
    client = make(fake)

    answer = await client.predict(JPEG)

    assert answer.model.name == "EfficientNetB0"


async def test_no_default_among_several_models_asks_for_model(make):
    fake = FakeServer(models=("MobileNetV2", "ResNet50"), default="")
    client = make(fake)

    with pytest.raises(
        ValueError, match=r"names no default model; pass model=.*MobileNetV2, ResNet50"
    ):
        await client.predict(JPEG)


async def test_predict_many_splits_into_requests_and_keeps_input_order(make, fake):
    client = make(model="MobileNetV2")
    images = [JPEG + b"x" * i for i in range(5)]

    answer = await client.predict_many(images, per_request=2, top_k=1)

    predict_requests = [r for r in fake.requests if r.url.path.endswith("/predict")]
    # Sent side by side (both twins), so in any order; the answer is still in input order.
    assert sorted(len(parts(r)) for r in predict_requests) == [1, 2, 2]
    assert [r.filename for r in answer.results] == [f"image-{i}.jpg" for i in range(5)]
    assert [r.predictions[0].index for r in answer.results] == [len(JPEG) + i for i in range(5)]
    assert answer.request_id is None  # several requests: no single id to quote


async def test_predict_many_in_one_request_keeps_its_request_id(make):
    client = make(model="MobileNetV2")

    answer = await client.predict_many([JPEG, PNG], per_request=8)

    assert answer.request_id == "req-1"
    assert len(answer.results) == 2


async def test_predict_many_of_nothing_is_refused(make):
    client = make(model="MobileNetV2")

    with pytest.raises(ValueError, match="at least one image"):
        await client.predict_many([])


async def test_predict_many_of_one_path_string_is_refused(make):
    client = make(model="MobileNetV2")

    with pytest.raises(TypeError, match="takes a list of images"):
        await client.predict_many("cat.jpg")


async def test_predict_many_raises_the_first_error_itself(make, fake):
    client = make(model="MobileNetV2")
    fake.script("POST", "/v1/models/MobileNetV2/predict", error(400, "invalid_image", "bad"))

    from kerasserve_client import InvalidImage

    with pytest.raises(InvalidImage, match="bad"):
        await client.predict_many([JPEG] * 4, per_request=1)


async def test_features_sends_layer_and_pooling_and_parses(make, fake, jpeg_file):
    client = make(model="MobileNetV2")

    answer = await client.features(jpeg_file, layer="block_16_project", pooling="max")

    assert isinstance(answer, FeaturesResponse)
    (request,) = fake.requests
    assert request.url.path == "/v1/models/MobileNetV2/features"
    assert dict(request.url.params) == {"pooling": "max", "layer": "block_16_project"}
    assert [p.filename for p in parts(request)] == ["cat.jpg"]
    assert answer.layer == "block_16_project"
    assert answer.results[0].vector == [0.0, 1.0, 2.0, float(len(JPEG))]


async def test_features_defaults_leave_layer_and_pooling_to_the_server(make, fake):
    client = make(model="MobileNetV2")

    answer = await client.features(JPEG)

    # The server's defaults: its last spatial map, avg-pooled (and none for a vector layer).
    assert dict(fake.requests[0].url.params) == {}
    assert answer.pooling == "avg"


async def test_layers_lists_what_features_can_read(make, fake):
    client = make(model="MobileNetV2")

    layers = await client.layers()

    assert isinstance(layers, LayerList)
    assert layers.layers[0].output_shape == [None, 7, 7, 1280]
    assert fake.paths() == ["GET /v1/models/MobileNetV2/layers"]


def test_features_to_numpy_stacks_vectors_in_the_declared_shape():
    np = pytest.importorskip("numpy")
    response = FeaturesResponse.model_validate(
        {
            "model": "M",
            "layer": "l",
            "pooling": "none",
            "shape": [2, 2],
            "results": [
                {"vector": [1, 2, 3, 4], "timing": _timing()},
                {"vector": [5, 6, 7, 8], "timing": _timing()},
            ],
        }
    )

    array = features_to_numpy(response)

    assert array.dtype == np.float32
    assert array.shape == (2, 2, 2)
    assert array[1, 1, 0] == 7


def test_features_to_numpy_refuses_a_result_without_vector():
    response = FeaturesResponse(
        model="M",
        layer="l",
        pooling="avg",
        shape=[3],
        results=[{"filename": "a.jpg", "timing": _timing()}],
    )

    with pytest.raises(ValueError, match=r"result 0 \(a.jpg\) carries no vector"):
        features_to_numpy(response)


async def test_models_model_health_ready_return_schema_objects(make, fake):
    client = make()

    assert isinstance(await client.models(), ModelList)
    info = await client.model("MobileNetV2")
    assert isinstance(info, ModelInfo)
    assert info.batching.max_batch_size == 16
    assert await client.health() == Health(status="ok", version="0.1.0")
    assert await client.ready() == Readiness(ready=True, models={"MobileNetV2": "ready"})
    assert fake.paths() == [
        "GET /v1/models",
        "GET /v1/models/MobileNetV2",
        "GET /healthz",
        "GET /readyz",
    ]


async def test_ready_reports_not_ready_instead_of_raising_on_503(make, fake):
    fake.ready = False
    client = make()

    readiness = await client.ready()

    assert readiness.ready is False
    assert client.sleeps == []  # a readiness answer is not retried


async def test_api_key_goes_as_bearer_token(make, fake):
    client = make(api_key="s3cret")

    await client.health()

    assert fake.requests[0].headers["authorization"] == "Bearer s3cret"


async def test_no_api_key_sends_no_authorization(make, fake):
    client = make()

    await client.health()

    assert "authorization" not in fake.requests[0].headers


async def test_user_agent_and_extra_headers(make, fake):
    client = make(headers={"x-request-id": "mine"})

    await client.health()

    headers = fake.requests[0].headers
    assert headers["user-agent"].startswith(f"kerasserve-client/{__version__} httpx/")
    assert headers["x-request-id"] == "mine"
    assert headers["accept"] == "application/json"


async def test_timeout_applies_to_every_request(make, fake):
    client = make(timeout=7.5)

    await client.health()

    assert fake.requests[0].extensions["timeout"] == httpx.Timeout(7.5).as_dict()


def test_base_url_may_carry_a_path_prefix_and_trailing_slash():
    from kerasserve_client import Client

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"status": "ok", "version": "1"})

    with Client("http://proxy.test/kerasserve/", transport=httpx.MockTransport(handler)) as client:
        client.health()

    assert seen == ["http://proxy.test/kerasserve/healthz"]


def _timing() -> dict[str, float]:
    return {"queue_ms": 0, "inference_ms": 1, "batch_size": 1}
