"""The batcher with a tuner: a fake model whose batch cost follows a curve on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from kerasserve.batching import Batcher, BatchPolicy, BatchSizeTuner

BUCKETS = [1, 2, 4, 8, 16, 32]


class FakeModel:
    """A batch function that pads to a bucket and advances a fake clock by that bucket's
    cost; it yields to the loop once, as a real batch awaiting its thread does."""

    def __init__(self, img_s: dict[int, float]) -> None:
        self.img_s = img_s
        self.now = 0.0
        self.sizes: list[int] = []

    def clock(self) -> float:
        return self.now

    async def __call__(self, items: list[int]) -> list[int]:
        self.sizes.append(len(items))
        bucket = next(b for b in BUCKETS if b >= len(items))
        await asyncio.sleep(0)
        self.now += bucket / self.img_s[bucket]
        return [x + 1 for x in items]


async def closed_loop(batcher: Batcher[int, int], clients: int, requests: int) -> None:
    """`clients` callers, each submitting its next item as soon as its last one is answered."""
    left = requests

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            done = await batcher.submit(1)
            assert done.value == 2

    await asyncio.gather(*(client() for _ in range(clients)))


@pytest.mark.parametrize("peak", [4, 16])
async def test_under_load_the_batcher_settles_on_the_fastest_bucket(peak):
    rates = {b: 100 * 0.75 ** abs(b.bit_length() - peak.bit_length()) for b in BUCKETS}
    model = FakeModel(rates)
    tuner = BatchSizeTuner(BUCKETS, initial=1 if peak == 16 else 32, clock=model.clock)
    policy = BatchPolicy(max_batch_size=32, max_wait_s=0)
    async with Batcher(model, policy, clock=model.clock, tuner=tuner) as batcher:
        await asyncio.wait_for(closed_loop(batcher, clients=64, requests=20_000), 60)
    assert tuner.limit == peak
    assert batcher.batch_limit == peak
    last = model.sizes[-200:]
    assert last.count(peak) >= 0.9 * len(last)
    snap = tuner.snapshot()
    assert snap["by_bucket"][str(peak)]["source"] == "live"
    assert snap["backlogged_batches"] > 0.9 * snap["batches"]


async def test_a_batcher_without_a_tuner_still_fills_to_the_policy_maximum():
    model = FakeModel(dict.fromkeys(BUCKETS, 100.0))
    async with Batcher(model, BatchPolicy(max_batch_size=8, max_wait_s=0), clock=model.clock) as b:
        await asyncio.wait_for(closed_loop(b, clients=32, requests=400), 30)
        assert b.tuner is None
        assert b.batch_limit == 8
    assert max(model.sizes) == 8
    assert model.sizes.count(8) >= 0.9 * len(model.sizes)


async def test_a_failed_batch_teaches_the_tuner_nothing():
    async def boom(items: list[int]) -> list[int]:
        raise RuntimeError("model fell over")

    tuner = BatchSizeTuner([1, 2, 4])
    async with Batcher(boom, BatchPolicy(max_batch_size=4), tuner=tuner) as b:
        with pytest.raises(Exception, match="model fell over"):
            await b.submit(1)
    assert tuner.snapshot()["batches"] == 0


async def test_retry_after_counts_batches_of_the_tuned_size():
    tuner = BatchSizeTuner([1, 2, 4, 8, 16, 32], initial=1)
    gate = asyncio.Event()

    async def held(items: list[int]) -> list[int]:
        await gate.wait()
        return items

    async with Batcher(held, BatchPolicy(max_batch_size=32, max_wait_s=0), tuner=tuner) as b:
        tasks = [asyncio.create_task(b.submit(i)) for i in range(26)]
        while b.queue_depth != 25:  # one in the running batch, 25 queued
            await asyncio.sleep(0)
        # 25 queued at 1 per batch is 25 batches; at the 0.1 s default per batch, 3 s
        # (at the policy's 32 per batch it would be one batch: 1 s).
        assert b.retry_after() == 3.0
        gate.set()
        await asyncio.gather(*tasks)


def test_a_tuner_with_buckets_beyond_the_maximum_is_refused():
    async def fn(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError, match="largest bucket 32 exceeds max_batch_size 8"):
        Batcher(fn, BatchPolicy(max_batch_size=8), tuner=BatchSizeTuner([1, 2, 4, 8, 16, 32]))


async def test_a_batch_queued_behind_another_is_charged_only_its_own_run():
    # Two batches in flight on one model thread (the second waits in the executor): the
    # second's wall time includes the first's, but the tuner must see one batch's cost.
    now = [0.0]
    one_at_a_time = asyncio.Lock()

    async def model(items: list[int]) -> list[int]:
        async with one_at_a_time:
            await asyncio.sleep(0)
            now[0] += 0.040
        return items

    tuner = BatchSizeTuner([1, 2, 4], initial=4)
    policy = BatchPolicy(max_batch_size=4, max_wait_s=0, max_concurrent_batches=2)
    async with Batcher(model, policy, clock=lambda: now[0], tuner=tuner) as b:
        await asyncio.gather(*(b.submit(i) for i in range(8)))
    snap = tuner.snapshot()
    assert snap["batches"] == 2
    assert snap["by_bucket"]["4"]["median_ms"] == pytest.approx(40 + 1e3 * 0.001)
