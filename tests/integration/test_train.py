"""`kerasserve train` end to end: photos in, a version a polling server serves; retraining swaps
under load with 0 failed requests; the served probabilities are Keras' own (Keras and OpenVINO
runtimes); a write that fails (a full disk) publishes nothing."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.live_server import ROOT, LiveServer, live_server, run_cli
from tests.support.photos_dataset import encode, write_dataset

# Trains and serves several real models: `make test` starts it first (see tests/conftest.py).
pytestmark = pytest.mark.slow

NAME = "colours"
# The user's labels, any text a folder name holds: the server must answer with these.
LABELS = ("红色条纹", "green dots", "blue-checks", "yellow_rings")
SIZE = 48  # MobileNetV2 takes any side from 32 with weights=None; small keeps 2 cores quick
# No ImageNet weights here: a random base with BatchNorm statistics set from the photos.
TRAIN = ("--weights", "none", "--image-size", str(SIZE), "--epochs", "3", "--seed", "7")


def train(data: Path, repo: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("train", str(data), "--repository", str(repo), "--name", NAME, *TRAIN, *extra)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    write_dataset(root, 8, labels=LABELS, seed=3, size=(56, 72))
    (root / LABELS[0] / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    from tests.support.photos_dataset import draw

    webp = encode(draw(1, np.random.default_rng(9), (60, 60)), "WEBP")
    (root / LABELS[1] / "extra.webp").write_bytes(webp)
    return root


@pytest.fixture(scope="module")
def served(data, tmp_path_factory):
    """A server polling an empty repository every second; `kerasserve train` then publishes
    version 1 into it, and the server picks it up by itself."""
    repo = tmp_path_factory.mktemp("repo")
    args = ("--model-repository", str(repo), "--poll-repository-s", "1", "--max-batch-size", "8")
    # An empty repository is not ready (no model): wait for the process to answer instead.
    with live_server(*args, ready_path="/healthz", ready_timeout=120) as server:
        done = train(data, repo)
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for_version(server, 1)
        yield server, repo, done


def wait_for_version(server: LiveServer, version: int, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    info: dict = {}
    while time.monotonic() < deadline:
        r = httpx.get(f"{server.base_url}/v1/models/{NAME}", timeout=10)
        if r.status_code == 200:
            info = r.json()
            if info.get("version") == version and info.get("state") == "ready":
                return info
        time.sleep(0.5)
    raise AssertionError(f"version {version} not served after {timeout}s: {info}\n{server.log()}")


def test_version_1_is_whole_with_metrics_labels_and_config(served, data):
    _, repo, done = served
    folder = repo / NAME / "1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "confusion.png",
        "labels.txt",
        "metrics.json",
        "model.keras",
    ]
    assert (folder / "labels.txt").read_text(encoding="utf-8").splitlines() == sorted(LABELS)
    assert (folder / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["base"] == "MobileNetV2"
    assert metrics["classes"] == sorted(LABELS)
    assert metrics["class_counts"] == {label: 8 + (label == LABELS[1]) for label in LABELS}
    assert set(metrics["per_class"]) == set(LABELS)
    assert 0 <= metrics["accuracy"] <= metrics["top_k_accuracy"] <= 1
    assert metrics["top_k"] == 3
    assert metrics["weights"]["kind"] == "random"
    assert metrics["weights"]["random_base"] == "unit-norm"  # the default
    assert metrics["weights"]["bn_statistics_from_photos"] == 0
    assert len(metrics["dataset_fingerprint"]) == 64
    assert metrics["epochs"] >= 1
    assert metrics["wall_s"] > 0
    # The unreadable file: listed, skipped, counted; the WebP one converted and used.
    assert [u["path"] for u in metrics["unreadable"]] == [str(data / LABELS[0] / "broken.jpg")]
    assert "broken.jpg" in done.stdout
    assert "skipped 1 unreadable file" in done.stdout
    assert "BatchNorm statistics" in done.stdout
    from kerasserve.service.inference.repository import read_config

    config = read_config(repo / NAME / "config.toml")
    assert (config.output_kind, config.preprocess) == ("softmax", "none")
    assert not list(repo.rglob(".train-*"))


def photo_bytes(count: int) -> list[bytes]:
    from tests.support.photos_dataset import draw

    rng = np.random.default_rng(11)
    return [encode(draw(i % 4, rng, (64, 80)), "PNG") for i in range(count)]


def keras_probabilities(model_path: Path, photos: list[bytes]) -> np.ndarray:
    """What Keras itself answers on the server's own decoded pixels."""
    import keras

    from kerasserve.service.inference.imaging import decode_image

    model = keras.saving.load_model(model_path, compile=False)
    pixels = np.stack([decode_image(p, (SIZE, SIZE), 50_000_000) for p in photos])
    return np.asarray(model.predict_on_batch(pixels.astype("float32")))


def served_probabilities(base_url: str, photos: list[bytes], version: int) -> np.ndarray:
    files = [("image", (f"{i}.png", p, "image/png")) for i, p in enumerate(photos)]
    r = httpx.post(f"{base_url}/v1/models/{NAME}/predict?top_k=4", files=files, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["version"] == version
    order = sorted(LABELS)
    out = np.zeros((len(photos), len(order)))
    for row, result in enumerate(body["results"]):
        for p in result["predictions"]:
            out[row, order.index(p["label"])] = p["probability"]
    return out


def test_served_probabilities_are_keras_own(served):
    server, repo, _ = served
    photos = photo_bytes(6)
    served_p = served_probabilities(server.base_url, photos, version=1)
    expected = keras_probabilities(repo / NAME / "1" / "model.keras", photos)
    # The default runtime serves: Keras to 1e-4, OpenVINO FP32 to 1e-3, a reduced precision that
    # passed its accuracy gate (the model is trained) to 0.1.
    runtime = httpx.get(f"{server.base_url}/v1/models/{NAME}").json()["runtime"]
    if runtime["name"] == "keras":
        bound = 1e-4
    else:
        bound = 1e-3 if runtime["precision"] == "fp32" else 0.1
    assert np.abs(served_p - expected).max() <= bound, runtime["detail"]
    assert np.allclose(served_p.sum(axis=1), 1, atol=1e-4)


async def hammer(base_url: str, stop: asyncio.Event, clients: int = 8) -> list:
    payload = photo_bytes(1)[0]
    seen: list = []

    async def client() -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            while not stop.is_set():
                try:
                    r = await http.post(
                        f"{base_url}/v1/models/{NAME}/predict", files={"image": payload}
                    )
                    seen.append((r.status_code, r.json()))
                except httpx.HTTPError as exc:  # a lost request counts as a failure
                    seen.append((None, repr(exc)))

    await asyncio.gather(*(client() for _ in range(clients)))
    return seen


async def test_retraining_publishes_version_2_and_swaps_with_no_failed_request(served, data):
    server, repo, _ = served
    stop = asyncio.Event()
    load = asyncio.create_task(hammer(server.base_url, stop))
    # Version 2 takes the other route for a random base: BatchNorm statistics from the photos.
    done = await asyncio.to_thread(
        train, data, repo, "--seed", "8", "--random-base", "bn-statistics"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{repo / NAME / '2'}" in done.stdout
    await asyncio.to_thread(wait_for_version, server, 2)
    await asyncio.sleep(1.0)
    stop.set()
    seen = await load
    failed = [s for s in seen if s[0] != 200]
    assert not failed, failed[:3]
    versions = [body["model"]["version"] for _, body in seen]
    assert set(versions) == {1, 2}, set(versions)
    assert 1 not in versions[versions.index(2) + 16 :]
    answered = {p["label"] for _, body in seen for r in body["results"] for p in r["predictions"]}
    assert answered
    assert answered <= set(LABELS)
    metrics = json.loads((repo / NAME / "2" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["weights"]["random_base"] == "bn-statistics"
    assert metrics["weights"]["bn_statistics_from_photos"] > 0


def test_openvino_serves_the_trained_model_within_1e_3(served):
    _, repo, _ = served
    latest = max(int(p.name) for p in (repo / NAME).iterdir() if p.name.isdigit())
    photos = photo_bytes(6)
    expected = keras_probabilities(repo / NAME / str(latest) / "model.keras", photos)
    args = ("--model-repository", str(repo), "--runtime", "openvino", "--max-batch-size", "8")
    with live_server(*args) as server:
        info = httpx.get(f"{server.base_url}/v1/models/{NAME}", timeout=10).json()
        assert info["runtime"]["name"] == "openvino", info
        served_p = served_probabilities(server.base_url, photos, version=latest)
    assert np.abs(served_p - expected).max() <= 1e-3


def _limit_file_size() -> None:
    # Any file grown past 1 MB fails to write (EFBIG), as on a full disk; the model is ~9 MB.
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))


def test_a_failed_write_publishes_nothing(data, tmp_path):
    repo = tmp_path / "repo"
    cmd = [sys.executable, "-m", "kerasserve.service", "train", str(data), "--repository"]
    cmd += [str(repo), "--name", NAME, *TRAIN, "--epochs", "1"]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"cannot write version 1 of {NAME!r}" in done.stderr
    assert "Nothing was published" in done.stderr
    assert sorted(p.name for p in repo.iterdir()) == []  # no model folder, no temporary one


def test_weights_path_takes_the_base_without_its_top(data, tmp_path):
    import keras

    from kerasserve.service.training.train import TrainOptions
    from kerasserve.service.training.train import train as train_here

    base = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    path = tmp_path / "base.weights.h5"
    base.save_weights(path)
    lines: list[str] = []
    options = TrainOptions(
        data, tmp_path / "repo", NAME, weights=str(path), image_size=SIZE, epochs=1, verbose=0
    )
    result = train_here(options, say=lines.append)
    weights = result.metrics["weights"]
    assert (weights["kind"], weights["path"]) == ("file", str(path))
    assert weights["bn_statistics_from_photos"] == 0
    assert weights["random_base"] is None
    assert not [line for line in lines if "WARNING" in line]
    trained = keras.saving.load_model(result.folder / "model.keras", compile=False)
    nested = next(layer for layer in trained.layers if layer.name.startswith("mobilenetv2"))
    # The frozen base is the file's, unchanged by training.
    for mine, theirs in zip(nested.weights, base.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def test_an_unknown_base_is_refused_with_close_matches(data, tmp_path):
    from kerasserve.service.training.errors import InvalidOption
    from kerasserve.service.training.train import TrainOptions
    from kerasserve.service.training.train import train as train_here

    options = TrainOptions(data, tmp_path / "repo", NAME, base="MobileNetV9")
    with pytest.raises(InvalidOption, match=r"--base: Unknown model 'MobileNetV9'.*Did you mean"):
        train_here(options)
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
def test_preprocessing_in_the_graph_is_keras_own(mode):
    from keras.src.applications import imagenet_utils

    from kerasserve.service.training.model import preprocessing_layer

    pixels = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = imagenet_utils.preprocess_input(pixels.copy(), mode=mode)
    got = np.asarray(preprocessing_layer(mode)(pixels))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_stage_2_unfreezes_the_top_layers_but_batchnorm(data, tmp_path):
    import keras

    from kerasserve.service.training.model import unfreeze_top
    from kerasserve.service.training.train import TrainOptions
    from kerasserve.service.training.train import train as train_here

    base = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    unfrozen = unfreeze_top(base, 20)
    trainable = [layer for layer in base.layers if layer.trainable]
    assert set(trainable) <= set(base.layers[-20:])
    assert not [layer for layer in trainable if isinstance(layer, keras.layers.BatchNormalization)]
    assert unfrozen == len([layer for layer in trainable if layer.weights]) > 0

    options = TrainOptions(
        data, tmp_path / "repo", NAME, weights="none", image_size=SIZE, epochs=1, verbose=0
    )
    result = train_here(replace(options, fine_tune_layers=20), say=lambda line: None)
    stages = result.metrics["stages"]
    assert [s["stage"] for s in stages] == ["head", "fine_tune"]
    assert stages[1]["layers_unfrozen"] == unfrozen
    assert result.metrics["epochs"] == 2
