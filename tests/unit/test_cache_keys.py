"""The OpenVINO caches are keyed by what made their contents, our own code's version included:
a cached export or INT8 model made the old way is never served as the new one."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from kerasserve.service.inference import openvino_runtime, quantize  # noqa: E402


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="tiny",
    )


PHOTOS = quantize.PhotoSet((Path("a.jpg"),), "1 photo", frozenset({"0" * 64}))


def test_the_export_key_follows_the_export_code_the_weights_and_the_input(model, monkeypatch):
    key = openvino_runtime.cache_key(model, (32, 32), "tf")
    assert openvino_runtime.cache_key(model, (32, 32), "tf") == key  # stable
    assert openvino_runtime.cache_key(model, (32, 32), "torch") != key
    monkeypatch.setattr(openvino_runtime, "EXPORT_VERSION", openvino_runtime.EXPORT_VERSION + 1)
    assert openvino_runtime.cache_key(model, (32, 32), "tf") != key


def test_the_int8_key_follows_the_quantisation_code_photos_and_preset(monkeypatch):
    key = openvino_runtime.int8_cache_key("export", PHOTOS, "performance")
    assert openvino_runtime.int8_cache_key("export", PHOTOS, "performance") == key
    assert openvino_runtime.int8_cache_key("export", PHOTOS, "mixed") != key
    assert openvino_runtime.int8_cache_key("other", PHOTOS, "performance") != key
    other = quantize.PhotoSet(PHOTOS.paths, PHOTOS.description, frozenset({"1" * 64}))
    assert openvino_runtime.int8_cache_key("export", other, "performance") != key
    monkeypatch.setattr(quantize, "QUANTIZE_VERSION", quantize.QUANTIZE_VERSION + 1)
    assert openvino_runtime.int8_cache_key("export", PHOTOS, "performance") != key
