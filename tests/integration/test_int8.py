"""INT8 OpenVINO: NNCF quantisation on real photos, cached by weights and photos, served only past
an accuracy gate measured on held-out photos against the FP32 Keras model; the gate bites."""

from __future__ import annotations

import io
import logging
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from kerasserve.service.errors import ModelLoadError  # noqa: E402
from kerasserve.service.inference import catalogue, quantize  # noqa: E402
from kerasserve.service.inference.openvino_runtime import OpenVINORuntime, model_input  # noqa: E402
from kerasserve.service.inference.runtime import KerasRuntime  # noqa: E402
from tests.support.models import he_rescale, photos  # noqa: E402

# Quantises several real models: `make test` starts it first (see tests/conftest.py).
pytestmark = pytest.mark.slow

BUCKETS = [1, 2, 4, 8]
# What INT8 keeps of a random network's answers, measured on this test's small CNN (AVX2, NNCF
# 3.4, OpenVINO 2026.4): top-1 agreement 88.6 %, top-5 overlap 0.964 over 132 held-out images.
# Random features tell photos apart by a few percent of their size, about INT8's rounding, so
# no random network reaches the default gate (99 %, 0.95), made for trained weights; the tests
# that pass the gate use these thresholds, and the default gate is shown to refuse.
RANDOM_WEIGHTS_GATE = quantize.Gate(top1_min=0.8, top5_min=0.9)
SIZE = (224, 224)
FILTERS = (32, 64, 128)
CLASSES = 10


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("int8-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERASSERVE_CACHE_DIR", str(path))
        yield path


def fit_pixels(size: tuple[int, int], count: int = 32) -> np.ndarray:
    """Synthetic photos (neither calibration nor gate photos) to set statistics on."""
    from PIL import Image

    h, w = size
    return np.stack(
        [
            np.asarray(Image.open(io.BytesIO(b)).convert("RGB").resize((w, h)))
            for b in photos(count, size=(240, 320), seed=78)
        ]
    )


def settle(model, mode: str, size: tuple[int, int]) -> None:
    """Batch-norm statistics measured on photos, and a classifier bias that removes the logits'
    mean over photos: what a trained network has, so the top classes change with the image
    (with the class-independent part left in, one class wins on every photo)."""
    import keras

    pixels = model_input(fit_pixels(size), mode)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0  # one pass sets the moving statistics to the batch's
    model(pixels, training=True)
    for layer in norms:
        layer.momentum = 0.99
    head = model.layers[-1]
    kernel, bias = head.get_weights()
    logits = np.asarray(model.predict(pixels, batch_size=16, verbose=0))
    head.set_weights([kernel, bias - logits.mean(axis=0)])


def small_cnn():
    """Three He-initialised convolutions and a 10-way head (a user's own small model): shallow
    enough that INT8 keeps most of what tells one photo from another."""
    import keras

    init = keras.initializers.HeNormal(seed=7)
    inputs = keras.Input((*SIZE, 3))
    x = inputs
    for filters in FILTERS:
        x = keras.layers.Conv2D(
            filters, 3, strides=2, padding="same", use_bias=False, kernel_initializer=init
        )(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # Pooled random features differ little from photo to photo; normalised here, as a trained
    # network's features differ, the head sees those differences (and INT8 can keep them).
    x = keras.layers.BatchNormalization()(x)
    outputs = keras.layers.Dense(CLASSES, kernel_initializer=init)(x)
    model = keras.Model(inputs, outputs, name="small_cnn")
    settle(model, "tf", SIZE)
    return model


def tf_preprocess():
    import keras

    return keras.applications.mobilenet_v2.preprocess_input


@pytest.fixture(scope="module")
def small():
    model = small_cnn()
    reference = KerasRuntime(model, tf_preprocess(), SIZE, BUCKETS)
    return model, reference


def int8(model, reference, gate=RANDOM_WEIGHTS_GATE, **kwargs):
    return OpenVINORuntime(
        model, "tf", SIZE, BUCKETS, reference, precision="int8", gate=gate, **kwargs
    )


@pytest.fixture(scope="module")
def served(small):
    model, reference = small
    started = time.perf_counter()
    runtime = int8(model, reference)
    return runtime, time.perf_counter() - started


def test_agreement_counts_top1_matches_and_top5_overlap():
    reference = np.array([[0.5, 0.2, 0.1, 0.09, 0.06, 0.05], [0.1, 0.2, 0.3, 0.15, 0.05, 0.2]])
    same = quantize.agreement(reference, reference)
    assert (same.top1_agreement, same.top5_overlap, same.images) == (1.0, 1.0, 2)
    # Row 0: 0 and 1 swap (top-1 differs, same top-5); row 1: class 4 enters the top 5.
    other = np.array([[0.2, 0.5, 0.1, 0.09, 0.06, 0.05], [0.1, 0.2, 0.3, 0.15, 0.21, 0.01]])
    got = quantize.agreement(reference, other)
    assert got.top1_agreement == 0.5
    assert got.top5_overlap == pytest.approx((1.0 + 0.8) / 2)
    with pytest.raises(ValueError, match="same"):
        quantize.agreement(reference, other[:1])


def test_gate_message_quotes_the_figures_and_thresholds():
    gate = quantize.Gate()
    gate.check(quantize.Agreement(0.99, 0.95, 100))
    with pytest.raises(
        ModelLoadError, match=r"top-1 agreement with FP32 Keras 98\.00% \(needs >= 99%\)"
    ):
        gate.check(quantize.Agreement(0.98, 0.99, 100))
    with pytest.raises(ModelLoadError, match=r"top-5 overlap 0\.940 \(needs >= 0\.95\)"):
        gate.check(quantize.Agreement(1.0, 0.94, 100))


def test_built_in_photos_are_real_disjoint_and_small():
    calibration = quantize.photo_set(None)
    held_out = quantize.holdout_set(calibration)
    assert len(calibration.paths) >= 6
    assert len(held_out.paths) >= 5
    assert not calibration.digests & held_out.digests
    assert {p.name for p in calibration.paths}.isdisjoint(p.name for p in held_out.paths)
    total = sum(p.stat().st_size for p in (*calibration.paths, *held_out.paths))
    assert total < 1_500_000
    notice = (quantize.DATA / "NOTICE.md").read_text()
    for path in (*calibration.paths, *held_out.paths):
        assert f"`{path.parent.name}/{path.name}`" in notice, f"{path.name} has no licence line"
    views = quantize.load_views(held_out, SIZE)
    assert views.shape == (len(held_out.paths) * quantize.VIEWS_PER_PHOTO, *SIZE, 3)
    assert views.shape[0] >= 100
    # Views are different pictures, not copies: every pair differs.
    flat = views.reshape(len(views), -1).astype(np.int16)
    assert len({row.tobytes() for row in flat}) == len(views)


def test_int8_passes_its_gate_and_reports_the_figures(served, small):
    runtime, _ = served
    model, reference = small
    assert runtime.precision == "int8"
    assert runtime.gate_images == 6 * quantize.VIEWS_PER_PHOTO
    assert runtime.top1_agreement is not None
    assert runtime.top1_agreement >= 0.8
    assert runtime.top5_overlap is not None
    assert runtime.top5_overlap >= 0.9
    assert runtime.calibration == f"built-in: 7 photos x {quantize.VIEWS_PER_PHOTO} views"
    assert "int8 (NNCF performance" in (runtime.detail or "")
    assert "gate: top-1 agreement" in (runtime.detail or "")
    # The gate is not passed by outputs that ignore the image: the FP32 top class changes
    # from photo to photo on the gate's own images.
    held_out = quantize.load_views(quantize.holdout_set(quantize.photo_set(None)), SIZE)
    expected = quantize.predict_all(reference.predict, held_out, BUCKETS[-1])
    assert len(set(expected.argmax(axis=1).tolist())) >= 5
    # And it is an INT8 model: not the FP32 numbers.
    got = quantize.predict_all(runtime.predict, held_out, BUCKETS[-1])
    assert np.abs(got - expected).max() > 1e-4
    fp32 = OpenVINORuntime(model, "tf", SIZE, BUCKETS, reference)
    assert fp32.precision == "fp32"
    assert fp32.top1_agreement is None


def test_int8_model_holds_quantised_operations(served, cache_dir):
    runtime, _ = served
    graphs = list(cache_dir.glob("openvino/*/model.xml"))
    int8_graphs = [p for p in graphs if (p.parent / "calibration.json").is_file()]
    assert len(int8_graphs) == 1
    text = int8_graphs[0].read_text()
    assert text.count('type="FakeQuantize"') + text.count('element_type="i8"') >= 4
    info = [op.get_rt_info() for op in runtime._compiled.get_runtime_model().get_ops()]
    precisions = {
        rt["runtimePrecision"].astype(str)
        for rt in info
        if rt["layerType"].astype(str) == "Convolution"
    }
    assert precisions & {"u8", "i8"}, precisions


def test_restart_reuses_the_int8_model_without_requantising(served, small, caplog):
    first, first_s = served
    model, reference = small
    with caplog.at_level(logging.INFO, logger="kerasserve.openvino"):
        started = time.perf_counter()
        again = int8(model, reference)
        again_s = time.perf_counter() - started
    assert again.cache_hit
    assert any("INT8 cache hit" in r.getMessage() for r in caplog.records)
    assert not any("quantised" in r.getMessage() for r in caplog.records)
    assert "cache hit" in (again.detail or "")
    assert again_s < first_s
    assert (again.top1_agreement, again.top5_overlap) == (first.top1_agreement, first.top5_overlap)


def test_other_calibration_photos_make_another_int8_model(small, cache_dir, tmp_path, caplog):
    model, reference = small
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in quantize.photo_set(None).paths[:4]:
        shutil.copy(path, folder / path.name)
    before = {p.name for p in (cache_dir / "openvino").iterdir()}
    with caplog.at_level(logging.INFO, logger="kerasserve.openvino"):
        runtime = int8(model, reference, calibration_dir=folder)
    assert not runtime.cache_hit
    assert any("quantised" in r.getMessage() for r in caplog.records)
    assert runtime.calibration == f"{folder}: 4 photos x {quantize.VIEWS_PER_PHOTO} views"
    assert len({p.name for p in (cache_dir / "openvino").iterdir()} - before) == 1


def test_gate_refuses_a_broken_quantisation(small, tmp_path):
    """Calibrated on flat grey pictures, the activation ranges fit nothing a photo produces."""
    from PIL import Image

    model, reference = small
    folder = tmp_path / "flat"
    folder.mkdir()
    for i, grey in enumerate((120, 128, 136)):
        Image.new("RGB", (64, 64), (grey, grey, grey)).save(folder / f"flat{i}.png")
    with pytest.raises(ModelLoadError, match=r"failed its accuracy gate on 132 held-out images"):
        int8(model, reference, calibration_dir=folder)


def test_default_gate_refuses_what_int8_does_not_follow(served, small):
    """The same cached INT8 model as above, judged by the default thresholds."""
    runtime, _ = served
    model, reference = small
    assert runtime.top1_agreement is not None
    assert runtime.top1_agreement < 0.99
    with pytest.raises(ModelLoadError, match=r"top-1 agreement with FP32 Keras .*needs >= 99%"):
        int8(model, reference, gate=quantize.Gate())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "is not a folder"),
        (lambda tmp: tmp, "holds no photos"),
        (lambda tmp: quantize.HOLDOUT, "include every held-out gate photo"),
    ],
    ids=["missing", "empty", "holdout"],
)
def test_bad_calibration_folders_fail_before_quantising(small, tmp_path, make, message):
    model, reference = small
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match=message):
        int8(model, reference, calibration_dir=make(tmp_path))
    assert time.perf_counter() - started < 30


def test_undecodable_calibration_photo_is_named(small, tmp_path):
    model, reference = small
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ModelLoadError, match=r"calibration photo .*broken\.jpg does not decode"):
        int8(model, reference, calibration_dir=tmp_path)


def test_unknown_precision_is_refused(small):
    model, reference = small
    with pytest.raises(
        ModelLoadError, match=r"precision must be one of fp32, bf16, int8, got 'fp16'"
    ):
        OpenVINORuntime(model, "tf", SIZE, BUCKETS, reference, precision="fp16")


def test_gate_refuses_a_deep_random_network():
    """He-rescaled MobileNetV2: its FP32 top class depends on the photo, but what separates one
    photo from another deep in a random network is smaller than INT8's rounding; the gate
    must refuse it (a real ImageNet network keeps photos apart; random weights do not)."""
    spec = catalogue.spec("MobileNetV2")
    model = spec.constructor(weights=None, classifier_activation=None)
    he_rescale(model)
    settle(model, spec.preprocess_mode, spec.input_size)
    reference = KerasRuntime(model, spec.preprocess_input, spec.input_size, BUCKETS)
    # Even the thresholds the small CNN passes refuse it.
    with pytest.raises(ModelLoadError, match="failed its accuracy gate") as caught:
        OpenVINORuntime(
            model,
            spec.preprocess_mode,
            spec.input_size,
            BUCKETS,
            reference,
            precision="int8",
            gate=RANDOM_WEIGHTS_GATE,
        )
    assert "top-1 agreement with FP32 Keras" in str(caught.value)
