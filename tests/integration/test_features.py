"""/features returns what the seed's recipe computes in-process, batched or not."""

from __future__ import annotations

import asyncio
import io

import httpx
import numpy as np
import pytest

from kerasserve.service.inference import catalogue
from kerasserve.service.inference.imaging import decode_image
from kerasserve.service.settings import Settings
from tests.support.inprocess import inprocess_server
from tests.support.models import he_rescale, photos


@pytest.fixture(scope="module")
def served():
    # Keras: features come from the Keras model's own layers, and the kernels re-drawn below
    # must be the ones that serve (an OpenVINO export would hold the old ones).
    settings = Settings(
        model=["VGG19", "MobileNetV2"], weights="none", runtime="keras", max_batch_size=4
    )
    with inprocess_server(settings) as (url, state, _):
        # Re-draw MobileNetV2's kernels in place (the compiled graphs read the same variables):
        # with the default init its features are ~1e-12 and a comparison would prove nothing.
        he_rescale(state.registry.get("MobileNetV2").model)
        yield url, state


@pytest.fixture(scope="module")
def images():
    return photos(4, size=(300, 400), seed=31)


def pixels(name: str, images: list[bytes]) -> np.ndarray:
    spec = catalogue.spec(name)
    batch = np.stack([decode_image(b, spec.input_size, 10**9) for b in images]).astype("float32")
    return spec.preprocess_input(batch)


def post(url: str, model: str, images: list[bytes], **params) -> httpx.Response:
    files = [("image", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
    return httpx.post(f"{url}/v1/models/{model}/features", files=files, params=params, timeout=300)


def test_vgg19_block4_pool_equals_the_seed_recipe(served, images):
    import keras

    url, state = served
    base = state.registry.get("VGG19").model
    extractor = keras.Model(inputs=base.input, outputs=base.get_layer("block4_pool").output)
    expected = np.asarray(extractor.predict_on_batch(pixels("VGG19", images[:2])))

    r = post(url, "VGG19", images[:2], layer="block4_pool", pooling="none")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["layer"], body["pooling"], body["shape"]) == ("block4_pool", "none", [14, 14, 512])
    got = np.array([res["vector"] for res in body["results"]]).reshape(expected.shape)
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())

    binary = post(url, "VGG19", images[:2], layer="block4_pool", pooling="none", format="npy")
    assert binary.headers["content-type"] == "application/octet-stream"
    assert binary.headers["x-feature-shape"] == "14,14,512"
    array = np.load(io.BytesIO(binary.content), allow_pickle=False)
    assert array.dtype == np.float32
    np.testing.assert_allclose(array, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_mobilenet_default_is_include_top_false_pooling_avg(served, images):
    from keras.applications import MobileNetV2

    url, state = served
    full = state.registry.get("MobileNetV2").model
    headless = MobileNetV2(weights=None, include_top=False, pooling="avg")
    headless.set_weights(full.get_weights()[:-2])  # everything but the Dense head
    expected = np.asarray(headless.predict_on_batch(pixels("MobileNetV2", images)))

    r = post(url, "MobileNetV2", images)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["layer"], body["pooling"], body["shape"]) == ("out_relu", "avg", [1280])
    got = np.array([res["vector"] for res in body["results"]])
    assert expected.std() > 1e-3, "features nearly constant: the comparison would prove nothing"
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_batched_features_equal_one_by_one(served, images):
    url, _ = served

    async def run():
        async with httpx.AsyncClient(base_url=url, timeout=300) as client:

            async def one(data: bytes) -> list[float]:
                files = {"image": ("x.jpg", data, "image/jpeg")}
                r = await client.post("/v1/models/MobileNetV2/features", files=files)
                assert r.status_code == 200, r.text
                return r.json()["results"][0]

            return await asyncio.gather(*(one(d) for d in images * 2))

    concurrent = asyncio.run(run())
    singles = [post(url, "MobileNetV2", [d]).json()["results"][0] for d in images]
    assert max(r["timing"]["batch_size"] for r in concurrent) > 1
    for i, result in enumerate(concurrent):
        np.testing.assert_allclose(
            result["vector"], singles[i % len(images)]["vector"], rtol=1e-4, atol=1e-6
        )


def test_layers_lists_names_shapes_and_the_default(served):
    url, _ = served
    body = httpx.get(f"{url}/v1/models/VGG19/layers").json()
    names = {layer["name"]: layer["output_shape"] for layer in body["layers"]}
    assert names["block4_pool"] == [None, 14, 14, 512]
    assert body["default_layer"] == "block5_pool"


def test_unknown_layer_is_404_with_close_matches(served, images):
    url, _ = served
    r = post(url, "VGG19", images[:1], layer="block4_poll")
    assert r.status_code == 404
    assert r.json()["code"] == "layer_not_found"
    assert "block4_pool" in r.json()["extra"]["suggestions"]


def test_pooling_a_vector_layer_is_422(served, images):
    url, _ = served
    r = post(url, "VGG19", images[:1], layer="fc2", pooling="avg")
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_request"
    assert "pooling=none" in r.json()["message"]


def test_a_map_too_large_for_json_is_422_pointing_to_npy(served, images):
    url, _ = served
    r = post(url, "VGG19", images[:1], layer="block1_conv1", pooling="none")
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "features_too_large"
    assert "format=npy" in body["message"]
