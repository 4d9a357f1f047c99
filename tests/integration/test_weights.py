"""ImageNet weights come from Keras' cache: a pre-placed file is found, an empty cache offline
fails start-up with a message that says what to do. No test ever reaches the internet: an
unreachable loopback proxy makes any download attempt fail at once."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.support.live_server import free_port, live_server, run_cli
from tests.support.models import he_rescale, photos

# Where weights come from is the subject: served by Keras itself (a trained model on the default
# runtime would first pay for OpenVINO's export, INT8 quantisation and the accuracy gates).
KERAS = ("--runtime", "keras")

MOBILENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"


def offline_env(keras_home) -> dict[str, str]:
    port = free_port()  # nothing listens there: connections are refused on loopback
    proxy = f"http://127.0.0.1:{port}"
    return {
        "KERAS_HOME": str(keras_home),
        "HTTPS_PROXY": proxy,
        "HTTP_PROXY": proxy,
        "https_proxy": proxy,
        "http_proxy": proxy,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


@pytest.fixture(scope="module")
def placed_cache(tmp_path_factory):
    """A KERAS_HOME whose cache holds MobileNetV2 weights in the legacy HDF5 layout."""
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    from kerasserve.service.inference import catalogue

    home = tmp_path_factory.mktemp("keras-home")
    (home / "models").mkdir()
    spec = catalogue.spec("MobileNetV2")
    model = spec.constructor(weights=None)
    he_rescale(model, seed=7)
    with h5py.File(home / "models" / MOBILENET_FILE, "w") as f:
        save_weights_to_hdf5_group(f, model)
    image = photos(1, seed=3)[0]
    from kerasserve.service.inference.imaging import decode_image

    pixels = decode_image(image, spec.input_size, 10**9)[None].astype("float32")
    expected = np.asarray(model.predict_on_batch(spec.preprocess_input(pixels)))[0]
    return home, image, expected


def test_preplaced_cache_file_is_served_by_weights_imagenet(placed_cache):
    home, image, expected = placed_cache
    with live_server(
        *KERAS,
        "--model",
        "MobileNetV2",
        "--weights",
        "imagenet",
        "--max-batch-size",
        "2",
        env=offline_env(home),
    ) as srv:
        info = httpx.get(f"{srv.base_url}/v1/models/MobileNetV2").json()
        r = httpx.post(
            f"{srv.base_url}/v1/models/MobileNetV2/predict?top_k=5",
            files={"image": image},
            timeout=60,
        )
    assert info["weights"] == {"kind": "imagenet", "path": None, "random": False, "warning": None}
    body = r.json()
    assert body["model"]["weights"]["kind"] == "imagenet"
    preds = body["results"][0]["predictions"]
    assert expected.max() > 0.01, "weights give uniform outputs: the comparison would be empty"
    assert [p["index"] for p in preds] == list(np.argsort(-expected)[:5])
    np.testing.assert_allclose(
        [p["probability"] for p in preds], np.sort(expected)[::-1][:5], rtol=1e-4, atol=1e-6
    )


def test_empty_cache_offline_fails_startup_saying_what_to_do(tmp_path):
    env = offline_env(tmp_path)
    out = run_cli(
        "serve", "--port", str(free_port()), "--model", "MobileNetV2", "--weights", "imagenet",
        env=env, timeout=180,
    )  # fmt: skip
    assert out.returncode != 0
    log = out.stdout + out.stderr
    assert MOBILENET_FILE in log
    assert str(tmp_path / "models" / MOBILENET_FILE) in log
    assert "--weights none" in log
    assert "--weights PATH" in log


def test_auto_falls_back_to_random_weights_loudly(tmp_path):
    with live_server(
        *KERAS,
        "--model",
        "MobileNetV2",
        "--weights",
        "auto",
        "--max-batch-size",
        "1",
        env=offline_env(tmp_path),
    ) as srv:
        info = httpx.get(f"{srv.base_url}/v1/models/MobileNetV2").json()
        log = srv.log()
    assert info["weights"]["kind"] == "random"
    assert info["weights"]["random"] is True
    assert "not available offline" in info["weights"]["warning"]
    assert "RANDOM weights" in log


def test_weights_path_loads_a_file(tmp_path):
    from kerasserve.service.inference import catalogue

    model = catalogue.spec("MobileNetV2").constructor(weights=None)
    path = tmp_path / "mine.weights.h5"
    model.save_weights(path)
    with live_server(
        *KERAS,
        "--model",
        "MobileNetV2",
        "--weights",
        str(path),
        "--max-batch-size",
        "1",
        env=offline_env(tmp_path),
    ) as srv:
        info = httpx.get(f"{srv.base_url}/v1/models/MobileNetV2").json()
    assert info["weights"] == {"kind": "file", "path": str(path), "random": False, "warning": None}


def test_fetch_weights_reports_a_cached_file_and_fails_clearly_without_one(placed_cache, tmp_path):
    home, _, _ = placed_cache
    ok = run_cli("fetch-weights", "MobileNetV2", env=offline_env(home), timeout=180)
    assert ok.returncode == 0, ok.stderr
    assert f"MobileNetV2: ImageNet weights in {home / 'models'}" in ok.stdout
    bad = run_cli("fetch-weights", "MobileNetV2", env=offline_env(tmp_path), timeout=180)
    assert bad.returncode == 1
    assert MOBILENET_FILE in bad.stderr


def test_random_weights_are_the_same_on_every_start():
    """Seeded: a restart with --weights none finds its OpenVINO export (keyed by the weights'
    values) in the cache instead of exporting and quantising again."""
    from kerasserve.service.inference import catalogue, weights

    spec = catalogue.spec("MobileNetV3Small")
    first, info = weights.build(spec, "none")
    np.random.default_rng().random()  # other draws in between change nothing
    second, _ = weights.build(spec, "none")
    assert info.random
    assert len(first.weights) == len(second.weights)
    for a, b in zip(first.weights, second.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
