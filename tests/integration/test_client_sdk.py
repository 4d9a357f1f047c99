"""Both SDK twins against a real `kerasserve serve` (MobileNetV2 whose outputs are not uniform)."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys

import httpx
import numpy as np
import pytest
from PIL import Image

from kerasserve.schemas import ErrorCode, ModelList, PredictResponse
from kerasserve_client import (
    AsyncClient,
    Client,
    ImageOutcome,
    InvalidImage,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    Unauthorized,
    features_to_numpy,
)
from tests.support.live_server import ROOT, live_server
from tests.support.models import photos, save_model

API_KEY = "sdk-test-key"
N_IMAGES = 24


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory):
    """MobileNetV2 with He-rescaled random weights (default init gives uniform outputs, under
    which any equality would hold trivially), behind an API key."""
    path = save_model("MobileNetV2", tmp_path_factory.mktemp("sdk-model"), rescale=True)
    # The client is the subject: Keras serves (a model file counts as trained, so the default
    # runtime would first pay for its export, INT8 quantisation and the accuracy gates).
    args = ["--model-file", str(path), "--max-batch-size", "16", "--api-key", API_KEY]
    args += ["--runtime", "keras"]
    with live_server(*args) as srv:
        yield srv


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return photos(N_IMAGES, seed=23)


@pytest.fixture
def client(sdk_server):
    with Client(sdk_server.base_url, api_key=API_KEY, timeout=120) as c:
        yield c


@pytest.fixture
async def aclient(sdk_server):
    async with AsyncClient(sdk_server.base_url, api_key=API_KEY, timeout=120) as c:
        yield c


def test_predict_a_photo_from_a_path(client, images, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(images[0])

    answer = client.predict(path, top_k=3)

    assert isinstance(answer, PredictResponse)
    assert answer.model.name == "MobileNetV2"
    assert answer.model.weights.kind.value == "model-file"
    (result,) = answer.results
    assert result.filename == "photo.jpg"
    probabilities = [p.probability for p in result.predictions]
    assert len(probabilities) == 3
    assert probabilities == sorted(probabilities, reverse=True)
    assert result.timing.batch_size >= 1
    assert answer.request_id


def test_path_bytes_and_file_object_get_the_same_answer(client, images, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(images[1])

    answers = [
        client.predict(path, top_k=5),
        client.predict(images[1], top_k=5),
        client.predict(io.BytesIO(images[1]), top_k=5),
    ]

    indices = {tuple(p.index for p in a.results[0].predictions) for a in answers}
    assert len(indices) == 1


async def test_async_predict_many_equals_one_by_one(client, aclient, images):
    one_by_one = [client.predict(image, top_k=5).results[0] for image in images]

    many = await aclient.predict_many(images, top_k=5, per_request=4, concurrency=4)

    assert len(many.results) == len(images)
    assert [r.filename for r in many.results] == [f"image-{i}.jpg" for i in range(len(images))]
    _assert_same_predictions(one_by_one, many.results)
    assert all(r.timing.batch_size == 1 for r in one_by_one)
    assert max(r.timing.batch_size for r in many.results) > 1, "nothing was batched"


def test_sync_predict_many_equals_one_by_one(client, images):
    one_by_one = [client.predict(image, top_k=5).results[0] for image in images[:10]]

    many = client.predict_many(images[:10], top_k=5, per_request=4)

    _assert_same_predictions(one_by_one, many.results)
    # A request's photos go to the batcher as each is decoded: they may ride in more than one
    # batch (the wait for company is bounded by max_wait_ms), but several requests' photos
    # were batched together and no batch passed the server's maximum (16).
    sizes = [r.timing.batch_size for r in many.results]
    assert max(sizes) > 1, sizes
    assert all(1 <= size <= 16 for size in sizes), sizes


async def test_many_async_predict_calls_at_once_equal_one_by_one(client, aclient, images):
    one_by_one = [client.predict(image, top_k=5).results[0] for image in images[:12]]

    answers = await asyncio.gather(*(aclient.predict(image, top_k=5) for image in images[:12]))

    _assert_same_predictions(one_by_one, [a.results[0] for a in answers])


def test_models_model_health_ready(client):
    models = client.models()

    assert isinstance(models, ModelList)
    assert models.default_model == "MobileNetV2"
    info = client.model("mobilenet_v2")  # names are case- and punctuation-insensitive
    assert info.name == "MobileNetV2"
    assert info.batching.max_batch_size == 16
    assert client.health().status == "ok"
    assert client.ready().ready
    assert client.wait_until_ready(5).models == {"MobileNetV2": "ready"}


async def test_async_models_health_ready(aclient):
    assert (await aclient.models()).default_model == "MobileNetV2"
    assert (await aclient.health()).status == "ok"
    assert (await aclient.wait_until_ready(5)).ready


def test_no_model_named_uses_the_servers_default(client, images):
    assert client.predict(images[0]).model.name == "MobileNetV2"


def test_an_unknown_model_raises_model_not_found_with_the_servers_hint(client, images):
    with pytest.raises(ModelNotFound) as caught:
        client.predict(images[0], model="mobilenetv9")

    assert caught.value.status_code == 404
    assert "mobilenetv9" in caught.value.message
    assert caught.value.request_id


@pytest.mark.parametrize("data", [b"definitely not an image", b"\xff\xd8\xff\xe0 truncated jpeg"])
def test_bytes_that_are_no_image_raise_invalid_image(client, data):
    with pytest.raises(InvalidImage) as caught:
        client.predict(data)

    assert caught.value.status_code in (400, 415)


def test_an_empty_file_raises_invalid_image(client):
    with pytest.raises(InvalidImage) as caught:
        client.predict(b"")

    assert caught.value.code.value == "empty_file"


def test_a_top_k_over_the_limit_raises_invalid_request(client, images):
    with pytest.raises(InvalidRequest) as caught:
        client.predict(images[0], top_k=5000)

    assert caught.value.status_code == 422


async def test_a_missing_api_key_raises_unauthorized(sdk_server, images):
    async with AsyncClient(sdk_server.base_url, model="MobileNetV2") as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.predict(images[0])


def test_features_as_numpy(client, images):
    try:
        answer = client.features(images[0])
    except (NotFound, InvalidRequest) as exc:
        if exc.code in (ErrorCode.NOT_FOUND, ErrorCode.METHOD_NOT_ALLOWED):
            pytest.skip(f"this server has no POST /features route yet ({exc})")
        raise
    array = features_to_numpy(answer)
    assert answer.layer in {layer.name for layer in client.layers().layers}
    assert array.shape == (1, *answer.shape)
    assert np.isfinite(array).all()


def test_predict_iter_yields_every_photo_and_the_bad_one_its_own_error(client, images):
    one_by_one = [client.predict(image, top_k=5).results[0] for image in images]
    inputs = [*images[:10], b"definitely not an image", *images[10:]]
    seen = []

    outcomes = list(client.predict_iter(inputs, top_k=5, concurrency=4, on_progress=seen.append))

    assert sorted(o.index for o in outcomes) == list(range(len(inputs)))
    bad = [o for o in outcomes if not o.ok]
    assert [o.index for o in bad] == [10]
    assert isinstance(bad[0].error, InvalidImage)
    good = sorted((o for o in outcomes if o.ok), key=lambda o: o.index)
    _assert_same_predictions(one_by_one, [o.unwrap() for o in good])
    assert max(o.unwrap().timing.batch_size for o in good) > 1, "threads sent nothing together"
    assert (len(seen), seen[-1].done, seen[-1].failed, seen[-1].total) == (25, 25, 1, 25)


async def test_async_predict_iter_equals_one_by_one(client, aclient, images):
    one_by_one = [client.predict(image, top_k=5).results[0] for image in images[:12]]

    outcomes: list[ImageOutcome] = [
        o async for o in aclient.predict_iter(images[:12], top_k=5, concurrency=6)
    ]

    outcomes.sort(key=lambda o: o.index)
    _assert_same_predictions(one_by_one, [o.unwrap() for o in outcomes])
    assert max(o.unwrap().timing.batch_size for o in outcomes) > 1, "nothing was batched"


def test_numpy_and_pil_pixels_get_the_answer_of_the_same_pixels_as_png(sdk_server, images):
    with Image.open(io.BytesIO(images[2])) as photo:
        pil = photo.convert("RGB")
    array = np.asarray(pil)
    png = io.BytesIO()
    pil.save(png, format="PNG")

    with Client(sdk_server.base_url, api_key=API_KEY, timeout=120, pixels="png") as client:
        answers = [client.predict(x, top_k=5).results[0] for x in (png.getvalue(), array, pil)]

    png_answer = answers[0].predictions
    for other in answers[1:]:  # the same pixels, so the same classes and probabilities
        assert [p.index for p in other.predictions] == [p.index for p in png_answer]
        np.testing.assert_allclose(
            [p.probability for p in other.predictions],
            [p.probability for p in png_answer],
            rtol=1e-5,
        )
    assert [a.filename for a in answers] == ["image-0.png"] * 3


def test_pixels_go_as_jpeg_by_default_and_a_big_photo_is_shrunk_first(sdk_server, images):
    with Image.open(io.BytesIO(images[2])) as photo:
        array = np.asarray(photo.convert("RGB"))
    big = io.BytesIO()
    Image.fromarray(array).resize((4000, 3000)).save(big, format="JPEG", quality=95)
    sizes: list[int] = []

    def record(request: httpx.Request) -> None:
        if request.method == "POST":
            sizes.append(len(request.read()))

    hooks = {"request": [record]}

    with (
        httpx.Client(event_hooks=hooks) as http,
        Client(sdk_server.base_url, api_key=API_KEY, timeout=120, http_client=http) as client,
    ):
        from_array = client.predict(array, top_k=5).results[0]
        shrunk = client.predict(big.getvalue(), top_k=5).results[0]
    with (
        httpx.Client(event_hooks=hooks) as http,
        Client(
            sdk_server.base_url, api_key=API_KEY, timeout=120, http_client=http, max_side=None
        ) as client,
    ):
        original = client.predict(big.getvalue(), top_k=5).results[0]

    assert from_array.filename == "image-0.jpg"
    assert from_array.predictions
    assert shrunk.predictions
    assert original.predictions
    assert len(sizes) == 3
    assert sizes[1] < len(big.getvalue()) / 4  # 1024x768 instead of 4000x3000
    assert sizes[2] > len(big.getvalue())  # the original bytes, plus the multipart framing


def test_answers_say_version_output_kind_and_labels_language(client, images):
    info = client.model("MobileNetV2")
    answer = client.predict(images[0], top_k=5)

    assert isinstance(answer.model.version, int)
    assert answer.model.version == info.version
    assert answer.model.output_kind == info.output_kind == "softmax"
    assert answer.model.labels_language == info.labels_languages[0]


def test_lang_picks_the_labels_language(client, images):
    languages = client.model("MobileNetV2").labels_languages
    if "zh-CN" not in languages:
        pytest.skip(f"this model's labels come in {languages} only")

    english = client.predict(images[0], top_k=5, lang="en")
    chinese = client.predict(images[0], top_k=5, lang="zh-CN")

    assert (english.model.labels_language, chinese.model.labels_language) == ("en", "zh-CN")
    en, zh = english.results[0].predictions, chinese.results[0].predictions
    assert [p.index for p in en] == [p.index for p in zh]
    assert all(a.label != b.label for a, b in zip(en, zh, strict=True))


DOC = ROOT / "docs" / "python-client.md"
DOC_EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.fixture(scope="module")
def doc_folder(tmp_path_factory):
    """The files the documentation's examples name."""
    folder = tmp_path_factory.mktemp("doc-examples")
    for name, data in zip(("cat.jpg", "a.jpg", "b.jpg", "c.jpg"), photos(4, seed=31), strict=True):
        (folder / name).write_bytes(data)
    (folder / "photos").mkdir()
    for i, data in enumerate(photos(5, size=(120, 160), seed=32)):
        (folder / "photos" / f"p{i}.jpg").write_bytes(data)
    (folder / "photos" / "broken.jpg").write_bytes(b"not a photo")
    return folder


def test_the_documentation_has_an_example_per_part():
    assert len(DOC_EXAMPLES) >= 10
    text = "\n".join(DOC_EXAMPLES)
    for call in (
        "predict(",
        "predict_iter(",
        "predict_many(",
        "features(",
        "layers(",
        "models(",
        "model(",
        "health(",
        "ready(",
        "wait_until_ready(",
        "encode_image(",
        "lang=",
    ):
        assert call in text, call


@pytest.mark.parametrize("number", range(len(DOC_EXAMPLES)))
def test_each_documentation_example_runs_against_a_live_server(server, doc_folder, number):
    code = DOC_EXAMPLES[number].replace("http://127.0.0.1:8000", server.base_url)

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=doc_folder, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, f"example {number}:\n{code}\n{result.stderr}"
    assert "Traceback" not in result.stderr


def _assert_same_predictions(expected, actual) -> None:
    """Same top classes, same probabilities within float noise of batched vs single runs."""
    assert len(expected) == len(actual)
    for i, (a, b) in enumerate(zip(expected, actual, strict=True)):
        assert [p.index for p in a.predictions] == [p.index for p in b.predictions], i
        np.testing.assert_allclose(
            [p.probability for p in a.predictions],
            [p.probability for p in b.predictions],
            rtol=1e-4,
            atol=1e-6,
            err_msg=f"image {i}",
        )
    # Distinct photos give distinct answers, so a mix-up of results would show above.
    assert len({tuple(p.index for p in r.predictions) for r in expected}) > len(expected) // 2


ADMIN_KEY = "sdk-admin-key"


@pytest.fixture(scope="module")
def admin_server():
    """MobileNetV2 (random weights) with an admin key: classifiers can be taught."""
    args = ["--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "8"]
    with live_server(*args, "--admin-key", ADMIN_KEY) as srv:
        yield srv


def _colour_photos(colour: tuple[int, int, int], n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        pixels = np.clip(rng.normal(colour, 30, (96, 128, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


async def test_teach_on_both_twins_then_predict_with_the_new_labels_and_retire(admin_server):
    colours = {"红": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    examples = {
        label: _colour_photos(rgb, 4, seed=i) for i, (label, rgb) in enumerate(colours.items())
    }
    held_out = {
        label: _colour_photos(rgb, 2, seed=10 + i) for i, (label, rgb) in enumerate(colours.items())
    }

    with Client(admin_server.base_url, api_key=ADMIN_KEY, timeout=300) as client:
        taught = client.teach("sdk-colours", examples, base="MobileNetV2")
        assert (taught.name, taught.version, taught.examples) == ("sdk-colours", 1, 12)
        assert [c.label for c in taught.classes] == sorted(colours) or {
            c.label for c in taught.classes
        } == set(colours)
        # Stated bar: colour classes by a fresh base's cosine centroid (docs/own-classes.md).
        assert taught.accuracy >= 0.6
        answers = client.predict_many(
            [p for photos_ in held_out.values() for p in photos_], model="sdk-colours", top_k=3
        )
        labels = [r.predictions[0].label for r in answers.results]
        assert {p.label for r in answers.results for p in r.predictions} == set(colours)
        expected = [label for label, photos_ in held_out.items() for _ in photos_]
        assert sum(a == b for a, b in zip(labels, expected, strict=True)) >= 4  # of 6

    async with AsyncClient(admin_server.base_url, api_key=ADMIN_KEY, timeout=300) as aclient:
        more = await aclient.teach("sdk-colours", {label: p[:2] for label, p in held_out.items()})
        assert (more.version, more.examples, more.new_examples) == (2, 18, 6)
        retired = await aclient.retire("sdk-colours")
        assert retired.versions == [1, 2]
        with pytest.raises(ModelNotFound):
            await aclient.predict(held_out["红"][0], model="sdk-colours")


def test_teach_without_the_admin_key_is_refused(admin_server):
    with Client(admin_server.base_url, timeout=60) as client, pytest.raises(Unauthorized) as caught:
        client.teach(
            "nope", {"a": _colour_photos((0, 0, 0), 2, 1), "b": _colour_photos((9, 9, 9), 2, 2)}
        )
    assert caught.value.status_code in (401, 403)
