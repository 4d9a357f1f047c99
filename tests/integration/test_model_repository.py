"""A model repository behind a real server: per-model settings, every head kind against Keras,
hot swap under 32 clients, unload, the memory bound, and models that fail without stopping others."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.live_server import live_server

SIZE = 48
# Admin routes are closed without an admin key (--admin-key).
ADMIN_KEY = "repo-admin"
ADMIN = {"X-API-Key": ADMIN_KEY}


def tiny_model(head: str, units: int, seed: int):
    """A small conv net with a head of the given kind; weights large enough to separate images."""
    import keras

    init = keras.initializers.RandomNormal(stddev=0.6, seed=seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", kernel_initializer=init)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    activation = {
        "softmax": "softmax",
        "logits": None,
        "binary": "sigmoid",
        "multi_label": "sigmoid",
    }
    out = keras.layers.Dense(units, activation=activation[head], kernel_initializer=init)(x)
    return keras.Model(inputs, out, name=f"tiny_{head}")


def png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "PNG")
    return buf.getvalue()


def images(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    out = []
    for i in range(count):
        base = np.stack([xx * (i + 1) * 5, yy * (i + 3) * 3, (xx + yy) * (i % 4 + 1) * 2], -1)
        noisy = (base % 256) + rng.normal(0, 30, (SIZE, SIZE, 3))
        out.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return out


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


HEADS = {
    "cats": ("softmax", 3),
    "scores": ("logits", 5),
    "dogcheck": ("binary", 1),
    "tags": ("multi_label", 4),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repository")
    for i, (name, (head, units)) in enumerate(HEADS.items()):
        (root / name / "1").mkdir(parents=True)
        tiny_model(head, units, seed=i).save(root / name / "1" / "model.keras")
    write(root / "cats" / "labels.txt", "tabby\nsiamese\npersian\n")
    write(
        root / "cats" / "config.toml",
        'preprocess = "tf"\nruntime = "keras"\n[batching]\nmax_batch_size = 4\nmax_wait_ms = 2\n',
    )
    write(root / "scores" / "config.toml", 'preprocess = "torch"\n[batching]\nmax_batch_size = 8\n')
    write(root / "dogcheck" / "labels.txt", "not a dog\ndog\n")
    write(root / "dogcheck" / "config.toml", 'preprocess = "caffe"\n')
    write(root / "tags" / "labels.en.txt", "sky\ntree\nwater\nperson\n")
    write(root / "tags" / "labels.zh.txt", "天空\n树\n水\n人\n")
    write(
        root / "tags" / "config.toml",
        'preprocess = "none"\n[labels]\nen = "labels.en.txt"\n"zh-CN" = "labels.zh.txt"\n',
    )
    # A model whose config is wrong: reported as failed, the others serve.
    (root / "broken" / "1").mkdir(parents=True)
    write(root / "broken" / "config.toml", "[batching]\nmax_batch_size = 0\n")
    return root


@pytest.fixture(scope="module")
def server(repo):
    with live_server(
        "--model-repository", str(repo), "--max-wait-ms", "3", "--admin-key", ADMIN_KEY
    ) as srv:
        yield srv


def expected_probabilities(
    model_path: Path, head: str, mode: str, pixels: np.ndarray
) -> np.ndarray:
    """What Keras itself gives for these pixels, turned into probabilities by the head's rule."""
    import keras
    from keras.src.applications import imagenet_utils

    model = keras.saving.load_model(model_path, compile=False)
    x = pixels[None].astype("float32")
    if mode != "none":
        x = imagenet_utils.preprocess_input(x, mode=mode)
    raw = np.asarray(model(x, training=False))[0]
    if head == "logits":
        e = np.exp(raw - raw.max())
        return e / e.sum()
    if head == "binary":
        return np.array([1 - raw[0], raw[0]])
    return raw


def test_the_repository_serves_each_model_with_its_own_settings(server):
    listing = httpx.get(f"{server.base_url}/v1/models").json()
    models = {m["name"]: m for m in listing["models"]}
    assert set(models) == {"broken", "cats", "dogcheck", "scores", "tags"}
    assert models["cats"]["batching"]["max_batch_size"] == 4
    assert models["cats"]["batching"]["max_wait_ms"] == 2
    assert models["scores"]["batching"]["max_batch_size"] == 8
    assert models["dogcheck"]["batching"]["max_wait_ms"] == 3  # the server's flag
    assert models["cats"]["preprocessing"]["mode"] == "tf"
    assert models["scores"]["preprocessing"]["mode"] == "torch"
    assert models["tags"]["labels_languages"] == ["en", "zh-CN"]
    for name, (head, _) in HEADS.items():
        assert models[name]["state"] == "ready"
        assert models[name]["output_kind"] == head
        assert models[name]["version"] == 1
    assert models["dogcheck"]["num_classes"] == 2


def test_a_bad_config_fails_that_model_naming_file_key_and_expectation(server, repo):
    broken = httpx.get(f"{server.base_url}/v1/models/broken").json()
    assert broken["state"] == "failed"
    assert str(repo / "broken" / "config.toml") in broken["error"]
    assert "batching.max_batch_size" in broken["error"]
    assert "greater than or equal to 1" in broken["error"]
    r = httpx.post(
        f"{server.base_url}/v1/models/broken/predict", files={"image": png(images(1)[0])}
    )
    assert r.status_code == 503
    assert r.json()["code"] == "model_unavailable"
    assert httpx.get(f"{server.base_url}/readyz").status_code == 200


@pytest.mark.parametrize("name", list(HEADS))
def test_each_head_kind_matches_keras_on_the_same_pixels(server, repo, name):
    head, _ = HEADS[name]
    mode = {"cats": "tf", "scores": "torch", "dogcheck": "caffe", "tags": "none"}[name]
    pixels = images(3, seed=7)
    # The default runtime serves: Keras to 2e-5; OpenVINO FP32 within its load-time check's
    # tolerance; a reduced precision that passed its gate (a model file counts as trained) to
    # 0.05. The head's own rules below hold for every one of them.
    runtime = httpx.get(f"{server.base_url}/v1/models/{name}").json()["runtime"]
    exact = runtime["name"] == "keras"
    atol = 2e-5 if exact else 1e-4 if runtime["precision"] == "fp32" else 0.05
    for image in pixels:
        expected = expected_probabilities(repo / name / "1" / "model.keras", head, mode, image)
        r = httpx.post(
            f"{server.base_url}/v1/models/{name}/predict",
            params={"top_k": 10},
            files={"image": ("x.png", png(image), "image/png")},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"]["output_kind"] == head
        got = np.zeros(len(expected))
        for p in body["results"][0]["predictions"]:
            got[p["index"]] = p["probability"]
        np.testing.assert_allclose(got, expected, atol=atol)
        if head == "multi_label":
            # Independent probabilities: never renormalised into one distribution.
            assert abs(got.sum() - 1) > 1e-3
        else:
            assert got.sum() == pytest.approx(1, abs=1e-5)
    assert len(set(np.round(got, 4))) > 1  # outputs differ: the comparison means something


def test_labels_follow_the_language_asked_for(server):
    image = png(images(1)[0])
    zh = httpx.post(
        f"{server.base_url}/v1/models/tags/predict",
        files={"image": image},
        headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"},
    ).json()
    assert zh["model"]["labels_language"] == "zh-CN"
    assert {p["label"] for p in zh["results"][0]["predictions"]} <= {"天空", "树", "水", "人"}
    en = httpx.post(
        f"{server.base_url}/v1/models/tags/predict", params={"lang": "en"}, files={"image": image}
    ).json()
    assert en["model"]["labels_language"] == "en"
    assert [p["index"] for p in en["results"][0]["predictions"]] == [
        p["index"] for p in zh["results"][0]["predictions"]
    ]


def test_the_repository_index_lists_every_folder(server):
    index = httpx.get(f"{server.base_url}/v1/repository/index", headers=ADMIN).json()
    rows = {row["name"]: row for row in index["models"]}
    assert rows["cats"]["loaded_versions"] == [1]
    assert rows["broken"]["state"] == "failed"


def _clone_version(repo: Path, name: str, version: int, seed: int) -> None:
    head, units = HEADS[name]
    folder = repo / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    tiny_model(head, units, seed=seed).save(folder / "model.keras")


async def _hammer(base: str, name: str, stop: asyncio.Event, clients: int = 32) -> list:
    payload = png(images(1, seed=3)[0])
    seen: list = []

    async def client() -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            while not stop.is_set():
                try:
                    r = await http.post(
                        f"{base}/v1/models/{name}/predict", files={"image": payload}
                    )
                    body = r.json()
                    seen.append((r.status_code, body.get("model", {}).get("version"), body))
                except httpx.HTTPError as exc:  # a lost request counts as an error
                    seen.append((None, None, repr(exc)))

    await asyncio.gather(*(client() for _ in range(clients)))
    return seen


async def test_hot_swap_under_32_clients_loses_nothing(server, repo):
    _clone_version(repo, "cats", 2, seed=42)
    stop = asyncio.Event()
    load = asyncio.create_task(_hammer(server.base_url, "cats", stop))
    await asyncio.sleep(1.5)
    async with httpx.AsyncClient(timeout=120) as http:
        swapped = await http.post(f"{server.base_url}/v1/models/cats/load", headers=ADMIN)
        assert swapped.status_code == 200, swapped.text
        assert swapped.json()["version"] == 2
        await asyncio.sleep(1.5)
        stop.set()
        seen = await load
        after = await http.post(
            f"{server.base_url}/v1/models/cats/predict", files={"image": png(images(1)[0])}
        )
        old = await http.post(
            f"{server.base_url}/v1/models/cats/versions/1/predict",
            files={"image": png(images(1)[0])},
        )
    errors = [s for s in seen if s[0] != 200]
    assert not errors, errors[:3]
    versions = [v for _, v, _ in seen]
    assert set(versions) == {1, 2}, set(versions)
    # Traffic moved over at once: no answer from version 1 after the first from version 2.
    first_v2 = versions.index(2)
    assert 1 not in versions[first_v2 + 64 :]
    assert after.json()["model"]["version"] == 2
    assert old.status_code == 404  # the latest-1 policy retired version 1
    assert len(seen) > 100


async def test_unload_drains_then_answers_404_and_load_brings_it_back(server):
    stop = asyncio.Event()
    load = asyncio.create_task(_hammer(server.base_url, "scores", stop, clients=8))
    await asyncio.sleep(1.0)
    async with httpx.AsyncClient(timeout=120) as http:
        unloaded = await http.post(f"{server.base_url}/v1/models/scores/unload", headers=ADMIN)
        assert unloaded.status_code == 200
        assert unloaded.json()["state"] == "unavailable"
        stop.set()
        seen = await load
        gone = await http.post(
            f"{server.base_url}/v1/models/scores/predict", files={"image": png(images(1)[0])}
        )
        assert gone.status_code == 404
        assert gone.json()["code"] == "model_not_found"
        assert "unloaded" in gone.json()["message"]
        # Accepted requests finished; those that came after the unload got 404, nothing else.
        assert {s for s, _, _ in seen} <= {200, 404}
        assert any(s == 200 for s, _, _ in seen)
        back = await http.post(f"{server.base_url}/v1/models/scores/load", headers=ADMIN)
        assert back.status_code == 200
        again = await http.post(
            f"{server.base_url}/v1/models/scores/predict", files={"image": png(images(1)[0])}
        )
        assert again.status_code == 200


def test_a_load_that_fails_answers_503_and_what_served_still_serves(server, repo):
    broken = repo / "dogcheck" / "2"
    broken.mkdir()
    (broken / "model.keras").write_bytes(b"not a Keras file")
    try:
        r = httpx.post(f"{server.base_url}/v1/models/dogcheck/load", headers=ADMIN, timeout=120)
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["code"] == "model_unavailable"
        assert "dogcheck did not load" in body["message"]
        assert "the versions that served before still serve" in body["message"]
        still = httpx.post(
            f"{server.base_url}/v1/models/dogcheck/predict", files={"image": png(images(1)[0])}
        )
        assert still.status_code == 200, still.text
        assert still.json()["model"]["version"] == 1
    finally:
        shutil.rmtree(broken)
    assert server.process.poll() is None


def test_polling_picks_up_a_new_version_by_itself(tmp_path):
    root = tmp_path / "repo"
    (root / "cats" / "1").mkdir(parents=True)
    tiny_model("softmax", 3, seed=0).save(root / "cats" / "1" / "model.keras")
    write(root / "cats" / "config.toml", 'preprocess = "tf"\n[versions]\npolicy = "all"\n')
    with live_server("--model-repository", str(root), "--poll-repository-s", "0.5") as srv:
        # A version folder seen before its file is whole (a copy still running): the poll's
        # load fails, logged once; it is read again once the file lands, not given up on.
        half = root / "cats" / "2" / "model.keras"
        half.parent.mkdir()
        half.write_bytes((root / "cats" / "1" / "model.keras").read_bytes()[:4096])
        import time

        start = time.monotonic()
        while "model cats failed to load" not in srv.log() and time.monotonic() - start < 60:
            time.sleep(0.2)
        assert "model cats failed to load" in srv.log()
        time.sleep(1.0)  # two more polls of the same half-written folder
        assert srv.log().count("model cats failed to load") == 1, "retried without a change"
        _clone_version(root, "cats", 2, seed=5)
        deadline = 60
        start = time.monotonic()
        while time.monotonic() - start < deadline:
            info = httpx.get(f"{srv.base_url}/v1/models/cats").json()
            if info.get("versions") == [1, 2]:
                break
            time.sleep(0.5)
        assert info["versions"] == [1, 2], info
        # Same architecture as version 1: its runtime and batch cap are taken, not re-measured.
        assert re.search(
            r"runtime (keras|openvino) (fp32|bf16|int8) and its batch cap inherited", srv.log()
        )
        v1 = httpx.post(
            f"{srv.base_url}/v1/models/cats/versions/1/predict", files={"image": png(images(1)[0])}
        )
        assert v1.json()["model"]["version"] == 1
        latest = httpx.post(
            f"{srv.base_url}/v1/models/cats/predict", files={"image": png(images(1)[0])}
        )
        assert latest.json()["model"]["version"] == 2
        shutil.rmtree(root / "cats" / "2")
        start = time.monotonic()
        while time.monotonic() - start < deadline:
            if httpx.get(f"{srv.base_url}/v1/models/cats").json().get("versions") == [1]:
                break
            time.sleep(0.5)
        assert httpx.get(f"{srv.base_url}/v1/models/cats").json()["versions"] == [1]


USER_KEY, BOSS_KEY = "user", "boss"


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """Two models, room for two, an API key and an admin key: one server for the admin-key and
    the load-past-the-limit tests below (each asks its own question of it)."""
    root = tmp_path_factory.mktemp("limited")
    for i, name in enumerate(("a", "b")):
        (root / name / "1").mkdir(parents=True)
        tiny_model("softmax", 3, seed=i).save(root / name / "1" / "model.keras")
        write(root / name / "config.toml", 'preprocess = "tf"\n')
    with live_server(
        "--model-repository", str(root), "--max-loaded-models", "2",
        "--api-key", USER_KEY, "--admin-key", BOSS_KEY,
    ) as srv:  # fmt: skip
        yield srv


def test_admin_routes_need_an_admin_key_when_keys_are_configured(limited):
    srv = limited
    url = f"{srv.base_url}/v1/repository/index"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"X-API-Key": USER_KEY}).status_code == 401
    assert httpx.get(url, headers={"X-API-Key": BOSS_KEY}).status_code == 200
    predict = f"{srv.base_url}/v1/models/a/predict"
    image = {"image": png(images(1)[0])}
    assert httpx.post(predict, files=image, headers={"X-API-Key": USER_KEY}).status_code == 200


def test_a_load_past_max_loaded_models_is_refused_clearly(limited):
    srv = limited
    boss, user = {"X-API-Key": BOSS_KEY}, {"X-API-Key": USER_KEY}
    r = httpx.post(f"{srv.base_url}/v1/models/a/load", headers=boss, timeout=60)
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "too_many_models"
    assert "--max-loaded-models 2" in body["message"]
    # Still serving after the refusal.
    ok = httpx.post(
        f"{srv.base_url}/v1/models/a/predict", files={"image": png(images(1)[0])}, headers=user
    )
    assert ok.status_code == 200
    unload_b = httpx.post(f"{srv.base_url}/v1/models/b/unload", headers=boss, timeout=60)
    assert unload_b.status_code == 200
    load_a = httpx.post(f"{srv.base_url}/v1/models/a/load", headers=boss, timeout=60)
    assert load_a.status_code == 200


def test_past_max_loaded_models_at_start_up_the_server_is_ready_with_what_fits(tmp_path):
    """Regression: models past the limit stayed `loading` for good and /readyz answered 503;
    a model that raised something other than a ModelLoadError while loading (here a
    grayscale model fed RGB batches) stopped the whole server."""
    import keras

    root = tmp_path / "repo"
    for i, name in enumerate(("a", "b", "c", "d")):
        (root / name / "1").mkdir(parents=True)
        tiny_model("softmax", 3, seed=i).save(root / name / "1" / "model.keras")
        write(root / name / "config.toml", 'preprocess = "tf"\n')
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    gray = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x), name="gray")
    (root / "bad" / "1").mkdir(parents=True)
    gray.save(root / "bad" / "1" / "model.keras")
    write(root / "bad" / "config.toml", 'preprocess = "tf"\n')
    # Loaded in folder order: a, b, bad (fails: it does not count), c, then d is past the limit.
    with live_server("--model-repository", str(root), "--max-loaded-models", "3") as srv:
        assert httpx.get(f"{srv.base_url}/readyz").status_code == 200
        models = {m["name"]: m for m in httpx.get(f"{srv.base_url}/v1/models").json()["models"]}
        assert {n for n, m in models.items() if m["state"] == "ready"} == {"a", "b", "c"}
        assert models["d"]["state"] == "unavailable", models["d"]
        assert "--max-loaded-models 3" in models["d"]["error"]
        assert models["bad"]["state"] == "failed", models["bad"]
        assert models["bad"]["error"]
        ok = httpx.post(f"{srv.base_url}/v1/models/c/predict", files={"image": png(images(1)[0])})
        assert ok.status_code == 200, ok.text
        refused = httpx.post(
            f"{srv.base_url}/v1/models/d/predict", files={"image": png(images(1)[0])}
        )
        assert refused.status_code == 404
        assert "--max-loaded-models 3" in refused.json()["message"]


def test_the_index_does_not_walk_the_repository_per_request():
    from kerasserve.service.inference.registry import Registry

    class CountingRepository:
        scans = 0

        def scan(self):
            self.scans += 1
            return []

    repository = CountingRepository()
    registry = Registry(repository, decoder=None)  # type: ignore[arg-type]

    for _ in range(50):
        registry.index()
    assert repository.scans == 1
    registry._scanned = (registry._scanned[0] - Registry.INDEX_MAX_AGE_S, [])
    registry.index()
    assert repository.scans == 2
