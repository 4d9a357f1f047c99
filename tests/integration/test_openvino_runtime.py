"""The OpenVINO runtime serves what Keras serves: same pixels in, probabilities within tolerance,
for a model of each preprocessing family; its export cache is reused and invalidated by weights."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino")

from service.errors import ModelLoadError  # noqa: E402
from service.inference import catalogue  # noqa: E402
from service.inference.imaging import decode_image  # noqa: E402
from service.inference.openvino_runtime import DEFAULT_TOLERANCE, OpenVINORuntime  # noqa: E402
from service.inference.runtime import KerasRuntime  # noqa: E402
from tests.support.models import he_rescale, photos  # noqa: E402

BUCKETS = [1, 2, 4]
# One model per preprocessing family: caffe, tf, torch, none (built into the model).
FAMILIES = {"ResNet50": False, "MobileNetV2": True, "DenseNet121": False, "MobileNetV3Small": True}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch):
    path = tmp_path_factory.getbasetemp() / "ov-cache"
    monkeypatch.setenv("KERASSERVE_CACHE_DIR", str(path))
    return path


def build(name: str, rescale: bool):
    spec = catalogue.spec(name)
    # Logits, not softmax: random-weight outputs are near-uniform probabilities, but their
    # logits still differ enough between classes and images for a comparison to mean something.
    model = spec.constructor(weights=None, classifier_activation=None)
    if rescale:
        he_rescale(model)
    return spec, model


def runtimes(spec, model):
    reference = KerasRuntime(model, spec.preprocess_input, spec.input_size, BUCKETS)
    ov = OpenVINORuntime(model, spec.preprocess_mode, spec.input_size, BUCKETS, reference)
    return reference, ov


@pytest.mark.parametrize("name", list(FAMILIES))
def test_openvino_matches_keras_on_the_same_pixels(name):
    spec, model = build(name, FAMILIES[name])
    reference, ov = runtimes(spec, model)
    pixels = np.stack([decode_image(b, spec.input_size, 10**9) for b in photos(3, seed=21)])
    logits = reference.raw(pixels)
    spread = float(np.ptp(logits, axis=1).min())
    assert spread > 1e-2, (
        f"logits nearly constant ({spread:.2g}): the comparison would prove nothing"
    )
    np.testing.assert_allclose(
        ov.raw(pixels), logits, atol=1e-4 * float(np.abs(logits).max()), rtol=1e-4
    )
    expected = reference.predict(pixels)
    got = ov.predict(pixels)
    np.testing.assert_allclose(got, expected, atol=DEFAULT_TOLERANCE, rtol=0)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert ov.max_abs_diff is not None
    assert ov.max_abs_diff <= DEFAULT_TOLERANCE
    # Batched rows equal the same images one at a time (bucket padding mixes nothing in).
    singles = np.concatenate([ov.predict(pixels[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(singles, got, atol=1e-5)


def test_export_cache_is_reused_and_invalidated_by_new_weights(cache_dir):
    spec, model = build("MobileNetV2", True)
    runtimes(spec, model)
    again = runtimes(spec, model)[1]
    assert again.cache_hit
    assert "cache hit" in (again.detail or "")
    root = cache_dir / "openvino"
    exported = {p.name for p in root.iterdir() if p.name != "compiled"}
    weights = model.get_weights()
    weights[-1] = weights[-1] + 0.5  # a changed weights file: the classifier bias
    model.set_weights(weights)
    changed = runtimes(spec, model)[1]
    assert not changed.cache_hit
    assert len({p.name for p in root.iterdir() if p.name != "compiled"} - exported) == 1


def test_runtime_past_tolerance_refuses_to_serve():
    spec, model = build("MobileNetV2", True)
    reference = KerasRuntime(model, spec.preprocess_input, spec.input_size, BUCKETS)
    # Preprocessing declared wrong on purpose: the graph then computes something else.
    with pytest.raises(ModelLoadError, match="differs from Keras by .* refusing to serve"):
        OpenVINORuntime(model, "caffe", spec.input_size, BUCKETS, reference)
