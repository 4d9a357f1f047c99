"""Batching neither mixes nor reorders results: served probabilities equal Keras' own, one by one
and under 32 concurrent clients, for a tf-mode (MobileNetV2) and a caffe-mode (ResNet50) model."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from tests.support.live_server import live_server
from tests.support.models import photos, save_model

MODELS = {"MobileNetV2": True, "ResNet50": False}  # name -> rescale weights (see support.models)
N_IMAGES = 32


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    return {name: save_model(name, directory, rescale) for name, rescale in MODELS.items()}


@pytest.fixture(scope="module")
def fidelity_server(model_files):
    args = []
    for path in model_files.values():
        args += ["--model-file", str(path)]
    # Keras itself (to 1e-5 of predict_on_batch): OpenVINO's own agreement with Keras, within
    # its load-time tolerance, is tests/integration/test_openvino_runtime.py's subject.
    keras_runtime = ("--runtime", "keras")
    with live_server(*args, "--max-batch-size", "32", "--max-wait-ms", "5", *keras_runtime) as srv:
        yield srv


@pytest.fixture(scope="module")
def images():
    return photos(N_IMAGES, seed=11)


def reference(path, images: list[bytes], model_name: str) -> np.ndarray:
    """Keras' own recipe in-process: the same decode, the module's preprocess_input, predict."""
    import keras

    from kerasserve.service.inference import catalogue
    from kerasserve.service.inference.imaging import decode_image

    spec = catalogue.spec(model_name)
    model = keras.saving.load_model(path)
    pixels = np.stack([decode_image(b, spec.input_size, 10**9) for b in images]).astype("float32")
    return np.asarray(model.predict_on_batch(spec.preprocess_input(pixels.copy())))


def probs_of(result: dict, num_classes: int = 1000) -> np.ndarray:
    out = np.zeros(num_classes)
    for p in result["predictions"]:
        out[p["index"]] = p["probability"]
    return out


async def predict_all(base_url: str, model: str, images: list[bytes], concurrency: int):
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:

        async def one(data: bytes) -> dict:
            async with sem:
                r = await client.post(
                    f"/v1/models/{model}/predict?top_k=100",
                    files={"image": ("x.jpg", data, "image/jpeg")},
                )
                assert r.status_code == 200, r.text
                return r.json()["results"][0]

        return await asyncio.gather(*(one(d) for d in images))


@pytest.mark.parametrize("model", list(MODELS))
def test_one_by_one_and_concurrent_results_equal_keras_reference(
    fidelity_server, model_files, images, model
):
    ref = reference(model_files[model], images, model)
    assert ref.max(axis=1).min() > 2 / 1000, "outputs are uniform: the test would prove nothing"
    sequential = asyncio.run(predict_all(fidelity_server.base_url, model, images, 1))
    concurrent = asyncio.run(predict_all(fidelity_server.base_url, model, images, 32))

    for i, (seq, conc) in enumerate(zip(sequential, concurrent, strict=True)):
        top_ref = np.argsort(-ref[i])[:100]
        for served in (seq, conc):
            got = probs_of(served)
            np.testing.assert_allclose(
                got[top_ref[:20]], ref[i][top_ref[:20]], atol=1e-5, rtol=1e-4
            )
            assert served["predictions"][0]["index"] == int(top_ref[0])
    # Distinct images give distinct answers, far beyond the tolerance: a mix-up would show.
    assert min(np.abs(ref[i] - ref[j]).max() for i in range(5) for j in range(i + 1, 5)) > 1e-3
    assert all(r["timing"]["batch_size"] == 1 for r in sequential)
    sizes = [r["timing"]["batch_size"] for r in concurrent]
    assert np.mean(sizes) >= 4, (
        f"mean batch size under 32 clients was {np.mean(sizes):.1f}: {sizes}"
    )


def test_served_model_files_report_their_preprocessing(fidelity_server):
    models = httpx.get(f"{fidelity_server.base_url}/v1/models").json()["models"]
    modes = {
        m["name"]: (m["preprocessing"]["mode"], m["family"], m["weights"]["kind"]) for m in models
    }
    assert modes == {
        "MobileNetV2": ("tf", "MobileNetV2", "model-file"),
        "ResNet50": ("caffe", "ResNet50", "model-file"),
    }
