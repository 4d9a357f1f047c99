"""Both SDK twins against a real `kerasserve serve` (MobileNetV2 whose outputs are not uniform)."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from kerasserve_client import (
    AsyncClient,
    Client,
    InvalidImage,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    Unauthorized,
    features_to_numpy,
)

from schemas import ErrorCode, ModelList, PredictResponse
from tests.support.live_server import live_server
from tests.support.models import photos, save_model

API_KEY = "sdk-test-key"
N_IMAGES = 24


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory):
    """MobileNetV2 with He-rescaled random weights (default init gives uniform outputs, under
    which any equality would hold trivially), behind an API key."""
    path = save_model("MobileNetV2", tmp_path_factory.mktemp("sdk-model"), rescale=True)
    args = ["--model-file", str(path), "--max-batch-size", "16", "--api-key", API_KEY]
    with live_server(*args) as srv:
        yield srv


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return photos(N_IMAGES, seed=23)


@pytest.fixture
def client(sdk_server):
    with Client(sdk_server.base_url, api_key=API_KEY, timeout=120) as c:
        yield c


@pytest.fixture
async def aclient(sdk_server):
    async with AsyncClient(sdk_server.base_url, api_key=API_KEY, timeout=120) as c:
        yield c


def test_predict_a_photo_from_a_path(client, images, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(images[0])

    answer = client.predict(path, top_k=3)

    assert isinstance(answer, PredictResponse)
    assert answer.model.name == "MobileNetV2"
    assert answer.model.weights.kind.value == "model-file"
    (result,) = answer.results
    assert result.filename == "photo.jpg"
    probabilities = [p.probability for p in result.predictions]
    assert len(probabilities) == 3
    assert probabilities == sorted(probabilities, reverse=True)
    assert result.timing.batch_size >= 1
    assert answer.request_id


def test_path_bytes_and_file_object_get_the_same_answer(client, images, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(images[1])

    answers = [
        client.predict(path, top_k=5),
        client.predict(images[1], top_k=5),
        client.predict(io.BytesIO(images[1]), top_k=5),
    ]

    indices = {tuple(p.index for p in a.results[0].predictions) for a in answers}
    assert len(indices) == 1


async def test_async_predict_many_equals_one_by_one(client, aclient, images):
    one_by_one = [client.predict(image, top_k=5).results[0] for image in images]

    many = await aclient.predict_many(images, top_k=5, per_request=4, concurrency=4)

    assert len(many.results) == len(images)
    assert [r.filename for r in many.results] == [f"image-{i}.jpg" for i in range(len(images))]
    _assert_same_predictions(one_by_one, many.results)
    assert all(r.timing.batch_size == 1 for r in one_by_one)
    assert max(r.timing.batch_size for r in many.results) > 1, "nothing was batched"


def test_sync_predict_many_equals_one_by_one(client, images):
    one_by_one = [client.predict(image, top_k=5).results[0] for image in images[:10]]

    many = client.predict_many(images[:10], top_k=5, per_request=4)

    _assert_same_predictions(one_by_one, many.results)
    assert [r.timing.batch_size for r in many.results] == [4] * 8 + [2] * 2


async def test_many_async_predict_calls_at_once_equal_one_by_one(client, aclient, images):
    one_by_one = [client.predict(image, top_k=5).results[0] for image in images[:12]]

    answers = await asyncio.gather(*(aclient.predict(image, top_k=5) for image in images[:12]))

    _assert_same_predictions(one_by_one, [a.results[0] for a in answers])


def test_models_model_health_ready(client):
    models = client.models()

    assert isinstance(models, ModelList)
    assert models.default_model == "MobileNetV2"
    info = client.model("mobilenet_v2")  # names are case- and punctuation-insensitive
    assert info.name == "MobileNetV2"
    assert info.batching.max_batch_size == 16
    assert client.health().status == "ok"
    assert client.ready().ready
    assert client.wait_until_ready(5).models == {"MobileNetV2": "ready"}


async def test_async_models_health_ready(aclient):
    assert (await aclient.models()).default_model == "MobileNetV2"
    assert (await aclient.health()).status == "ok"
    assert (await aclient.wait_until_ready(5)).ready


def test_no_model_named_uses_the_servers_default(client, images):
    assert client.predict(images[0]).model.name == "MobileNetV2"


def test_an_unknown_model_raises_model_not_found_with_the_servers_hint(client, images):
    with pytest.raises(ModelNotFound) as caught:
        client.predict(images[0], model="mobilenetv9")

    assert caught.value.status_code == 404
    assert "mobilenetv9" in caught.value.message
    assert caught.value.request_id


@pytest.mark.parametrize("data", [b"definitely not an image", b"\xff\xd8\xff\xe0 truncated jpeg"])
def test_bytes_that_are_no_image_raise_invalid_image(client, data):
    with pytest.raises(InvalidImage) as caught:
        client.predict(data)

    assert caught.value.status_code in (400, 415)


def test_an_empty_file_raises_invalid_image(client):
    with pytest.raises(InvalidImage) as caught:
        client.predict(b"")

    assert caught.value.code.value == "empty_file"


def test_a_top_k_over_the_limit_raises_invalid_request(client, images):
    with pytest.raises(InvalidRequest) as caught:
        client.predict(images[0], top_k=5000)

    assert caught.value.status_code == 422


async def test_a_missing_api_key_raises_unauthorized(sdk_server, images):
    async with AsyncClient(sdk_server.base_url, model="MobileNetV2") as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.predict(images[0])


def test_features_as_numpy(client, images):
    try:
        answer = client.features(images[0])
    except (NotFound, InvalidRequest) as exc:
        if exc.code in (ErrorCode.NOT_FOUND, ErrorCode.METHOD_NOT_ALLOWED):
            pytest.skip(f"this server has no POST /features route yet ({exc})")
        raise
    array = features_to_numpy(answer)
    assert answer.layer in {layer.name for layer in client.layers().layers}
    assert array.shape == (1, *answer.shape)
    assert np.isfinite(array).all()


def _assert_same_predictions(expected, actual) -> None:
    """Same top classes, same probabilities within float noise of batched vs single runs."""
    assert len(expected) == len(actual)
    for i, (a, b) in enumerate(zip(expected, actual, strict=True)):
        assert [p.index for p in a.predictions] == [p.index for p in b.predictions], i
        np.testing.assert_allclose(
            [p.probability for p in a.predictions],
            [p.probability for p in b.predictions],
            rtol=1e-4,
            atol=1e-6,
            err_msg=f"image {i}",
        )
    # Distinct photos give distinct answers, so a mix-up of results would show above.
    assert len({tuple(p.index for p in r.predictions) for r in expected}) > len(expected) // 2
