"""Errors of the batching engine.

BatchingError
 ├── QueueFull          the queue is at its bound: try again after `retry_after` seconds
 ├── DeadlineExceeded   the item's deadline passed before its result was ready
 ├── ShuttingDown       the batcher is closing and takes nothing new
 └── BatchFailed        the batch function raised; `__cause__` is what it raised
"""

from __future__ import annotations


class BatchingError(Exception):
    """Base of every error the batcher raises to a waiter."""


class QueueFull(BatchingError):
    def __init__(self, queued: int, limit: int, retry_after: float) -> None:
        super().__init__(
            f"queue is full ({queued} waiting, limit {limit}); retry in {retry_after:.0f} s"
        )
        self.queued = queued
        self.limit = limit
        self.retry_after = retry_after


class DeadlineExceeded(BatchingError):
    def __init__(self, timeout_s: float, where: str) -> None:
        super().__init__(f"no result within {timeout_s:.3g} s (still {where})")
        self.timeout_s = timeout_s
        self.where = where


class ShuttingDown(BatchingError):
    def __init__(self, name: str) -> None:
        super().__init__(f"batcher {name!r} is shutting down and accepts no new work")


class BatchFailed(BatchingError):
    def __init__(self, batch_size: int, exc: BaseException) -> None:
        super().__init__(f"the batch of {batch_size} failed: {type(exc).__name__}: {exc}")
        self.batch_size = batch_size
