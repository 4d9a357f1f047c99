"""The batching loop with fake batch functions held back by asyncio events (no sleeps for timing)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from kerasserve.batching import (
    Batcher,
    BatchFailed,
    BatchPolicy,
    DeadlineExceeded,
    QueueFull,
    ShuttingDown,
)


class Gate:
    """A batch function that records its batches and waits for `release` before answering."""

    def __init__(self, hold: bool = True) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.started.set()
        await self.release.wait()
        return [x * 10 for x in items]


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0)


async def test_lone_request_runs_at_once_without_paying_the_wait():
    gate = Gate(hold=False)
    # A huge wait bound: a lone request must still not pay it.
    async with Batcher(gate, BatchPolicy(max_batch_size=8, max_wait_s=30)) as b:
        done = await asyncio.wait_for(b.submit(4), timeout=5)
    assert done.value == 40
    assert done.batch_size == 1
    assert gate.batches == [[4]]


async def test_arrivals_during_a_batch_form_the_next_batch_in_order():
    gate = Gate()
    async with Batcher(gate, BatchPolicy(max_batch_size=8, max_wait_s=0)) as b:
        first = asyncio.create_task(b.submit(0))
        await gate.started.wait()
        rest = [asyncio.create_task(b.submit(i)) for i in range(1, 6)]
        await until(lambda: b.queue_depth == 5)
        gate.release.set()
        results = await asyncio.gather(first, *rest)
    assert gate.batches == [[0], [1, 2, 3, 4, 5]]
    assert [r.value for r in results] == [0, 10, 20, 30, 40, 50]
    assert [r.batch_size for r in results] == [1, 5, 5, 5, 5, 5]


async def test_batches_never_exceed_max_batch_size():
    gate = Gate()
    async with Batcher(gate, BatchPolicy(max_batch_size=3, max_wait_s=0)) as b:
        first = asyncio.create_task(b.submit(0))
        await gate.started.wait()
        rest = [asyncio.create_task(b.submit(i)) for i in range(1, 8)]
        await until(lambda: b.queue_depth == 7)
        gate.release.set()
        await asyncio.gather(first, *rest)
    assert [len(batch) for batch in gate.batches] == [1, 3, 3, 1]
    assert sum(gate.batches, []) == list(range(8))
    assert b.stats.mean_batch_size == pytest.approx(2.0)


async def test_under_steady_load_the_batch_waits_for_company():
    now = [0.0]
    gate = Gate(hold=False)
    # The wait bound is an hour of a clock that never moves: only a full batch can run.
    b: Batcher[int, int] = Batcher(
        gate, BatchPolicy(max_batch_size=3, max_wait_s=3600), clock=lambda: now[0]
    )
    await b.start()
    first = asyncio.create_task(b.submit(0))
    await until(lambda: len(gate.batches) == 1)  # no traffic history: ran alone at once
    tasks = []
    for i in (1, 2, 3):
        now[0] += 0.001  # arrivals 1 ms apart: waiting pays
        tasks.append(asyncio.create_task(b.submit(i)))
        await until(lambda i=i: b.stats.submitted == i + 1)
    results = await asyncio.wait_for(asyncio.gather(first, *tasks), 5)
    await b.aclose()
    assert gate.batches == [[0], [1, 2, 3]]
    assert [r.batch_size for r in results] == [1, 3, 3, 3]


async def test_wait_bound_releases_a_partial_batch():
    gate = Gate(hold=False)
    b: Batcher[int, int] = Batcher(gate, BatchPolicy(max_batch_size=64, max_wait_s=0.02))
    await b.start()
    b._arrival_gap = 0.0001  # pretend heavy traffic: the policy will wait for company
    done = await asyncio.wait_for(b.submit(1), 5)
    await b.aclose()
    assert done.value == 10
    assert done.queue_s >= 0.015  # waited (about) the bound, then ran alone


async def test_queue_bound_raises_queue_full_with_retry_after():
    gate = Gate()
    async with Batcher(gate, BatchPolicy(max_batch_size=1, max_wait_s=0, max_queue=2)) as b:
        running = asyncio.create_task(b.submit(0))
        await gate.started.wait()
        queued = [asyncio.create_task(b.submit(i)) for i in (1, 2)]
        await until(lambda: b.queue_depth == 2)
        with pytest.raises(QueueFull) as info:
            await b.submit(3)
        assert info.value.retry_after >= 1
        assert b.stats.rejected == 1
        gate.release.set()
        assert [r.value for r in await asyncio.gather(running, *queued)] == [0, 10, 20]


async def test_deadline_in_the_queue_raises_and_the_item_never_runs():
    gate = Gate()
    async with Batcher(gate, BatchPolicy(max_batch_size=4, max_wait_s=0)) as b:
        running = asyncio.create_task(b.submit(0))
        await gate.started.wait()
        with pytest.raises(DeadlineExceeded, match="queued"):
            await b.submit(99, timeout=0.05)
        gate.release.set()
        await running
        await b.submit(1)
    assert all(99 not in batch for batch in gate.batches)
    assert b.stats.dropped_cancelled + b.stats.dropped_expired == 1


async def test_cancelled_waiter_is_dropped_before_its_batch():
    gate = Gate()
    async with Batcher(gate, BatchPolicy(max_batch_size=4, max_wait_s=0)) as b:
        running = asyncio.create_task(b.submit(0))
        await gate.started.wait()
        gone = asyncio.create_task(b.submit(7))
        stays = asyncio.create_task(b.submit(8))
        await until(lambda: b.queue_depth == 2)
        gone.cancel()
        gate.release.set()
        assert (await stays).value == 80
        await running
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert gate.batches == [[0], [8]]
    assert b.stats.dropped_cancelled == 1


async def test_a_failing_batch_fails_only_its_own_waiters():
    calls = 0

    async def flaky(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model exploded")
        return [x + 1 for x in items]

    async with Batcher(flaky, BatchPolicy(max_batch_size=4, max_wait_s=0)) as b:
        with pytest.raises(BatchFailed, match="model exploded") as info:
            await b.submit(1)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert (await b.submit(2)).value == 3


async def test_per_item_exception_fails_only_that_item():
    async def picky(items: list[int]) -> list[int | BaseException]:
        return [ValueError("odd") if x % 2 else x for x in items]

    async with Batcher(picky, BatchPolicy(max_batch_size=4, max_wait_s=0)) as b:
        ok, bad = await asyncio.gather(b.submit(2), b.submit(3), return_exceptions=True)
    assert ok.value == 2
    assert isinstance(bad, ValueError)


async def test_wrong_result_count_is_reported_to_the_batch():
    async def lossy(items: list[int]) -> list[int]:
        return items[:-1]

    async with Batcher(lossy, BatchPolicy(max_wait_s=0)) as b:
        with pytest.raises(BatchFailed, match="exactly one result per input"):
            await b.submit(1)


async def test_close_drains_accepted_work_and_refuses_new():
    gate = Gate()
    b: Batcher[int, int] = Batcher(gate, BatchPolicy(max_batch_size=2, max_wait_s=0))
    await b.start()
    tasks = [asyncio.create_task(b.submit(i)) for i in range(5)]
    await gate.started.wait()
    closing = asyncio.create_task(b.aclose(timeout=10))
    await until(lambda: b.closing)
    with pytest.raises(ShuttingDown):
        await b.submit(100)
    gate.release.set()
    await closing
    assert [t.result().value for t in tasks] == [0, 10, 20, 30, 40]


async def test_close_timeout_fails_the_rest_with_shutting_down():
    gate = Gate()
    b: Batcher[int, int] = Batcher(gate, BatchPolicy(max_batch_size=1, max_wait_s=0))
    await b.start()
    tasks = [asyncio.create_task(b.submit(i)) for i in range(3)]
    await gate.started.wait()
    await b.aclose(timeout=0.05)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ShuttingDown) for r in results)


async def test_submit_before_start_is_an_error():
    b: Batcher[int, int] = Batcher(Gate(hold=False))
    with pytest.raises(RuntimeError, match="not started"):
        await b.submit(1)


def test_batching_imports_no_heavy_or_http_dependency():
    import subprocess

    code = (
        "import sys, kerasserve.batching, kerasserve.schemas; "
        "bad = [m for m in ('tensorflow','keras','fastapi','starlette','PIL','numpy') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


async def test_an_item_whose_waiter_timed_out_is_counted_expired_not_cancelled():
    # Regression: the waiter's own timeout cancels its future; that is expiry, not a client leaving.
    gate = Gate()
    async with Batcher(gate, BatchPolicy(max_batch_size=4, max_wait_s=0)) as b:
        running = asyncio.create_task(b.submit(0))
        await gate.started.wait()
        with pytest.raises(DeadlineExceeded):
            await b.submit(1, timeout=0.05)
        gate.release.set()
        await running
        await b.submit(2)
    assert (b.stats.dropped_expired, b.stats.dropped_cancelled) == (1, 0)


class Lanes:
    """A batch function whose batches each wait for their own release; records overlap."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.releases: list[asyncio.Event] = []
        self.running = 0
        self.peak = 0

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        release = asyncio.Event()
        self.releases.append(release)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await release.wait()
        finally:
            self.running -= 1
        return [x * 10 for x in items]


async def test_concurrent_batches_run_side_by_side_up_to_the_bound():
    lanes = Lanes()
    policy = BatchPolicy(max_batch_size=2, max_wait_s=0, max_concurrent_batches=2)
    async with Batcher(lanes, policy) as b:
        tasks = [asyncio.create_task(b.submit(i)) for i in range(6)]
        await until(lambda: len(lanes.batches) == 2)
        # Two batches run; the third waits for a free slot, however long the queue.
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(lanes.batches) == 2
        assert b.running == 2
        assert b.queue_depth == 2
        lanes.releases[1].set()  # the second finishes first: its slot takes the next batch
        await until(lambda: len(lanes.batches) == 3)
        assert not tasks[0].done()
        assert tasks[2].done()
        for release in lanes.releases:
            release.set()
        await until(lambda: len(lanes.batches) == 3 and all(t.done() for t in tasks[:4]))
        lanes.releases[2].set()
        results = await asyncio.gather(*tasks)
    assert [r.value for r in results] == [0, 10, 20, 30, 40, 50]
    assert lanes.batches == [[0, 1], [2, 3], [4, 5]]
    assert lanes.peak == 2


async def test_one_concurrent_batch_by_default():
    lanes = Lanes()
    async with Batcher(lanes, BatchPolicy(max_batch_size=1, max_wait_s=0)) as b:
        tasks = [asyncio.create_task(b.submit(i)) for i in range(3)]
        await until(lambda: len(lanes.batches) == 1)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(lanes.batches) == 1
        assert b.queue_depth == 2
        while not all(t.done() for t in tasks):
            for release in lanes.releases:
                release.set()
            await asyncio.sleep(0)
    assert lanes.peak == 1


async def test_close_waits_for_every_running_batch():
    lanes = Lanes()
    policy = BatchPolicy(max_batch_size=1, max_wait_s=0, max_concurrent_batches=3)
    b: Batcher[int, int] = Batcher(lanes, policy)
    await b.start()
    tasks = [asyncio.create_task(b.submit(i)) for i in range(3)]
    await until(lambda: lanes.running == 3)
    closing = asyncio.create_task(b.aclose(timeout=10))
    lanes.releases[0].set()
    lanes.releases[2].set()
    await until(lambda: tasks[0].done() and tasks[2].done())
    assert not closing.done()  # batch 1 still runs: close waits for it
    lanes.releases[1].set()
    await closing
    assert [t.result().value for t in tasks] == [0, 10, 20]


async def test_close_timeout_fails_every_running_batch():
    lanes = Lanes()
    policy = BatchPolicy(max_batch_size=1, max_wait_s=0, max_concurrent_batches=2)
    b: Batcher[int, int] = Batcher(lanes, policy)
    await b.start()
    tasks = [asyncio.create_task(b.submit(i)) for i in range(3)]
    await until(lambda: lanes.running == 2)
    await b.aclose(timeout=0.05)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ShuttingDown) for r in results), results
    await until(lambda: b.running == 0)


def test_max_concurrent_batches_is_validated():
    with pytest.raises(ValueError, match="max_concurrent_batches"):
        BatchPolicy(max_concurrent_batches=0)


async def test_retry_after_counts_batches_that_run_side_by_side():
    lanes = Lanes()
    policy = BatchPolicy(max_batch_size=1, max_wait_s=0, max_queue=100, max_concurrent_batches=4)
    async with Batcher(lanes, policy) as b:
        b._batch_s = 2.0  # as measured: two seconds a batch
        tasks = [asyncio.create_task(b.submit(i)) for i in range(12)]
        await until(lambda: b.running == 4)
        # 8 queued, one image a batch, four at a time: two rounds of 2 s.
        assert b.retry_after() == 4.0
        while not all(t.done() for t in tasks):
            for release in lanes.releases:
                release.set()
            await asyncio.sleep(0)


async def test_waits_for_company_only_while_some_is_on_its_way():
    now = [0.0]
    coming = [0]
    gate = Gate(hold=False)
    b: Batcher[int, int] = Batcher(
        gate,
        BatchPolicy(max_batch_size=8, max_wait_s=3600),
        clock=lambda: now[0],
        coming=lambda: coming[0],
    )
    await b.start()
    b._arrival_gap = 0.0001  # heavy traffic by the arrival gap alone: it would wait
    alone = await asyncio.wait_for(b.submit(1), 5)  # nothing on its way: runs at once
    coming[0] = 1
    waiting = asyncio.create_task(b.submit(2))
    await until(lambda: b.stats.submitted == 2)
    await asyncio.sleep(0)
    assert gate.batches == [[1]]  # one on its way: the batch waits for it
    coming[0] = 0
    company = asyncio.create_task(b.submit(3))
    results = await asyncio.wait_for(asyncio.gather(waiting, company), 5)
    await b.aclose()
    assert alone.batch_size == 1
    assert gate.batches == [[1], [2, 3]]
    assert [r.batch_size for r in results] == [2, 2]
