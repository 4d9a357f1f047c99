"""Faults, driven deterministically: the real app and model under a real uvicorn in a thread,
with the runtime's `raw` call wrapped in a `Gate` the test opens and closes.

Queue of 4, batches of 2: a closed gate holds one batch in the model while requests queue up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import replace

import httpx
import numpy as np
import pytest
from PIL import Image

from kerasserve.service.http.app import create_app
from kerasserve.service.settings import Settings
from tests.hardening import support
from tests.hardening.support import PREDICT, Gate, assert_error, await_for

MODEL = "MobileNetV2"


@pytest.fixture(scope="module")
def app():
    # Keras: the tests hold the runtime's raw call at a gate, one batch at a time.
    settings = Settings(
        model=[MODEL],
        weights="none",
        runtime="keras",
        max_batch_size=2,
        max_queue=4,
        timeout_s=30,
        max_wait_ms=0,
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def base_url(app) -> Iterator[str]:
    with support.serve_in_thread(app) as url:
        yield url


@pytest.fixture
def served(app, base_url):
    return app.state.kerasserve.registry.get(MODEL)


@pytest.fixture
def gate(served) -> Iterator[Gate]:
    # The served model calls the runtime's raw outputs (its head applies the softmax).
    runtime = served.runtime
    fake = Gate(runtime.raw)
    runtime.raw = fake.predict
    try:
        yield fake
    finally:
        fake.open()
        del runtime.raw  # the class's own method again


@pytest.fixture
async def client(base_url):
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as c:
        yield c


async def predict(client: httpx.AsyncClient, rid: str | None = None) -> httpx.Response:
    headers = {"X-Request-ID": rid} if rid else {}
    files = {"image": ("a.jpg", support.jpeg(), "image/jpeg")}
    return await client.post(PREDICT, files=files, headers=headers)


async def metrics(client: httpx.AsyncClient) -> support.Metrics:
    r = await client.get("/metrics")
    return support.parse_metrics(r.text)


async def wait_queue_depth(client: httpx.AsyncClient, depth: int) -> None:
    for _ in range(1500):
        if (await metrics(client)).get("kerasserve_queue_depth", model=MODEL) == depth:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the queue never held {depth} images")


async def hold_first_batch(client: httpx.AsyncClient, gate: Gate, rid: str) -> asyncio.Task:
    gate.close()
    first = asyncio.create_task(predict(client, rid))
    await await_for(lambda: gate.calls == 1, 60, "the first batch to reach the model")
    return first


async def test_full_queue_answers_503_with_retry_after_and_accepted_requests_finish(client, gate):
    running = await hold_first_batch(client, gate, "running")
    queued = [asyncio.create_task(predict(client, f"queued-{i}")) for i in range(4)]
    await wait_queue_depth(client, 4)

    refused = await predict(client, "refused")
    body = assert_error(refused, 503, "overloaded")
    retry_after = refused.headers["retry-after"]
    assert retry_after.isdigit()
    assert int(retry_after) >= 1
    assert body["retry_after"] == float(retry_after)

    gate.open()
    for response in await asyncio.gather(running, *queued):
        assert response.status_code == 200, response.text
    assert gate.images == 5
    assert (await predict(client)).status_code == 200


async def test_missed_deadline_is_504_and_the_expired_image_never_runs(client, gate, served):
    before = await metrics(client)
    served.batching = replace(served.batching, timeout_s=1.0)
    try:
        running = await hold_first_batch(client, gate, "slow")
        queued = asyncio.create_task(predict(client, "expires-in-queue"))
        late_running, late_queued = await asyncio.gather(running, queued)
    finally:
        served.batching = replace(served.batching, timeout_s=30)
    assert "running" in assert_error(late_running, 504, "deadline_exceeded")["message"]
    assert "queued" in assert_error(late_queued, 504, "deadline_exceeded")["message"]

    gate.open()
    await await_for(lambda: gate.calls >= 1, 5, "the held batch")
    dropped = "kerasserve_queue_dropped_total"
    for _ in range(500):
        after = await metrics(client)
        if after.get(dropped, model=MODEL) > before.get(dropped, model=MODEL):
            break
        await asyncio.sleep(0.02)
    assert after.get(dropped, model=MODEL) == before.get(dropped, model=MODEL) + 1
    assert gate.batches == [1]  # the expired image was dropped, not run
    assert (await predict(client)).status_code == 200


async def test_expired_images_are_counted_as_expired_not_cancelled(client, gate, served):
    before = await metrics(client)
    served.batching = replace(served.batching, timeout_s=1.0)
    try:
        running = await hold_first_batch(client, gate, "slow-2")
        queued = asyncio.create_task(predict(client, "expires-2"))
        await asyncio.gather(running, queued)
    finally:
        served.batching = replace(served.batching, timeout_s=30)
    gate.open()
    reason = {"model": MODEL, "reason": "expired"}
    for _ in range(40):
        after = await metrics(client)
        if after.get("kerasserve_queue_dropped_total", **reason) > before.get(
            "kerasserve_queue_dropped_total", **reason
        ):
            return
        await asyncio.sleep(0.05)
    pytest.fail("the expired image was not counted as expired")


async def test_client_that_disconnects_while_queued_costs_no_model_time(client, gate, base_url):
    before = await metrics(client)
    running = await hold_first_batch(client, gate, "holder")

    # A raw connection sends a whole request, waits until its image is queued, and leaves.
    body, headers = support.multipart(support.file_part(support.jpeg()))
    head = support.request_head(
        "POST", PREDICT, {**headers, "Content-Length": str(len(body)), "X-Request-ID": "leaver"}
    )
    port = int(base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + body)
    await writer.drain()
    await wait_queue_depth(client, 1)
    writer.close()
    await writer.wait_closed()

    gone = {"route": "/v1/models/{model}/predict", "status": "499"}
    for _ in range(500):  # the server notices the disconnect and cancels the waiter
        if (await metrics(client)).get("kerasserve_http_requests_total", **gone) > before.get(
            "kerasserve_http_requests_total", **gone
        ):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the server never noticed the client leave")

    gate.open()
    assert (await running).status_code == 200
    cancelled = {"model": MODEL, "reason": "cancelled"}
    for _ in range(500):
        after = await metrics(client)
        if after.get("kerasserve_queue_dropped_total", **cancelled) > before.get(
            "kerasserve_queue_dropped_total", **cancelled
        ):
            break
        await asyncio.sleep(0.02)
    assert (
        after.get("kerasserve_queue_dropped_total", **cancelled)
        == before.get("kerasserve_queue_dropped_total", **cancelled) + 1
    )
    assert gate.batches == [1]  # only the holder's image reached the model
    images = "kerasserve_images_total"
    assert after.get(images, model=MODEL) == before.get(images, model=MODEL) + 1
    assert (await predict(client)).status_code == 200


async def test_failing_model_call_fails_only_its_batch_and_is_logged_with_request_ids(
    client, gate, caplog
):
    caplog.set_level(logging.ERROR, logger="kerasserve.batching")
    gate.fail_calls = {2}
    holder = await hold_first_batch(client, gate, "holder-ok")
    failing = [asyncio.create_task(predict(client, rid)) for rid in ("doomed-1", "doomed-2")]
    await wait_queue_depth(client, 2)
    after = [asyncio.create_task(predict(client, rid)) for rid in ("next-1", "next-2")]
    await wait_queue_depth(client, 4)
    gate.open()

    assert (await holder).status_code == 200
    for task, rid in zip(failing, ("doomed-1", "doomed-2"), strict=True):
        response = await task
        body = assert_error(response, 500, "inference_failed")
        assert body["request_id"] == rid
        assert "injected failure" in body["message"]
    for task in after:
        assert (await task).status_code == 200  # the next batch works
    assert gate.batches == [1, 2, 2]
    logged = [r.getMessage() for r in caplog.records if r.name == "kerasserve.batching"]
    assert any("'doomed-1'" in m and "'doomed-2'" in m for m in logged), logged
    assert not any("next-1" in m or "holder-ok" in m for m in logged), logged


async def test_unexpected_error_is_a_json_500_with_the_request_id(client, gate):
    """Regression: an unhandled exception was answered by Starlette's ServerErrorMiddleware,
    outside the request-id middleware, so the 500 had no X-Request-ID header."""
    gate.wide_calls = {1}  # the top class has no label: the request's own code fails
    response = await predict(client, "garbage")
    body = assert_error(response, 500, "internal_error")
    assert body["request_id"] == "garbage"
    assert (await predict(client)).status_code == 200


async def test_a_malformed_model_output_fails_its_batch_and_nothing_else(client, gate):
    """Outputs that are no rows of scores fail where the batch finishes (the head and the
    ranking run there): an `inference_failed` 500 that names the error, then the next batch
    serves."""
    gate.garbage_calls = {1}
    response = await predict(client, "garbage")
    body = assert_error(response, 500, "inference_failed")
    assert "shape [1], not (images, classes)" in body["message"], body
    assert body["request_id"] == "garbage"
    assert (await predict(client)).status_code == 200


async def test_uploads_are_never_written_to_disk(client):
    """Starlette's form parser spools uploads over 1 MB to a temporary file; ours must not.

    An audit hook sees every file the process opens for writing while the uploads run.
    """
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (1400, 1400, 3), dtype=np.uint8)
    big = support.encode(Image.fromarray(noise), "JPEG", quality=95)
    assert 2_000_000 < len(big) < 10 * 1024 * 1024
    written: list[str] = []
    watching = True

    def hook(event: str, args: tuple) -> None:
        if watching and event == "open":
            path, mode, flags = args
            writes = (mode and any(c in str(mode) for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writes:
                written.append(str(path))

    sys.addaudithook(hook)  # cannot be removed: `watching` turns it off
    try:
        ok = await client.post(PREDICT, files={"image": ("big.jpg", big, "image/jpeg")})
        too_big = await client.post(PREDICT, files={"image": ("huge.jpg", big * 5, "image/jpeg")})
    finally:
        watching = False
    assert ok.status_code == 200, ok.text
    assert_error(too_big, 413, "payload_too_large")
    assert written == []
