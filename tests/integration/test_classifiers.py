"""Classes by example on a running server: POST photos and labels, predict with them at once.

The photos are drawn here: four classes of distinct colour and texture, labelled in Chinese.
The base is a fresh MobileNetV2 (`--weights none`): its pooled features are ~1e-10, but their
direction tells the classes apart (see KERAS-NOTES.md), which is what the fitted heads use.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.live_server import LiveServer, live_server

ADMIN = {"X-API-Key": "teach-key"}
CLASSES = {"红色条纹": "stripes", "绿色圆点": "dots", "蓝色格子": "checks", "黄色圆环": "rings"}
COLOURS = {
    "stripes": (220, 30, 30),
    "dots": (30, 200, 40),
    "checks": (30, 60, 220),
    "rings": (230, 210, 30),
}
# Held-out accuracy of the fitted head on these photos (5 per class to fit, 40 held out),
# measured here on six fresh bases (seeds 100-105): 0.75, 0.85, 0.975, 0.675, 0.975, 0.85;
# served by this test: 0.80 and 0.775. Chance is 0.25; the bar sits below the worst base seen.
MIN_HELD_OUT_ACCURACY = 0.6
# 20 photos of 4 classes answered in about 5-6 s on a quiet moment of this 2-core machine
# (the issue asks under 10 s); the bound is generous for a machine shared with other tests.
MAX_TEACH_S = 30.0


def draw(texture: str, rng: np.random.Generator, size: tuple[int, int] = (160, 200)) -> bytes:
    """One JPEG: the class' colour and texture, jittered, on a noisy grey background."""
    from PIL import Image, ImageDraw

    h, w = size
    grey = int(rng.integers(20, 236))
    image = Image.fromarray(rng.normal(grey, 25, (h, w, 3)).clip(0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(image)
    colour = tuple(int(np.clip(c + rng.integers(-40, 41), 0, 255)) for c in COLOURS[texture])
    step = int(rng.integers(14, 30))
    shift = int(rng.integers(0, step))
    if texture == "stripes":
        for x in range(-h + shift, w, step):
            pen.line([(x, 0), (x + h, h)], fill=colour, width=step // 2)
    elif texture == "dots":
        for y in range(shift, h, step):
            for x in range(shift, w, step):
                pen.ellipse([x - step // 3, y - step // 3, x + step // 3, y + step // 3], colour)
    elif texture == "checks":
        for y in range(0, h, step):
            for x in range(0, w, step):
                if (x // step + y // step) % 2 == 0:
                    pen.rectangle([x + shift, y, x + shift + step - 1, y + step - 1], colour)
    else:
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        for r in range(step // 2, 2 * max(h, w), step):
            pen.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=step // 3)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def photos(per_class: int, seed: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    return [(label, draw(t, rng)) for label, t in CLASSES.items() for _ in range(per_class)]


def teach(
    server: LiveServer,
    name: str,
    examples: list[tuple[str, bytes]],
    *,
    labels: str | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    files = [
        ("image", (f"photo{i}.jpg", data, "image/jpeg")) for i, (_, data) in enumerate(examples)
    ]
    form = {"labels": labels if labels is not None else json.dumps([lab for lab, _ in examples])}
    return httpx.post(
        f"{server.base_url}/v1/classifiers/{name}",
        files=files,
        data=form,
        params=params,
        headers=ADMIN if headers is None else headers,
        timeout=120,
    )


def held_out_accuracy(server: LiveServer, name: str, held_out: list[tuple[str, bytes]]) -> float:
    hits = 0
    for start in range(0, len(held_out), 8):
        chunk = held_out[start : start + 8]
        files = [("image", (f"h{i}.jpg", data, "image/jpeg")) for i, (_, data) in enumerate(chunk)]
        r = httpx.post(
            f"{server.base_url}/v1/models/{name}/predict",
            files=files,
            params={"top_k": 1},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        for (label, _), result in zip(chunk, r.json()["results"], strict=True):
            hits += result["predictions"][0]["label"] == label
    return hits / len(held_out)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    (root / "MobileNetV2" / "1").mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[LiveServer]:
    """A repository serving a fresh MobileNetV2; admin routes open to ADMIN's key."""
    with live_server(
        "--model-repository",
        str(repo),
        "--weights",
        "none",
        "--max-batch-size",
        "8",
        "--admin-key",
        ADMIN["X-API-Key"],
    ) as srv:
        yield srv


def test_teach_then_predict_held_out_in_chinese(server: LiveServer, repo: Path) -> None:
    examples = photos(5, seed=1)
    started = time.perf_counter()
    r = teach(server, "colours", examples)
    wall = time.perf_counter() - started
    assert r.status_code == 200, r.text
    body = r.json()
    print(f"teach: 20 photos of 4 classes in {wall:.2f} s wall; timing {body['timing']}")
    assert wall < MAX_TEACH_S
    assert body["version"] == 1
    assert body["base"] == "MobileNetV2"
    assert body["examples"] == body["new_examples"] == 20
    assert [c["label"] for c in body["classes"]] == list(CLASSES)
    assert all(c["examples"] == 5 and c["new_examples"] == 5 for c in body["classes"])
    assert {h["kind"] for h in body["heads"]} == {"centroid", "logistic"}
    kept = next(h for h in body["heads"] if h["kind"] == body["head"])
    assert body["accuracy"] == kept["loo_accuracy"] == max(h["loo_accuracy"] for h in body["heads"])
    confusion = np.array(body["confusion"])
    assert confusion.shape == (len(CLASSES), len(CLASSES))
    assert list(confusion.sum(axis=1)) == [5] * len(CLASSES)
    assert np.trace(confusion) / confusion.sum() == pytest.approx(body["accuracy"], abs=1e-4)
    model = body["model"]
    assert model["name"] == "colours"
    assert model["version"] == 1
    assert model["num_classes"] == 4
    assert model["output_kind"] == "softmax"
    assert model["preprocessing"]["mode"] == "tf"  # found from the base nested in the file
    version = repo / "colours" / "1"
    assert (version / "model.keras").is_file()
    assert (repo / "colours" / "config.toml").is_file()
    assert (version / "labels.txt").read_text(encoding="utf-8").split() == list(CLASSES)

    accuracy = held_out_accuracy(server, "colours", photos(10, seed=2))
    print(f"held-out accuracy on 40 photos: {accuracy:.3f} (leave-one-out {body['accuracy']})")
    assert accuracy >= MIN_HELD_OUT_ACCURACY


def test_more_examples_make_a_new_version(server: LiveServer, repo: Path) -> None:
    r = teach(server, "colours", photos(2, seed=3))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 2
    assert body["examples"] == 28
    assert body["new_examples"] == 8
    assert all(c["examples"] == 7 and c["new_examples"] == 2 for c in body["classes"])
    described = httpx.get(f"{server.base_url}/v1/models/colours", timeout=10).json()
    assert described["version"] == 2
    assert sorted(p.name for p in (repo / "colours").iterdir() if p.name.isdigit()) == ["1", "2"]
    # A new class joins the earlier ones; another base for the same name is refused.
    rng = np.random.default_rng(4)
    grey = [("灰色", draw("stripes", rng)), ("灰色", draw("dots", rng))]
    refused = teach(server, "colours", grey, params={"base": "MobileNetV3Small"})
    assert refused.status_code == 422
    assert "MobileNetV2" in refused.json()["message"]
    grown = teach(server, "colours", grey)
    assert grown.status_code == 200, grown.text
    assert [c["label"] for c in grown.json()["classes"]] == [*CLASSES, "灰色"]
    assert grown.json()["model"]["num_classes"] == 5


@pytest.mark.parametrize(
    ("name", "labels", "status", "code", "says"),
    [
        ("shapes", '["a", "b"]', 422, "invalid_request", "2 labels for 8 photos"),
        ("shapes", '["a", "b"', 422, "invalid_request", "not valid JSON"),
        ("shapes", json.dumps(["a"] * 8), 422, "invalid_request", "at least 2 classes"),
        ("shapes", json.dumps(["a"] * 7 + ["b"]), 422, "invalid_request", "'b' (1)"),
        ("bad name!", None, 422, "invalid_request", "invalid classifier name"),
        ("MobileNetV2", None, 422, "invalid_request", "keras.applications model"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(
    server: LiveServer,
    repo: Path,
    name: str,
    labels: str | None,
    status: int,
    code: str,
    says: str,
) -> None:
    before = sorted(p.name for p in repo.iterdir())
    r = teach(server, name, photos(2, seed=5), labels=labels)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.json()
    assert says in r.json()["message"], r.json()
    assert sorted(p.name for p in repo.iterdir()) == before


def test_unknown_base_bad_image_and_missing_key(server: LiveServer, repo: Path) -> None:
    examples = photos(2, seed=6)
    r = teach(server, "shapes", examples, params={"base": "ResNet5"})
    assert r.status_code == 404
    assert r.json()["code"] == "model_not_found"
    assert "ResNet50" in r.json()["message"]
    broken = [*examples[:3], (examples[3][0], b"\xff\xd8\xff\xe0 not a jpeg"), *examples[4:]]
    r = teach(server, "shapes", broken)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_image"
    assert "photo3.jpg" in r.json()["message"]
    r = teach(server, "shapes", examples, headers={})
    assert r.status_code == 401
    assert not (repo / "shapes").exists()


def test_delete_retires_the_classifier(server: LiveServer, repo: Path) -> None:
    r = teach(server, "short-lived", photos(2, seed=7))
    assert r.status_code == 200, r.text
    url = f"{server.base_url}/v1/classifiers/short-lived"
    assert httpx.delete(url, headers={}, timeout=30).status_code == 401
    gone = httpx.delete(url, headers=ADMIN, timeout=30)
    assert gone.status_code == 200
    assert gone.json() == {"name": "short-lived", "versions": [1]}
    assert not (repo / "short-lived").exists()
    files = [("image", ("x.jpg", photos(1, seed=8)[0][1], "image/jpeg"))]
    predict = httpx.post(
        f"{server.base_url}/v1/models/short-lived/predict", files=files, timeout=30
    )
    assert predict.status_code == 404
    again = httpx.delete(url, headers=ADMIN, timeout=30)
    assert again.status_code == 404
    assert again.json()["code"] == "model_not_found"
    # Only taught classifiers can be retired this way.
    assert (
        httpx.delete(f"{server.base_url}/v1/classifiers/base-model", headers=ADMIN).status_code
        == 404
    )


def test_without_a_repository_a_base_not_served_is_loaded() -> None:
    """Served: MobileNetV3Small only. Taught on MobileNetV2, which the server loads for the
    embeddings; the classifier lives in a folder of the server's own."""
    with live_server(
        "--model",
        "MobileNetV3Small",
        "--weights",
        "none",
        "--max-batch-size",
        "4",
        "--admin-key",
        ADMIN["X-API-Key"],
    ) as srv:
        r = teach(srv, "colours", photos(3, seed=9), params={"base": "mobilenet_v2"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["base"] == "MobileNetV2"
        assert body["version"] == 1
        assert "kerasserve-classifiers-" in body["stored_in"]
        served = httpx.get(f"{srv.base_url}/v1/models", timeout=10).json()["models"]
        assert sorted(m["name"] for m in served) == ["MobileNetV3Small", "colours"]
        assert held_out_accuracy(srv, "colours", photos(2, seed=10)) > 0.25
        again = teach(srv, "colours", photos(2, seed=11))
        assert again.status_code == 200, again.text
        assert again.json()["version"] == 2
        folder = Path(body["stored_in"]).parent
    assert not folder.exists()  # the server's own folder goes with it
