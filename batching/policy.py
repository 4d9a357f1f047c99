"""When to run a batch: a pure function of the queue, the clock and the settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchPolicy:
    """Batching settings, validated on construction.

    max_batch_size: most items one call of the batch function gets.
    max_wait_s: longest an item may wait for company once the model is idle.
    max_queue: most items waiting; beyond it `submit` raises `QueueFull`.
    max_concurrent_batches: most batches running at once. 1 (the default) suits a batch
        function that already uses every core; more suits one that runs batches side by
        side (a runtime with several execution streams), and lets the next batch start
        while another still runs.
    """

    max_batch_size: int = 32
    max_wait_s: float = 0.005
    max_queue: int = 256
    max_concurrent_batches: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.max_batch_size, int) or self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be an integer >= 1, got {self.max_batch_size!r}")
        if not self.max_wait_s >= 0:
            raise ValueError(f"max_wait_s must be >= 0, got {self.max_wait_s!r}")
        if not isinstance(self.max_queue, int) or self.max_queue < 1:
            raise ValueError(f"max_queue must be an integer >= 1, got {self.max_queue!r}")
        if not isinstance(self.max_concurrent_batches, int) or self.max_concurrent_batches < 1:
            raise ValueError(
                "max_concurrent_batches must be an integer >= 1, "
                f"got {self.max_concurrent_batches!r}"
            )


@dataclass(frozen=True)
class Decision:
    """Either run a batch of `take` items now, or wait up to `wait_s` for more."""

    take: int = 0
    wait_s: float | None = None

    @property
    def run(self) -> bool:
        return self.take > 0


def decide(
    policy: BatchPolicy,
    *,
    now: float,
    queue_len: int,
    oldest_enqueued_at: float | None,
    arrival_gap_s: float | None,
    closing: bool = False,
    limit: int | None = None,
    coming: int | None = None,
) -> Decision:
    """Decide what a free batch slot does with the queue.

    Waiting only pays when another item is expected before the wait bound runs out:
    `arrival_gap_s` is the recent mean time between arrivals (None: no estimate yet).
    A lone request at low load therefore runs at once, while under load the batch
    fills for up to `max_wait_s`. The loop consults it only while fewer than
    `max_concurrent_batches` batches run; items that arrived during a batch are already
    old and usually run at once. `limit`: the batch size in force when a tuner has lowered
    it below `max_batch_size` (default: `max_batch_size`).

    `coming`: items already accepted upstream and on their way (an image being decoded);
    None when the caller cannot tell. When it can, that count decides instead of the
    arrival gap: with none on its way, no company can come within the bound (a lone
    closed-loop client, whose next request waits for this answer, never waits for itself).
    """
    if queue_len <= 0 or oldest_enqueued_at is None:
        return Decision(take=0, wait_s=None)
    most = policy.max_batch_size if limit is None else max(1, min(limit, policy.max_batch_size))
    take = min(queue_len, most)
    if closing or queue_len >= most:
        return Decision(take=take)
    remaining = policy.max_wait_s - (now - oldest_enqueued_at)
    if remaining <= 0:
        return Decision(take=take)
    if coming is not None:
        return Decision(take=0, wait_s=remaining) if coming > 0 else Decision(take=take)
    if arrival_gap_s is None or arrival_gap_s >= remaining:
        return Decision(take=take)
    return Decision(take=0, wait_s=remaining)
