"""`--precision auto` (the default): the fastest of int8, bf16 and fp32 whose accuracy gate passes
with the DEFAULT thresholds, chosen at start-up and cached; every model description says which
serves, with its gate figures and the CPU plugin's kernels.

A classifier trained here (tests/support/trained.py: 8 colour/texture classes, each sharing its
colour with one class and its texture with another, so that the top 5 of 8 can differ) earns a
reduced precision, judged on held-out photos of its own classes; the same network with random
weights earns nothing and fp32 serves, with a WARNING that says why.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from tests.support import gate_photos, trained  # noqa: E402
from tests.support.live_server import live_server  # noqa: E402

# Training (101-216 s alone on two cores, more beside the other tests), quantising and two
# starts: past the suite's 600 s per test when the trained model is not cached yet.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# Measured (python -m bench.int8_gate_trained, 2026-12-03 23:11 UTC, seeds 0-3; training is not
# bit-reproducible on CPU): held-out accuracy (Keras) 0.95-1.0 (64 photos); below 0.8 the model
# is not a trained one and the gate would judge noise. Its gate figures here: INT8 top-1
# agreement 99.64-100 %, top-5 overlap 0.979-0.990 (1408 held-out views; AVX-512 VNNI + BF16
# EPYC). Before the recipe fit random views with a decaying rate, INT8 agreed on 97.3-99.9 %
# (1 seed in 4 passed); see tests/support/trained.py.
MIN_HOLDOUT_ACCURACY = 0.8


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("precision-cache")
    with pytest.MonkeyPatch.context() as mp:
        # The server subprocesses inherit it: this module's exports, INT8 models and choices.
        mp.setenv("KERASSERVE_CACHE_DIR", str(path))
        mp.delenv("KERASSERVE_PRECISION", raising=False)
        yield path


@pytest.fixture(scope="module")
def model(tmp_path_factory, cache_dir):
    """The trained classifier, its calibration folder (own photos, with `holdout/`) and the
    held-out photos by class."""
    root = tmp_path_factory.mktemp("trained")
    photos = gate_photos.write(root)
    train, holdout, calibration = photos.train, photos.holdout, photos.calibration
    # Trained once per content and kept (tests/support/trained.py): minutes on two cores.
    result = trained.train_cached(train, holdout, root / "model")
    assert result.holdout_accuracy >= MIN_HOLDOUT_ACCURACY, result
    return result, calibration, holdout


def serve(path, labels, calibration):
    # No --precision: the default is auto.
    return live_server(
        "--model-file",
        str(path),
        "--labels",
        str(labels),
        "--runtime",
        "openvino",
        "--calibration-images",
        str(calibration),
        "--max-batch-size",
        "8",
        ready_timeout=600,
    )


def test_a_trained_model_passes_the_int8_gate_with_default_thresholds_and_the_fastest_serves(
    model,
):
    result, calibration, holdout = model
    with serve(result.model_path, result.labels_path, calibration) as srv:
        info = httpx.get(f"{srv.base_url}/v1/models/colours").json()
        runtime = info["runtime"]
        assert runtime["name"] == "openvino"
        selection = runtime["precision_selection"]
        candidates = selection["candidates"]
        assert selection["cached"] is False
        assert candidates["fp32"]["passed"] is True
        # INT8 earns its place with the default thresholds (0.99, 0.95), on the model's own
        # held-out photos.
        int8 = candidates["int8"]
        assert int8["passed"] is True, int8
        # With 5 classes or fewer every top 5 holds every class: the overlap could not fail.
        assert len(trained.CLASSES) > 5
        assert int8["top1_agreement"] >= 0.99
        assert int8["top5_overlap"] >= 0.95
        assert 0 <= int8["max_prob_diff"] < 1
        assert int8["gate_images"] >= 8 * len(trained.CLASSES)
        # Then the fastest that passed serves: on this tiny network INT8, BF16 and FP32 time
        # within a few per cent of each other, so which one wins is the machine's to say.
        passed = {p: c["img_s"] for p, c in candidates.items() if c["passed"]}
        assert selection["chosen"] == runtime["precision"] == max(passed, key=passed.__getitem__)
        if runtime["precision"] != "fp32":
            assert runtime["top1_agreement"] >= 0.99
            assert runtime["top5_overlap"] >= 0.95
            assert f"held-out {calibration / 'holdout'}" in runtime["detail"]
        assert runtime["kernels"], "the CPU plugin's kernels are reported"
        # The served precision still classifies the held-out photos.
        right = 0
        for label, paths in holdout.items():
            for path in paths:
                r = httpx.post(
                    f"{srv.base_url}/v1/models/colours/predict?top_k=1",
                    files={"image": path.read_bytes()},
                    timeout=60,
                )
                assert r.status_code == 200, r.text
                right += r.json()["results"][0]["predictions"][0]["label"] == label
        total = sum(len(p) for p in holdout.values())
        assert right / total >= MIN_HOLDOUT_ACCURACY
        first = runtime["precision"]

    # A second start reads the choice and the gate figures from the cache: nothing is
    # quantised, measured or timed again.
    with serve(result.model_path, result.labels_path, calibration) as srv:
        runtime = httpx.get(f"{srv.base_url}/v1/models/colours").json()["runtime"]
        assert runtime["precision"] == first
        assert runtime["precision_selection"]["cached"] is True
        assert runtime["precision_selection"]["candidates"]["int8"]["top1_agreement"] >= 0.99
        log = srv.log()
        assert "to INT8 (NNCF" not in log
        assert "(cached)" in runtime["detail"]


def test_random_weights_fail_the_gate_and_fp32_serves_loudly(model, tmp_path):
    import keras

    result, calibration, _ = model
    h, w = trained.INPUT_SIZE
    base = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(h, w, 3), pooling="avg", alpha=0.35
    )
    inputs = keras.Input((h, w, 3))
    head = keras.layers.Dense(len(trained.CLASSES), activation="softmax")
    path = tmp_path / "untrained.keras"
    keras.Model(inputs, head(base(inputs))).save(path)
    with serve(path, result.labels_path, calibration) as srv:
        runtime = httpx.get(f"{srv.base_url}/v1/models/untrained").json()["runtime"]
        log = srv.log()
    assert runtime["precision"] == "fp32"
    assert any("WARNING" in line and "serving FP32" in line for line in log.splitlines()), log
    candidates = runtime["precision_selection"]["candidates"]
    assert candidates["int8"]["passed"] is False
    assert "failed its accuracy gate" in candidates["int8"]["reason"]
    for name in set(candidates) - {"fp32"}:
        assert candidates[name]["passed"] is False, candidates
    assert np.isfinite(candidates["fp32"]["img_s"])
