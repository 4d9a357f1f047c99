"""`teach` and `retire` on both twins: the multipart the server expects, checks before sending."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from PIL import Image

from tests.unit.client.fake_server import JPEG, PNG, model_info, parts

TEACH = ("POST", "/v1/classifiers/宠物")


def taught(name: str, labels: list[str]) -> httpx.Response:
    classes = [
        {"label": label, "examples": 2, "new_examples": 2, "loo_accuracy": 1.0} for label in labels
    ]
    body = {
        "name": name,
        "version": 1,
        "base": "MobileNetV2",
        "layer": "global_average_pooling2d",
        "head": "centroid",
        "temperature": 0.05,
        "accuracy": 0.75,
        "heads": [{"kind": "centroid", "loo_accuracy": 0.75, "loo_log_loss": 0.6}],
        "examples": 4,
        "new_examples": 4,
        "classes": classes,
        "stored_in": "/tmp/repo/pets/1",
        "timing": {"embed_s": 1, "fit_s": 0.1, "save_s": 0.2, "load_s": 1, "total_s": 2.3},
        "model": model_info(name),
    }
    return httpx.Response(200, json=body)


async def test_teach_posts_every_photo_with_its_label_in_upload_order(make, fake):
    fake.script(*TEACH, taught("宠物", ["猫", "dog"]))
    client = make(api_key="admin-key")

    answer = await client.teach("宠物", {"猫": [JPEG, PNG], "dog": [JPEG, JPEG]}, base="ResNet50")

    assert (answer.name, answer.accuracy, answer.version) == ("宠物", 0.75, 1)
    request = fake.requests[-1]
    assert request.url.params["base"] == "ResNet50"
    assert request.headers["authorization"] == "Bearer admin-key"
    sent = parts(request)
    images = [p for p in sent if p.name == "image"]
    assert [p.content_type for p in images] == ["image/jpeg", "image/png"] + ["image/jpeg"] * 2
    (labels,) = [p for p in sent if p.name == "labels"]
    assert json.loads(labels.content.decode()) == ["猫", "猫", "dog", "dog"]


async def test_teach_without_base_lets_the_server_choose(make, fake):
    fake.script(*TEACH, taught("宠物", ["a", "b"]))
    client = make()

    await client.teach("宠物", {"a": [JPEG], "b": [JPEG]})

    assert "base" not in fake.requests[-1].url.params


async def test_teach_shrinks_big_photos_like_predict(make, fake):
    fake.script(*TEACH, taught("宠物", ["a", "b"]))
    client = make()
    big = io.BytesIO()
    Image.new("RGB", (3000, 2000), (200, 30, 30)).save(big, "JPEG")

    await client.teach("宠物", {"a": [big.getvalue()], "b": [JPEG]})

    first = next(p for p in parts(fake.requests[-1]) if p.name == "image")
    assert Image.open(io.BytesIO(first.content)).size == (1024, 683)


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ({"cat": [JPEG, JPEG]}, r"at least 2 labels.*\['cat'\]"),
        ({"cat": [JPEG], "dog": []}, "label 'dog' needs a list of photos"),
        ({"cat": "c.jpg", "dog": [JPEG]}, "label 'cat' needs a list of photos"),
        ({"": [JPEG], "dog": [JPEG]}, "labels must be non-empty text"),
    ],
)
async def test_bad_examples_are_refused_before_sending(make, fake, examples, message):
    client = make()

    with pytest.raises(ValueError, match=message):
        await client.teach("pets", examples)

    assert fake.requests == []


async def test_retire_deletes_the_classifier(make, fake):
    fake.script(
        "DELETE",
        "/v1/classifiers/pets",
        httpx.Response(200, json={"name": "pets", "versions": [1, 2]}),
    )
    client = make(api_key="admin-key")

    retired = await client.retire("pets")

    assert retired.versions == [1, 2]
    assert fake.requests[-1].method == "DELETE"


@pytest.fixture
def labelled(tmp_path):
    for label in ("猫", "dog"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "data" / label / f"{i}.jpg").write_bytes(JPEG)
    (tmp_path / "data" / "dog" / "notes.txt").write_text("not a photo")
    (tmp_path / "data" / ".cache").mkdir()
    return tmp_path / "data"


def test_cli_teach_posts_one_folder_per_label(run, fake, labelled, capsys):
    fake.script("POST", "/v1/classifiers/pets", taught("pets", ["dog", "猫"]))

    code, out, err = run(capsys, "teach", labelled, "--name", "pets", "--base", "MobileNetV2")

    assert code == 0
    assert "teaching 'pets' 4 photos of 2 labels" in err
    assert "pets version 1 on MobileNetV2 (centroid head): leave-one-out accuracy 75.0%" in out
    sent = parts(fake.requests[-1])
    (labels,) = [p for p in sent if p.name == "labels"]
    assert json.loads(labels.content.decode()) == ["dog", "dog", "猫", "猫"]
    assert len([p for p in sent if p.name == "image"]) == 4


def test_cli_teach_refuses_a_folder_with_one_label(run, fake, labelled, capsys):
    code, _, err = run(capsys, "teach", labelled / "dog", "--name", "pets")

    assert code == 2
    assert "needs one folder per label, at least 2" in err
    assert fake.requests == []
