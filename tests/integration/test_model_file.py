"""A user's own fine-tuned model: the seed's InceptionV3 with a 200-class head and a labels file."""

from __future__ import annotations

import httpx
import pytest

from tests.support.live_server import free_port, live_server, run_cli
from tests.support.models import photos


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    import keras

    directory = tmp_path_factory.mktemp("fine-tuned")
    base = keras.applications.InceptionV3(
        weights=None, include_top=False, input_shape=(299, 299, 3)
    )
    inputs = keras.Input((299, 299, 3))
    x = base(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(200, activation="softmax", name="birds")(x)
    model = keras.Model(inputs, outputs, name="birds200")
    path = directory / "birds.keras"
    model.save(path)
    labels = directory / "labels.txt"
    labels.write_text("".join(f"{i:03d}.Bird_species_{i}\n" for i in range(200)), encoding="utf-8")

    unsafe = keras.Sequential(
        [
            keras.Input((299, 299, 3)),
            keras.layers.Lambda(lambda t: t * 2.0),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="inception_v3_lambda",
    )
    unsafe_path = directory / "unsafe.keras"
    unsafe.save(unsafe_path)
    return path, labels, unsafe_path


def test_fine_tuned_inception_with_labels_file(fine_tuned):
    path, labels, _ = fine_tuned
    # A user's own file and labels are the subject: served by Keras itself (a trained 200-class
    # InceptionV3 on the default runtime first pays for its export, quantisation and gates).
    with live_server(
        "--model-file", str(path), "--labels", str(labels), "--max-batch-size", "2",
        "--runtime", "keras",
    ) as srv:  # fmt: skip
        info = httpx.get(f"{srv.base_url}/v1/models/birds").json()
        r = httpx.post(
            f"{srv.base_url}/v1/models/birds/predict?top_k=3",
            files={"image": photos(1)[0]},
            timeout=60,
        )
        legacy = httpx.post(f"{srv.base_url}/predict", files={"image": photos(1)[0]}, timeout=60)
    assert info["num_classes"] == 200
    assert info["input_shape"] == [299, 299, 3]
    assert info["family"] == "InceptionV3"
    assert info["preprocessing"]["mode"] == "tf"
    assert info["weights"] == {
        "kind": "model-file",
        "path": str(path),
        "random": False,
        "warning": None,
    }
    preds = r.json()["results"][0]["predictions"]
    assert len(preds) == 3
    assert all(p["label"].startswith(f"{p['index']:03d}.Bird_species_") for p in preds)
    assert legacy.json()["success"] is True


def test_model_file_with_python_code_is_refused_unless_the_operator_opts_out(fine_tuned, tmp_path):

    _, _, unsafe = fine_tuned
    out = run_cli("serve", "--port", str(free_port()), "--model-file", str(unsafe))
    assert out.returncode != 0
    assert "safe_mode=True" in out.stdout + out.stderr
    with live_server(
        "--model-file",
        str(unsafe),
        "--unsafe-model-files",
        "--preprocess",
        "tf",
        "--max-batch-size",
        "1",
        "--runtime",
        "keras",
    ) as srv:
        info = httpx.get(f"{srv.base_url}/v1/models/unsafe").json()
    assert info["state"] == "ready"


def test_labels_that_do_not_match_the_model_fail_startup(fine_tuned, tmp_path):

    path, _, _ = fine_tuned
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n", encoding="utf-8")
    out = run_cli(
        "serve", "--port", str(free_port()), "--model-file", str(path), "--labels", str(short)
    )
    assert out.returncode != 0
    assert "have 2 labels but the model serves 200 classes" in out.stdout + out.stderr
