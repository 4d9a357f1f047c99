"""The batching loop: queue submitted items, run them through a batch function, resolve futures."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from kerasserve.batching.errors import BatchFailed, DeadlineExceeded, QueueFull, ShuttingDown
from kerasserve.batching.policy import BatchPolicy, decide
from kerasserve.batching.tuner import BatchSizeTuner

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("kerasserve.batching")

BatchFn = Callable[[list[T]], Awaitable[Sequence["R | BaseException"]]]

_EWMA = 0.2  # weight of the newest sample in the moving averages


@dataclass(frozen=True)
class Completed(Generic[R]):
    """The result of one item and the batch it rode in."""

    value: R
    batch_size: int
    queue_s: float
    run_s: float


class BatchObserver(Protocol):
    """Hooks for metrics; every method must be cheap and must not raise."""

    def batch_done(self, size: int, run_s: float, queue_waits: Sequence[float]) -> None: ...

    def dropped(self, reason: str) -> None: ...


@dataclass(eq=False)
class _Item(Generic[T, R]):
    value: T
    future: asyncio.Future[Completed[R]]
    enqueued_at: float
    deadline: float | None
    tag: object = None
    started: bool = False


@dataclass
class BatcherStats:
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    rejected: int = 0
    dropped_cancelled: int = 0
    dropped_expired: int = 0
    batches: int = 0
    items_in_batches: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)

    @property
    def mean_batch_size(self) -> float:
        return self.items_in_batches / self.batches if self.batches else 0.0


def _set_result(fut: asyncio.Future[Completed[R]], value: Completed[R]) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Completed[R]], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class Batcher(Generic[T, R]):
    """Collects items from concurrent `submit` calls and runs them in batches.

    >>> async def double(xs: list[int]) -> list[int]:
    ...     return [2 * x for x in xs]
    >>> async def main() -> int:
    ...     async with Batcher(double, BatchPolicy(max_batch_size=8)) as b:
    ...         done = await b.submit(21)
    ...         return done.value
    >>> asyncio.run(main())
    42

    `coming`: how many items are on their way to `submit` (a caller decoding images says
    so); with it, the batch loop waits for company only when some is on its way.

    With a `tuner`, the tuner sets the batch size (a bucket up to `policy.max_batch_size`)
    from the batches it has seen run, and is told about every batch that succeeds.

    Up to `policy.max_concurrent_batches` batches run at a time (one by default). The batch
    function gets a list of values and returns one result per value, in order; a result
    that is an exception fails only that item. If the function raises, every item of that
    batch (and no other) gets `BatchFailed`.
    """

    def __init__(
        self,
        fn: BatchFn[T, R],
        policy: BatchPolicy | None = None,
        *,
        name: str = "batcher",
        clock: Callable[[], float] = time.monotonic,
        observer: BatchObserver | None = None,
        tuner: BatchSizeTuner | None = None,
        coming: Callable[[], int] | None = None,
    ) -> None:
        self._fn = fn
        self._coming = coming
        self.policy = policy or BatchPolicy()
        if tuner is not None and max(tuner.buckets) > self.policy.max_batch_size:
            raise ValueError(
                f"the tuner's largest bucket {max(tuner.buckets)} exceeds max_batch_size "
                f"{self.policy.max_batch_size}; give it the runtime's buckets "
                "(buckets_for(max_batch_size))"
            )
        self.tuner = tuner
        self.name = name
        self._clock = clock
        self._observer = observer
        self._queue: deque[_Item[T, R]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_arrival: float | None = None
        self._arrival_gap: float | None = None
        self._batch_s: float | None = None
        self._last_done: float | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.stats = BatcherStats()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"batcher {self.name!r} already started")
        self._task = asyncio.get_running_loop().create_task(
            self._loop(), name=f"batcher:{self.name}"
        )

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop taking work, finish what was accepted (for up to `timeout` s), then stop."""
        self._closing = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is None:
            self._fail_queued(ShuttingDown(self.name))
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            logger.warning(
                "batcher %s: drain timed out after %ss, failing %d queued items",
                self.name,
                timeout,
                len(self._queue),
            )
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self._fail_queued(ShuttingDown(self.name))

    async def __aenter__(self) -> Batcher[T, R]:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """Whether a batch is running."""
        return bool(self._running)

    @property
    def batch_limit(self) -> int:
        """The most items the next batch takes (the tuner's limit when there is one)."""
        return self.tuner.limit if self.tuner is not None else self.policy.max_batch_size

    @property
    def running(self) -> int:
        """How many batches are running."""
        return len(self._running)

    # -- submitting ------------------------------------------------------------------------
    def retry_after(self) -> float:
        """Seconds until the queue has likely drained enough to take new work."""
        per_batch = self._batch_s if self._batch_s is not None else 0.1
        batches = math.ceil(len(self._queue) / self.batch_limit)
        rounds = math.ceil(batches / self.policy.max_concurrent_batches)
        return float(max(1, math.ceil(rounds * per_batch)))

    async def submit(
        self, value: T, *, timeout: float | None = None, tag: object = None
    ) -> Completed[R]:
        """Queue `value` and wait for its result.

        Raises `QueueFull` at once when the queue is at its bound, `ShuttingDown` once
        closing, `DeadlineExceeded` when no result arrives within `timeout` seconds.
        Cancelling the caller drops the item before its batch runs. `tag` is handed to
        log lines about the item's batch (a request id, say).
        """
        if self._closing:
            raise ShuttingDown(self.name)
        if self._task is None:
            raise RuntimeError(f"batcher {self.name!r} is not started")
        if len(self._queue) >= self.policy.max_queue:
            self.stats.rejected += 1
            raise QueueFull(len(self._queue), self.policy.max_queue, self.retry_after())
        now = self._clock()
        fut: asyncio.Future[Completed[R]] = asyncio.get_running_loop().create_future()
        deadline = now + timeout if timeout is not None else None
        item: _Item[T, R] = _Item(value, fut, now, deadline, tag)
        self._queue.append(item)
        self.stats.submitted += 1
        self._note_arrival(now)
        self._wakeup.set()
        if timeout is None:
            return await fut
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise DeadlineExceeded(timeout, "running" if item.started else "queued") from None

    def _note_arrival(self, now: float) -> None:
        if self._last_arrival is not None:
            gap = now - self._last_arrival
            prev = self._arrival_gap
            self._arrival_gap = gap if prev is None else (1 - _EWMA) * prev + _EWMA * gap
        self._last_arrival = now

    # -- the loop --------------------------------------------------------------------------
    async def _loop(self) -> None:
        try:
            while True:
                self._drop_dead_head()
                if not self._queue and self._closing:
                    break
                if not self._queue or len(self._running) >= self.policy.max_concurrent_batches:
                    # Clearing before waiting cannot lose a wake-up: submit() and a finishing
                    # batch set the event on this loop's thread, between our awaits.
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                decision = decide(
                    self.policy,
                    now=self._clock(),
                    queue_len=len(self._queue),
                    oldest_enqueued_at=self._queue[0].enqueued_at,
                    arrival_gap_s=self._arrival_gap,
                    closing=self._closing,
                    limit=self.batch_limit,
                    coming=None if self._coming is None else self._coming(),
                )
                if not decision.run:
                    self._wakeup.clear()
                    # `asyncio.timeout`, not `wait_for`: no task per wait (the loop waits
                    # again at every arrival while a batch fills).
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(decision.wait_s):
                            await self._wakeup.wait()
                    continue
                take = decision.take
                if self.tuner is not None:
                    take = self.tuner.batch_size(len(self._queue))
                batch = self._take(take)
                if batch:
                    # Items left behind: the batch size, not the arrivals, bounded this batch.
                    self._spawn(batch, backlog=bool(self._queue))
            if self._running:  # closing: let the accepted batches finish
                await asyncio.gather(*self._running, return_exceptions=True)
        except asyncio.CancelledError:
            for running in list(self._running):
                running.cancel()
            raise

    def _spawn(self, batch: list[_Item[T, R]], *, backlog: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(
            self._execute(batch, backlog), name=f"batch:{self.name}"
        )
        self._running.add(task)
        task.add_done_callback(self._batch_finished)

    def _batch_finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()
        if not task.cancelled() and task.exception() is not None:  # pragma: no cover
            logger.error("batcher %s: batch task failed", self.name, exc_info=task.exception())

    def _dead(self, item: _Item[T, R], now: float) -> bool:
        """Whether `item` must not run: its deadline passed, or its waiter is gone.

        The deadline is checked first: a waiter whose own timeout fired has cancelled its
        future too, and that item expired; it was not abandoned by its client.
        """
        if item.deadline is not None and item.deadline <= now:
            _set_exception(
                item.future, DeadlineExceeded(item.deadline - item.enqueued_at, "queued")
            )
            self._count_drop("expired")
            return True
        if item.future.done():
            self._count_drop("cancelled")
            return True
        return False

    def _drop_dead_head(self) -> None:
        now = self._clock()
        while self._queue and self._dead(self._queue[0], now):
            self._queue.popleft()

    def _take(self, n: int) -> list[_Item[T, R]]:
        """Pop up to `n` live items; cancelled or expired ones are dropped, not run."""
        now = self._clock()
        batch: list[_Item[T, R]] = []
        while self._queue and len(batch) < n:
            item = self._queue.popleft()
            if not self._dead(item, now):
                item.started = True
                batch.append(item)
        return batch

    def _count_drop(self, reason: str) -> None:
        if reason == "cancelled":
            self.stats.dropped_cancelled += 1
        else:
            self.stats.dropped_expired += 1
        if self._observer is not None:
            self._observer.dropped(reason)

    async def _execute(self, batch: list[_Item[T, R]], backlog: bool = False) -> None:
        size = len(batch)
        start = self._clock()
        try:
            results = await self._fn([item.value for item in batch])
            if len(results) != size:
                raise RuntimeError(
                    f"batch function returned {len(results)} results for {size} inputs; "
                    "it must return exactly one result per input, in order"
                )
        except asyncio.CancelledError:
            for item in batch:
                _set_exception(item.future, ShuttingDown(self.name))
            raise
        except Exception as exc:
            run_s = self._clock() - start
            self.stats.failed += size
            logger.error(
                "batcher %s: batch of %d failed after %.1f ms; tags=%s",
                self.name,
                size,
                run_s * 1e3,
                [item.tag for item in batch],
                exc_info=exc,
            )
            for item in batch:
                failure = BatchFailed(size, exc)
                failure.__cause__ = exc
                _set_exception(item.future, failure)
            return
        done = self._clock()
        run_s = done - start
        if self.tuner is not None:
            # Charged from when the model could take this batch: a batch that queued behind
            # another (in the runtime's own executor) did not cost its waiting time.
            since = start if self._last_done is None else max(start, self._last_done)
            self.tuner.record(size, done - since, backlog=backlog)
        self._last_done = done
        self._batch_s = (
            run_s if self._batch_s is None else (1 - _EWMA) * self._batch_s + _EWMA * run_s
        )
        self.stats.batches += 1
        self.stats.items_in_batches += size
        self.stats.batch_sizes[size] = self.stats.batch_sizes.get(size, 0) + 1
        waits = [start - item.enqueued_at for item in batch]
        for item, result, wait in zip(batch, results, waits, strict=True):
            if isinstance(result, BaseException):
                self.stats.failed += 1
                _set_exception(item.future, result)
            else:
                self.stats.completed += 1
                _set_result(item.future, Completed(result, size, wait, run_s))
        if self._observer is not None:
            self._observer.batch_done(size, run_s, waits)

    def _fail_queued(self, exc: BaseException) -> None:
        while self._queue:
            _set_exception(self._queue.popleft().future, exc)
