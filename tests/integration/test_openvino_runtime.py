"""The OpenVINO runtime serves what Keras serves: same pixels in, probabilities within tolerance,
for a model of each preprocessing family; its export cache is reused and invalidated by weights."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

pytest.importorskip("openvino")

from kerasserve.service.errors import ModelLoadError  # noqa: E402
from kerasserve.service.inference import catalogue  # noqa: E402
from kerasserve.service.inference.imaging import decode_image  # noqa: E402
from kerasserve.service.inference.openvino_runtime import (  # noqa: E402
    DEFAULT_TOLERANCE,
    REQUESTS_PER_STREAM,
    OpenVINORuntime,
)
from kerasserve.service.inference.runtime import KerasRuntime  # noqa: E402
from tests.support.models import he_rescale, photos  # noqa: E402

# Exports and checks several real models: `make test` starts it first (see tests/conftest.py).
pytestmark = pytest.mark.slow

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


@pytest.fixture(scope="module")
def mobilenet():
    """The He-rescaled MobileNetV2 that most tests here read, built once for the module: no test
    changes it (the export-cache test, which changes weights, builds its own)."""
    return build("MobileNetV2", True)


def runtimes(spec, model):
    reference = KerasRuntime(model, spec.preprocess_input, spec.input_size, BUCKETS)
    ov = OpenVINORuntime(model, spec.preprocess_mode, spec.input_size, BUCKETS, reference)
    return reference, ov


@pytest.mark.parametrize("name", list(FAMILIES))
def test_openvino_matches_keras_on_the_same_pixels(request, name):
    if name == "MobileNetV2":
        spec, model = request.getfixturevalue("mobilenet")
    else:
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


def test_runtime_past_tolerance_refuses_to_serve(mobilenet):
    spec, model = mobilenet
    reference = KerasRuntime(model, spec.preprocess_input, spec.input_size, BUCKETS)
    # Preprocessing declared wrong on purpose: the graph then computes something else.
    with pytest.raises(ModelLoadError, match="differs from Keras by .* refusing to serve"):
        OpenVINORuntime(model, "caffe", spec.input_size, BUCKETS, reference)


def test_streams_run_batches_side_by_side_and_keep_each_result_apart(mobilenet):
    spec, model = mobilenet
    reference = KerasRuntime(model, spec.preprocess_input, spec.input_size, BUCKETS)
    ov = OpenVINORuntime(model, "tf", spec.input_size, BUCKETS, reference, streams=2)
    assert ov.streams == 2
    assert ov.parallelism == 2 * REQUESTS_PER_STREAM
    assert "2 stream(s)" in (ov.detail or "")
    pixels = np.stack([decode_image(b, spec.input_size, 10**9) for b in photos(8, seed=5)])
    # Batches of different sizes and images, so a result handed to the wrong caller shows.
    batches = [pixels[0:1], pixels[1:3], pixels[3:7], pixels[7:8]]
    expected = [reference.predict(b) for b in batches]
    with ThreadPoolExecutor(ov.parallelism) as pool:
        for _ in range(5):
            for got, want in zip(pool.map(ov.predict, batches), expected, strict=True):
                np.testing.assert_allclose(got, want, atol=DEFAULT_TOLERANCE, rtol=0)
    # Serving's path: batches started from one thread, finished by OpenVINO's own.
    done: dict[int, Any] = {}
    finished = threading.Event()

    def collect(i: int) -> Callable[[Any], None]:
        def take(result: Any) -> None:
            done[i] = result
            if len(done) == len(batches):
                finished.set()

        return take

    assert not ov.start(list(batches[0]), collect(0))  # no jobs before `serve`
    ov.serve()
    for i, b in enumerate(batches):
        assert ov.start(list(b), collect(i))
    assert finished.wait(60)
    for i, want in enumerate(expected):
        np.testing.assert_allclose(ov.head(done[i]), want, atol=DEFAULT_TOLERANCE, rtol=0)
    one = OpenVINORuntime(model, "tf", spec.input_size, BUCKETS, reference, streams=1)
    assert one.streams == 1
    assert "1 stream(s) over" in (one.detail or "")


def test_served_openvino_reports_its_check_and_streams_and_batches_concurrent_clients():
    import httpx

    from tests.support.live_server import live_server

    images = photos(12, size=(240, 320), seed=9)
    with (
        live_server(
            "--model",
            "MobileNetV2",
            "--weights",
            "none",
            "--runtime",
            "openvino",
            # FP32 as such (streams, batching); the default auto is tests/integration/test_precision.py.
            "--precision",
            "fp32",
            "--max-batch-size",
            "4",
            "--no-calibrate-batch",
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):
        info = client.get("/v1/models/MobileNetV2").json()
        assert info["runtime"]["name"] == "openvino"
        assert 0 <= info["runtime"]["max_abs_diff"] <= DEFAULT_TOLERANCE
        assert "stream(s)" in info["runtime"]["detail"]
        assert info["batching"]["max_concurrent_batches"] >= REQUESTS_PER_STREAM

        def predict(data: bytes) -> dict:
            r = client.post(
                "/v1/models/MobileNetV2/predict", files={"image": ("p.jpg", data, "image/jpeg")}
            )
            assert r.status_code == 200, r.text
            return r.json()["results"][0]

        alone = [predict(data) for data in images]
        with ThreadPoolExecutor(12) as pool:
            together = list(pool.map(predict, images))
    # The same answer for each image, whichever batch and stream it rode in.
    for one, many in zip(alone, together, strict=True):
        assert [p["index"] for p in one["predictions"]] == [p["index"] for p in many["predictions"]]
        np.testing.assert_allclose(
            [p["probability"] for p in one["predictions"]],
            [p["probability"] for p in many["predictions"]],
            atol=1e-5,
        )
    assert max(r["timing"]["batch_size"] for r in together) > 1


def test_auto_serves_the_runtime_it_measured_faster(mobilenet):
    import re

    from kerasserve.service.inference.runtime_factory import make_runtime

    spec, model = mobilenet
    args = (model, spec.preprocess_input, spec.preprocess_mode, spec.input_size, BUCKETS)
    chosen = make_runtime("auto", *args, tolerance=DEFAULT_TOLERANCE)
    found = re.search(r"runtime auto: (\w+) (\d+) img/s vs (\w+) (\d+) img/s", chosen.detail or "")
    assert found, chosen.detail
    assert found.group(1) == chosen.name
    assert {found.group(1), found.group(3)} == {"keras", "openvino"}
    assert int(found.group(2)) >= int(found.group(4))


def test_auto_falls_back_to_keras_loudly_when_openvino_fails_its_check(mobilenet):
    from kerasserve.service.inference.runtime_factory import make_runtime

    spec, model = mobilenet
    # The OpenVINO graph gets the wrong (caffe) preprocessing: it cannot match Keras.
    args = (model, spec.preprocess_input, "caffe", spec.input_size, BUCKETS)
    chosen = make_runtime("auto", *args, tolerance=DEFAULT_TOLERANCE)
    assert chosen.name == "keras"
    assert "OpenVINO fp32 rejected" in (chosen.detail or "")


def test_the_export_cache_keeps_only_the_most_recently_used_entries(tmp_path, monkeypatch):
    import os
    import time

    from kerasserve.service.inference.openvino_runtime import cache_root, prune_cache

    monkeypatch.setenv("KERASSERVE_CACHE_DIR", str(tmp_path))
    root = cache_root()
    entries = []
    for i in range(5):
        entry = root / f"entry{i}"
        entry.mkdir(parents=True)
        (entry / "model.xml").write_text("x")
        os.utime(entry, (time.time() - 100 + i, time.time() - 100 + i))
        entries.append(entry)
    (root / "compiled").mkdir()
    for i in range(6):
        blob = root / "compiled" / f"{i}.blob"
        blob.write_bytes(b"x")
        os.utime(blob, (time.time() - 100 + i, time.time() - 100 + i))
    # entry0 is the oldest but in use: it is kept and becomes the newest.
    removed = prune_cache([entries[0]], limit=2)
    kept = sorted(p.name for p in root.iterdir() if p.name != "compiled")
    assert kept == ["entry0", "entry4"]
    assert {p.name for p in removed} >= {"entry1", "entry2", "entry3", "0.blob", "1.blob"}
    assert sorted(p.name for p in (root / "compiled").iterdir()) == [
        "2.blob", "3.blob", "4.blob", "5.blob",
    ]  # fmt: skip
