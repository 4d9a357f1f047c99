"""The JAX-backend Keras runtime serves what the TensorFlow Keras runtime serves.

Each model is built here under TensorFlow with He-rescaled weights, saved as `.keras`, and
loaded in a subprocess with `KERAS_BACKEND=jax` (a process runs one Keras backend) on CPU
JAX: same file, same pixels, outputs within 1e-4, one model for each of three preprocessing
families (torch-mode, DenseNet, is left out: its 121 layers took half the module's time to
compile, and torch's mean/std scaling is the same per-channel arithmetic as caffe's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")

from kerasserve.service.errors import ModelLoadError  # noqa: E402
from kerasserve.service.inference import catalogue  # noqa: E402
from kerasserve.service.inference.imaging import decode_image  # noqa: E402
from kerasserve.service.inference.jax_runtime import JaxRuntime  # noqa: E402
from kerasserve.service.inference.runtime import KerasRuntime  # noqa: E402
from tests.support.models import he_rescale, photos  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
# A lone image runs in bucket 1; three are padded into bucket 4.
BUCKETS = [1, 4]
TOLERANCE = 1e-4
# name -> (He-rescale, classifier activation): one model per preprocessing family (tf,
# caffe, none), logits for two, the model's own softmax for one (He-rescaled
# MobileNetV2: its logits spread widely, so its probabilities are far from uniform).
MODELS = {
    "MobileNetV2": (True, "softmax"),
    "ResNet50": (False, None),
    "MobileNetV3Small": (True, None),
}

# Runs under KERAS_BACKEND=jax: loads each saved model, serves the saved pixels through
# JaxRuntime, writes raw outputs, predictions and the runtime's description back.
CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import keras
    import numpy as np

    from kerasserve.service.inference import catalogue, jax_runtime
    from kerasserve.service.inference.jax_runtime import JaxRuntime

    work = Path(sys.argv[1])
    jax_runtime.use_compilation_cache()  # as the server's loading does, before any model
    report = {"backend": keras.backend.backend(), "models": {}}
    for name in json.loads((work / "names.json").read_text()):
        spec = catalogue.spec(name)
        model = keras.saving.load_model(work / f"{name}.keras", compile=False)
        runtime = JaxRuntime(model, spec.preprocess_input, spec.input_size, [1, 4])
        runtime.warm()
        pixels = np.load(work / "pixels.npy")
        np.save(work / f"{name}.raw.npy", runtime.raw(pixels))
        np.save(work / f"{name}.predict.npy", runtime.predict(pixels))
        np.save(work / f"{name}.single.npy", runtime.raw(pixels[:1]))
        np.save(work / f"{name}.preprocess.npy", runtime.preprocess(pixels))
        report["models"][name] = {
            "head": runtime.head.kind,
            "detail": runtime.detail,
            "name": runtime.name,
            "parallelism": runtime.parallelism,
            "max_abs_diff": runtime.max_abs_diff,
            "compilation_cache": runtime.compilation_cache,
            "info": runtime.info().model_dump(),
        }
    report["tensorflow_imported"] = "tensorflow" in sys.modules
    (work / "report.json").write_text(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """TensorFlow's outputs here, JAX's from the subprocess, for every model in MODELS."""
    work = tmp_path_factory.mktemp("jax")
    pixels = np.stack(
        [decode_image(b, (224, 224), 10**9) for b in photos(3, seed=31)]
    )  # 3 images: the runtimes pad them to the bucket of 4
    np.save(work / "pixels.npy", pixels)
    models = {}
    for name, (rescale, activation) in MODELS.items():
        spec = catalogue.spec(name)
        model = spec.constructor(weights=None, classifier_activation=activation)
        if rescale:
            he_rescale(model)
        model.save(work / f"{name}.keras")
        models[name] = (spec, model)
    (work / "names.json").write_text(json.dumps(list(MODELS)))
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
    }
    # The JAX side runs while TensorFlow computes the reference here. Its log goes to a
    # file: a pipe nobody reads until the end could fill up and stall it.
    log = work / "child.log"
    with log.open("w") as sink:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(work)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        reference: dict[str, dict[str, np.ndarray | bool]] = {}
        for name, (spec, model) in models.items():
            keras_runtime = KerasRuntime(model, spec.preprocess_input, spec.input_size, BUCKETS)
            reference[name] = {
                "raw": keras_runtime.raw(pixels),
                "predict": keras_runtime.predict(pixels),
                "preprocess": keras_runtime.preprocess(pixels),
                "head": keras_runtime.head.kind,
            }
        child.wait(timeout=1500)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, f"JAX subprocess failed:\n{log.read_text()[-4000:]}"
    return {
        "work": work,
        "pixels": pixels,
        "reference": reference,
        "report": json.loads((work / "report.json").read_text()),
    }


def test_subprocess_ran_on_jax_without_tensorflow(served):
    report = served["report"]
    assert report["backend"] == "jax"
    # The GPU machine has no TensorFlow: the runtime must never need it.
    assert report["tensorflow_imported"] is False
    for info in report["models"].values():
        assert info["name"] == "keras"
        assert info["parallelism"] == 1
        assert info["max_abs_diff"] == 0.0
        assert info["info"]["name"] == "keras"
        assert info["info"]["detail"] == info["detail"]
        assert info["detail"].startswith("Keras ")
        assert " on JAX " in info["detail"]
        assert "cpu:0" in info["detail"]


def test_compiled_executables_are_kept_for_the_next_start(served):
    """XLA's executables go to the server's cache (`<cache>/jax`), so the next start (and the
    next run of this module) loads them instead of compiling again."""
    from kerasserve.service.settings import cache_home

    folders = {info["compilation_cache"] for info in served["report"]["models"].values()}
    assert folders == {str(cache_home() / "jax")}
    kept = [p for p in Path(folders.pop()).rglob("*") if p.is_file()]
    assert kept, "no executable was written to the compilation cache"


@pytest.mark.parametrize("name", list(MODELS))
def test_jax_outputs_equal_tensorflow_outputs(served, name):
    work, reference = served["work"], served["reference"][name]
    expected = reference["raw"]
    spread = float(np.ptp(expected, axis=1).min())
    assert spread > 1e-3, f"outputs nearly constant ({spread:.2g}): the test would prove nothing"
    got = np.load(work / f"{name}.raw.npy")
    assert got.shape == expected.shape == (3, 1000)
    assert np.isfinite(got).all()
    diff = float(np.abs(got - expected).max())
    assert diff <= TOLERANCE, f"{name}: raw outputs differ from TensorFlow's by {diff:.3g}"
    predicted = np.load(work / f"{name}.predict.npy")
    assert float(np.abs(predicted - reference["predict"]).max()) <= TOLERANCE
    np.testing.assert_allclose(predicted.sum(axis=1), 1.0, atol=1e-4)
    # The same head, read from the model by the shared Keras base (`heads.Head.of`).
    assert served["report"]["models"][name]["head"] == reference["head"]


@pytest.mark.parametrize("name", list(MODELS))
def test_preprocessing_is_the_models_own(served, name):
    got = np.load(served["work"] / f"{name}.preprocess.npy")
    expected = served["reference"][name]["preprocess"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_padding_does_not_change_an_image(served):
    """A lone image (bucket 1) and the same image padded into a batch of 4 agree."""
    work = served["work"]
    for name in MODELS:
        single = np.load(work / f"{name}.single.npy")
        batched = np.load(work / f"{name}.raw.npy")[:1]
        np.testing.assert_allclose(single, batched, atol=TOLERANCE)


def test_refuses_to_run_on_another_backend():
    import keras

    if keras.backend.backend() == "jax":
        pytest.skip("this process already runs Keras on JAX")
    spec = catalogue.spec("MobileNetV3Small")
    model = spec.constructor(weights=None)
    with pytest.raises(ModelLoadError, match="KERAS_BACKEND=jax"):
        JaxRuntime(model, spec.preprocess_input, spec.input_size, BUCKETS)
