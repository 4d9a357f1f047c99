"""A traffic spike against a real server: 20x more concurrent clients than its queue holds."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.hardening import support
from tests.hardening.support import PREDICT

CLIENTS = 80


async def _spike(base_url: str, headers: dict[str, str], image: bytes) -> list[object]:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=120, limits=limits
    ) as client:
        start = asyncio.Event()

        async def one(i: int) -> object:
            await start.wait()
            try:
                return await client.post(
                    PREDICT, files={"image": (f"{i}.jpg", image, "image/jpeg")}
                )
            except httpx.HTTPError as exc:
                return exc

        tasks = [asyncio.create_task(one(i)) for i in range(CLIENTS)]
        await asyncio.sleep(0)
        start.set()
        return await asyncio.gather(*tasks)


@pytest.fixture(scope="module")
def spike(tight):
    pid = tight.server.process.pid
    with tight.client() as c:  # warm: every bucket has run once, the HWM is the serving one
        for _ in range(3):
            assert c.post(PREDICT, files={"image": support.jpeg()}).status_code == 200
    before_hwm = support.proc_status_kb(pid, "VmHWM")
    image = support.jpeg((320, 240))
    started = time.monotonic()
    results = asyncio.run(_spike(tight.base_url, tight.auth, image))
    elapsed = time.monotonic() - started
    return {
        "results": results,
        "elapsed_s": elapsed,
        "hwm_before_kb": before_hwm,
        "hwm_after_kb": support.proc_status_kb(pid, "VmHWM"),
        "rss_after_kb": support.proc_status_kb(pid, "VmRSS"),
    }


def test_spike_answers_every_client_with_200_or_503_retry_after(tight, spike):
    results = spike["results"]
    errors = [r for r in results if not isinstance(r, httpx.Response)]
    responses = [r for r in results if isinstance(r, httpx.Response)]
    ok = [r for r in responses if r.status_code == 200]
    overloaded = [r for r in responses if r.status_code == 503]
    other = [(r.status_code, r.text[:200]) for r in responses if r.status_code not in (200, 503)]
    print(
        f"\nspike: {CLIENTS} clients, queue {tight.max_queue}, batch {tight.max_batch_size}: "
        f"{len(ok)} x 200, {len(overloaded)} x 503, {len(other)} other, {len(errors)} errors, "
        f"{spike['elapsed_s']:.1f} s; server peak RSS {spike['hwm_after_kb'] / 1024:.0f} MiB "
        f"(before {spike['hwm_before_kb'] / 1024:.0f} MiB)"
    )
    assert errors == [], [repr(e) for e in errors[:5]]  # no reset, no hang
    assert other == []
    assert len(ok) + len(overloaded) == CLIENTS
    assert overloaded, "the spike never filled the queue: the test proved nothing"
    assert len(ok) >= tight.max_queue
    for r in overloaded:
        body = support.assert_error(r, 503, "overloaded")
        assert r.headers["retry-after"].isdigit()
        assert int(r.headers["retry-after"]) >= 1
        assert body["retry_after"] == float(r.headers["retry-after"])


def test_spike_keeps_memory_bounded(spike):
    grew_mib = (spike["hwm_after_kb"] - spike["hwm_before_kb"]) / 1024
    assert grew_mib < 300, f"peak RSS grew {grew_mib:.0f} MiB during the spike"


def test_server_serves_after_the_spike(tight, spike):
    assert tight.server.process.poll() is None
    with tight.client() as c:
        assert c.get("/healthz").status_code == 200
        r = c.post(PREDICT, files={"image": support.jpeg()})
        assert r.status_code == 200, r.text
        depth = support.scrape(tight.base_url).get("kerasserve_queue_depth")
        assert depth == 0
