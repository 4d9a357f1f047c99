"""`predict_iter` on both twins: an outcome per image, its own errors, progress, concurrency, stop."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import httpx
import numpy as np
import pytest

from kerasserve_client import (
    AsyncClient,
    Client,
    ConnectError,
    ImageOutcome,
    InputError,
    InvalidImage,
    InvalidRequest,
    ModelNotFound,
    Progress,
    Unauthorized,
)
from tests.unit.client.conftest import BASE_URL
from tests.unit.client.fake_server import BAD_IMAGE, JPEG, PNG, FakeServer, error, parts


async def collect(twin, images, **kwargs) -> list[ImageOutcome]:
    outcomes = twin.client.predict_iter(images, **kwargs)
    if twin.is_async:
        return [outcome async for outcome in outcomes]
    return list(outcomes)


def image(i: int) -> bytes:
    """A distinct JPEG per number: the fake's top class is its byte count."""
    return JPEG + bytes(i)


async def test_each_image_gets_its_own_outcome_matched_by_index(make, fake):
    client = make(model="MobileNetV2")
    images = [image(i) for i in range(10)]

    outcomes = await collect(client, images, top_k=2, concurrency=3)

    assert sorted(o.index for o in outcomes) == list(range(10))
    for outcome in outcomes:
        assert outcome.ok
        assert outcome.image is images[outcome.index]
        assert outcome.unwrap().predictions[0].index == len(JPEG) + outcome.index
        assert outcome.result is not None
        assert outcome.result.filename == f"image-{outcome.index}.jpg"
        assert outcome.request_id is not None
    assert len(fake.requests) == 10  # one image per request by default
    model = outcomes[0].model
    assert model is not None
    assert (model.name, model.version, model.output_kind, model.labels_language) == (
        "MobileNetV2",
        2,
        "softmax",
        "en",
    )


async def test_a_bad_image_yields_its_error_and_the_others_go_on(make, fake):
    client = make(model="MobileNetV2", retry=0)
    images = [image(0), image(1), JPEG + BAD_IMAGE, image(3)]
    seen: list[Progress] = []

    outcomes = await collect(client, images, on_progress=seen.append, concurrency=2)

    by_index = {o.index: o for o in outcomes}
    assert [by_index[i].ok for i in range(4)] == [True, True, False, True]
    bad = by_index[2]
    assert isinstance(bad.error, InvalidImage)
    assert bad.error.status_code == 400
    assert bad.result is None
    assert bad.request_id == "req-1"
    with pytest.raises(InvalidImage):
        bad.unwrap()
    assert [p.done for p in seen] == [1, 2, 3, 4]
    assert {p.total for p in seen} == {4}
    assert seen[-1].failed == 1
    assert seen[-1].succeeded == 3
    assert [p.last.index for p in seen] == [o.index for o in outcomes]  # reported as yielded


async def test_a_group_with_a_bad_image_is_resent_image_by_image(make, fake):
    client = make(model="MobileNetV2", retry=0)
    images = [image(0), image(1), JPEG + BAD_IMAGE, image(3), image(4)]

    outcomes = await collect(client, images, per_request=3, concurrency=1)

    assert sorted((o.index, o.ok) for o in outcomes) == [
        (0, True),
        (1, True),
        (2, False),
        (3, True),
        (4, True),
    ]
    # [0, 1, 2] fails whole, then 0, 1 and 2 alone; [3, 4] goes as one request.
    sizes = [len(parts(request)) for request in fake.requests]
    assert sorted(sizes) == [1, 1, 1, 2, 3]


async def test_an_unreadable_file_is_an_input_error_and_is_never_sent(make, fake, tmp_path):
    client = make(model="MobileNetV2")
    good = tmp_path / "good.jpg"
    good.write_bytes(image(1))

    outcomes = await collect(client, [tmp_path / "missing.jpg", good, 12345])

    by_index = {o.index: o for o in outcomes}
    assert by_index[1].ok
    missing, wrong_type = by_index[0].error, by_index[2].error
    assert isinstance(missing, InputError)
    assert isinstance(missing.__cause__, FileNotFoundError)
    assert "missing.jpg" in str(missing)
    assert isinstance(wrong_type, InputError)
    assert "pass a path, bytes" in str(wrong_type)
    assert len(fake.requests) == 1


# Factories: a response object is consumed by the first client that reads it.
@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (lambda: error(404, "model_not_found", "Unknown model"), ModelNotFound),
        (lambda: error(401, "unauthorized", "bad key"), Unauthorized),
        (lambda: error(422, "invalid_request", "top_k too big"), InvalidRequest),
        (lambda: httpx.ConnectError("refused"), ConnectError),
    ],
    ids=["model_not_found", "unauthorized", "invalid_request", "connect_error"],
)
async def test_an_error_that_would_fail_every_image_is_raised(make, fake, answer, raised):
    fake.script("POST", "/v1/models/MobileNetV2/predict", answer())
    client = make(model="MobileNetV2", retry=0)

    with pytest.raises(raised):
        await collect(client, [image(i) for i in range(6)], concurrency=1)

    assert len(fake.requests) == 1  # stopped at the first


async def test_images_may_be_a_lazy_iterator_of_unknown_length(make, fake):
    client = make(model="MobileNetV2")
    pulled: list[int] = []

    def generate():
        for i in range(7):
            pulled.append(i)
            yield image(i)

    seen: list[Progress] = []
    outcomes = await collect(client, generate(), on_progress=seen.append, concurrency=2)

    assert len(outcomes) == 7
    assert pulled == list(range(7))
    assert {p.total for p in seen} == {None}


async def test_lang_is_sent_and_the_labels_language_comes_back(make, fake):
    client = make(model="MobileNetV2")

    (outcome,) = await collect(client, [image(0)], lang="zh-CN")

    assert fake.requests[0].url.params["lang"] == "zh-CN"
    assert outcome.model is not None
    assert outcome.model.labels_language == "zh-CN"
    assert outcome.unwrap().predictions[0].label.startswith("类别 ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency must be >= 1, got 0"),
        ({"per_request": 0}, "per_request must be >= 1, got 0"),
        ({"top_k": 0}, "top_k must be >= 1, got 0"),
        ({"lang": " "}, "lang must be a language tag such as 'en' or 'zh-CN'"),
    ],
)
async def test_bad_options_are_refused_at_the_call_not_at_the_first_item(
    make, fake, kwargs, message
):
    client = make(model="MobileNetV2")

    with pytest.raises(ValueError, match=message):
        client.client.predict_iter([image(0)], **kwargs)

    assert fake.requests == []


async def test_one_path_string_is_refused(make):
    client = make(model="MobileNetV2")

    with pytest.raises(TypeError, match="takes an iterable of images"):
        client.client.predict_iter("cat.jpg")


async def test_pixels_are_uploaded_as_jpeg_by_default(make, fake):
    from PIL import Image

    client = make(model="MobileNetV2")
    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)

    outcomes = await collect(client, [array, Image.fromarray(array)], concurrency=1)

    assert all(o.ok for o in outcomes)
    uploaded = sorted((p.filename, p.content_type) for r in fake.requests for p in parts(r))
    assert uploaded == [("image-0.jpg", "image/jpeg"), ("image-1.jpg", "image/jpeg")]
    assert all(p.content.startswith(b"\xff\xd8\xff") for r in fake.requests for p in parts(r))


async def test_pixels_go_as_png_when_asked(make, fake):
    client = make(model="MobileNetV2", pixels="png")
    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)

    outcomes = await collect(client, [array], concurrency=1)

    assert all(o.ok for o in outcomes)
    uploaded = [(p.filename, p.content_type) for r in fake.requests for p in parts(r)]
    assert uploaded == [("image-0.png", "image/png")]
    assert all(p.content.startswith(PNG[:8]) for r in fake.requests for p in parts(r))


async def test_an_older_server_without_version_fields_still_parses(make, fake):
    body = {
        "model": {
            "name": "M",
            "weights": {"kind": "random", "random": True},
            "runtime": {"name": "keras"},
        },
        "results": [
            {
                "predictions": [{"index": 1, "class_id": "n1", "label": "a", "probability": 0.9}],
                "timing": {"queue_ms": 1, "inference_ms": 2, "batch_size": 1},
            }
        ],
    }
    fake.script("POST", "/v1/models/M/predict", httpx.Response(200, json=body))
    client = make(model="M")

    (outcome,) = await collect(client, [image(0)])

    assert outcome.model is not None
    assert (outcome.model.version, outcome.model.output_kind, outcome.model.labels_language) == (
        None,
        None,
        None,
    )


def test_sync_predict_iter_runs_requests_on_threads_at_once():
    fake = FakeServer()
    barrier = threading.Barrier(4, timeout=10)  # broken unless 4 requests wait together

    def handler(request: httpx.Request) -> httpx.Response:
        if "predict" in request.url.path:
            barrier.wait()
        return fake(request)

    with Client(BASE_URL, model="MobileNetV2", transport=httpx.MockTransport(handler)) as client:
        outcomes = list(client.predict_iter([image(i) for i in range(8)], concurrency=4))

    assert [o.ok for o in outcomes] == [True] * 8


def test_sync_predict_many_runs_requests_on_threads_at_once():
    fake = FakeServer()
    barrier = threading.Barrier(3, timeout=10)

    def handler(request: httpx.Request) -> httpx.Response:
        barrier.wait()
        return fake(request)

    with Client(BASE_URL, model="MobileNetV2", transport=httpx.MockTransport(handler)) as client:
        answer = client.predict_many([image(i) for i in range(6)], per_request=2, concurrency=3)

    assert [r.predictions[0].index for r in answer.results] == [len(JPEG) + i for i in range(6)]


def test_breaking_off_the_sync_iterator_sends_nothing_more():
    fake = FakeServer()
    with Client(BASE_URL, model="MobileNetV2", transport=fake.transport()) as client:
        outcomes = client.predict_iter([image(i) for i in range(50)], concurrency=2)
        first = next(outcomes)
        outcomes.close()  # what `break` in a for loop does once the iterator is dropped

    assert first.ok
    assert len(fake.requests) <= 4  # those in flight or queued when it stopped, not 50


async def test_async_predict_iter_keeps_concurrency_requests_in_flight():
    fake = FakeServer()
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await asyncio.sleep(0)
        in_flight -= 1
        return fake(request)

    async with AsyncClient(
        BASE_URL, model="MobileNetV2", transport=httpx.MockTransport(handler)
    ) as client:
        outcomes = [
            o async for o in client.predict_iter([image(i) for i in range(12)], concurrency=3)
        ]

    assert peak == 3
    assert sorted(o.index for o in outcomes) == list(range(12))


async def test_closing_the_async_iterator_cancels_the_requests_in_flight():
    started: list[int] = []
    cancelled: list[int] = []
    fake = FakeServer()

    async def handler(request: httpx.Request) -> httpx.Response:
        number = len(started)
        started.append(number)
        if number == 0:
            return fake(request)
        try:
            await asyncio.Event().wait()  # the others hang until cancelled
        except asyncio.CancelledError:
            cancelled.append(number)
            raise
        raise AssertionError("unreachable")

    # max_side=None: reading bytes then needs no thread, so 4 requests are in flight at once.
    transport = httpx.MockTransport(handler)
    async with AsyncClient(BASE_URL, model="M", transport=transport, max_side=None) as client:
        fake.models = ("M",)
        async with contextlib.aclosing(
            client.predict_iter([image(i) for i in range(10)], concurrency=4)
        ) as outcomes:
            async for outcome in outcomes:
                assert outcome.ok
                break

    assert sorted(cancelled) == [1, 2, 3]
    assert len(started) == 4
