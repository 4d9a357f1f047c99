"""Batch-size tuning from live traffic: per-bucket throughput measured on the batches that ran.

The batcher reports every batch it ran (how many items, how long the call took, whether
items were left waiting); the tuner keeps, for each bucket (the padded batch sizes a
runtime compiles), the median cost of its recent batches, and serves the bucket with the
highest images per second as the batch-size limit. Now and then, and only while the queue
is deep enough to fill it, one batch runs at a neighbouring bucket, so a limit that was
right at start-up (or under another load) is revised when the machine changes.

A batch is charged for its bucket: five items padded to eight cost what eight cost, which
is why the tuner also says how many items to take (`batch_size`): with five waiting and
the limit at 8, four now may serve more images per second than five padded to eight.

Pure: no asyncio, no TensorFlow, the clock is injected.

>>> t = BatchSizeTuner([1, 2, 4, 8], initial=4)
>>> t.limit, t.batch_size(queue_len=10)
(4, 4)
>>> for _ in range(3):
...     t.record(4, 0.039, backlog=True)  # + 1 ms charged per batch beyond the call
>>> round(t.estimate(4))
100
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class _Bucket:
    size: int
    costs: deque[tuple[float, float]]  # (when, seconds) of its recent batches
    seed_img_s: float | None = None
    batches: int = 0
    items: int = 0
    explored: int = 0

    def forget_before(self, when: float) -> None:
        while self.costs and self.costs[0][0] < when:
            self.costs.popleft()

    def cost(self) -> float | None:
        """Median seconds of one batch of this bucket, over the recent window."""
        return statistics.median(c for _, c in self.costs) if self.costs else None

    def log_spread(self) -> float | None:
        """Standard error of the median's logarithm, from the spread of the window (MAD):
        how far noise alone moves this bucket's figure."""
        if len(self.costs) < 2:
            return None
        logs = [math.log(c) for _, c in self.costs if c > 0]
        if len(logs) < 2:
            return None
        mid = statistics.median(logs)
        sigma = 1.4826 * statistics.median(abs(x - mid) for x in logs)
        return 1.2533 * sigma / math.sqrt(len(logs))


@dataclass
class TunerSettings:
    """How the tuner learns; the defaults suit batches of a few to a few hundred ms.

    window: recent batches per bucket whose median cost is the bucket's estimate.
    max_age_s: a batch older than this no longer counts (the machine's load changes).
    min_samples: batches a neighbour needs before its figure is trusted enough to be
        explored only now and then.
    confirm_samples: batches a neighbour needs before it may become the limit; one that
        looks faster is explored often until it has them (a sequential test: a lucky
        first few batches must be confirmed before the limit moves).
    margin: how much faster (relative) another bucket must be to replace the limit;
        hysteresis against noise.
    z: and by how many standard errors of the two medians (estimated from the spread of
        their batches): on a noisy machine a lead must be larger to count.
    explore_every: batches under backlog between two explorations once every neighbour
        is measured; `warmup_every` while one still has fewer than `min_samples`.
    overhead_s: the cost of one batch outside the call (gathering, thread hand-off,
        resolving futures), charged to every batch so that tiny batches are not flattered.
    """

    window: int = 9
    max_age_s: float = 120.0
    min_samples: int = 3
    confirm_samples: int = 7
    margin: float = 0.08
    z: float = 2.0
    explore_every: int = 24
    warmup_every: int = 4
    overhead_s: float = 0.001

    def __post_init__(self) -> None:
        if not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window must be an integer >= 1, got {self.window!r}")
        if not isinstance(self.min_samples, int) or not 1 <= self.min_samples <= self.window:
            raise ValueError(
                f"min_samples must be an integer in 1..window ({self.window}), "
                f"got {self.min_samples!r}"
            )
        if not self.max_age_s > 0:
            raise ValueError(f"max_age_s must be > 0, got {self.max_age_s!r}")
        if (
            not isinstance(self.confirm_samples, int)
            or not self.min_samples <= self.confirm_samples <= self.window
        ):
            raise ValueError(
                f"confirm_samples must be an integer in min_samples..window "
                f"({self.min_samples}..{self.window}), got {self.confirm_samples!r}"
            )
        if not self.z >= 0:
            raise ValueError(f"z must be >= 0, got {self.z!r}")
        if not 0 <= self.margin < 1:
            raise ValueError(f"margin must be in [0, 1), got {self.margin!r}")
        for name in ("explore_every", "warmup_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.overhead_s >= 0:
            raise ValueError(f"overhead_s must be >= 0, got {self.overhead_s!r}")


@dataclass
class _Counters:
    batches: int = 0
    backlogged: int = 0
    explorations: int = 0
    changes: int = 0
    padded_items: int = 0
    items: int = 0
    since_explore: int = 0
    explore_up_next: bool = True


class BatchSizeTuner:
    """Learns the batch-size limit that serves the most images per second, from live batches.

    buckets: the batch sizes a batch is padded to (ascending after sorting); the limit is
        always one of them.
    initial: the limit before anything is measured (default: the best seeded bucket, else
        the middle bucket).
    seed: images per second per bucket from a start-up calibration. A seeded figure counts
        as one sample only until the bucket has live batches of its own: live figures win.
    """

    def __init__(
        self,
        buckets: Sequence[int],
        *,
        initial: int | None = None,
        seed: Mapping[int, float] | None = None,
        settings: TunerSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        sizes = sorted(set(buckets))
        if not sizes or any(not isinstance(b, int) or b < 1 for b in sizes):
            raise ValueError(f"buckets must be integers >= 1, got {list(buckets)!r}")
        self.settings = settings or TunerSettings()
        self._clock = clock
        self._buckets = {b: _Bucket(b, deque(maxlen=self.settings.window)) for b in sizes}
        for size, img_s in (seed or {}).items():
            if size in self._buckets and img_s > 0:
                self._buckets[size].seed_img_s = float(img_s)
        if initial is None:
            seeded = {b: v.seed_img_s for b, v in self._buckets.items() if v.seed_img_s}
            initial = max(seeded, key=lambda b: seeded[b]) if seeded else sizes[len(sizes) // 2]
        if initial not in self._buckets:
            raise ValueError(f"initial limit {initial!r} is not one of the buckets {sizes}")
        self._limit = initial
        self._counters = _Counters()
        self._history: deque[tuple[float, int, str]] = deque(maxlen=16)
        self._history.append((self._clock(), initial, "seed" if seed else "initial"))

    # -- what the batcher asks -----------------------------------------------------------
    @property
    def limit(self) -> int:
        """The most items a batch takes now (a bucket)."""
        return self._limit

    @property
    def buckets(self) -> list[int]:
        return list(self._buckets)

    def bucket_for(self, n: int) -> int:
        """The smallest bucket that holds `n` items (the largest when none does)."""
        return next((b for b in self._buckets if b >= n), max(self._buckets))

    def batch_size(self, queue_len: int) -> int:
        """How many of `queue_len` waiting items the next batch takes.

        Usually `min(queue_len, limit)`. While the queue is deep enough to fill it, one
        batch in `explore_every` runs at a neighbouring bucket instead. A batch that would
        be padded takes fewer items when the smaller, unpadded batch serves more images
        per second (by the measured costs).
        """
        if queue_len <= 0:
            return 0
        explore = self._exploration(queue_len)
        if explore is not None:
            return explore
        take = min(queue_len, self._limit)
        bucket = self.bucket_for(take)
        if bucket == take:
            return take
        # Figures of one kind only: start-up figures (a quiet machine) flatter a bucket
        # against one measured under live load.
        live = bool(self._buckets[bucket].costs)
        best, best_rate = take, self._rate(take, bucket)
        for smaller in self._buckets:
            if smaller >= take:
                break
            if live != bool(self._buckets[smaller].costs):
                continue
            rate = self._rate(smaller, smaller)
            if best_rate is not None and rate is not None and rate > best_rate:
                best, best_rate = smaller, rate
        return best

    def _exploration(self, queue_len: int) -> int | None:
        c = self._counters
        if queue_len <= self._limit:
            return None  # no backlog: a bigger batch could not fill, a smaller one is moot
        # A neighbour above is worth a batch only when the queue fills it (else it is padded).
        candidates = [b for b in self._neighbours() if b < self._limit or queue_len >= b]
        if not candidates:
            return None
        unmeasured = [b for b in candidates if not self._measured(b)]
        every = self.settings.warmup_every if unmeasured else self.settings.explore_every
        if c.since_explore < every:
            return None
        if unmeasured:
            choice = unmeasured[-1] if c.explore_up_next else unmeasured[0]
        elif len(candidates) == 1:
            choice = candidates[0]
        else:  # both measured: take turns
            choice = candidates[-1] if c.explore_up_next else candidates[0]
        c.since_explore = 0
        c.explore_up_next = choice < self._limit
        c.explorations += 1
        self._buckets[choice].explored += 1
        return choice

    def _measured(self, bucket: int) -> bool:
        """Whether `bucket` has the batches it needs: `min_samples`, or `confirm_samples`
        while it looks faster than the limit."""
        n = len(self._buckets[bucket].costs)
        if n < self.settings.min_samples:
            return False
        return n >= self.settings.confirm_samples or not self._leads(bucket)

    def _leads(self, bucket: int) -> bool:
        """Whether `bucket` looks faster than the limit by more than the margin, and by more
        than noise explains (`z` standard errors of the difference of the two medians)."""
        rate, current = self.estimate(bucket), self.estimate(self._limit)
        if rate is None:
            return False
        if current is None:
            return True
        lead = math.log(rate / current)
        errors = [e for b in (bucket, self._limit) if (e := self._buckets[b].log_spread())]
        noise = self.settings.z * math.sqrt(sum(e * e for e in errors))
        return lead > max(math.log1p(self.settings.margin), noise)

    def _neighbours_split(self) -> tuple[int | None, int | None]:
        sizes = list(self._buckets)
        i = sizes.index(self._limit)
        down = sizes[i - 1] if i > 0 else None
        up = sizes[i + 1] if i + 1 < len(sizes) else None
        return down, up

    def _neighbours(self) -> list[int]:
        return [b for b in self._neighbours_split() if b is not None]

    # -- what the batcher reports --------------------------------------------------------
    def record(self, size: int, run_s: float, *, backlog: bool) -> None:
        """One batch of `size` items ran in `run_s` seconds; `backlog`: items were left
        waiting when it was formed (the limit, not the arrivals, bounded it)."""
        if size < 1 or not run_s >= 0 or math.isinf(run_s):
            return  # a clock glitch or an empty batch teaches nothing
        c = self._counters
        now = self._clock()
        for b in self._buckets.values():
            b.forget_before(now - self.settings.max_age_s)
        bucket = self._buckets[self.bucket_for(size)]
        bucket.costs.append((now, run_s + self.settings.overhead_s))
        bucket.batches += 1
        bucket.items += size
        c.batches += 1
        c.items += size
        c.padded_items += bucket.size - size if bucket.size > size else 0
        if backlog:
            c.backlogged += 1
            c.since_explore += 1
        if bucket.size != self._limit:
            # Judged when a neighbour reports, not on every batch of the limit: each verdict
            # is a chance for noise to win, so there is one per neighbour batch.
            self._choose()

    def _choose(self) -> None:
        """Move to a neighbouring bucket when it is measurably faster than the limit.

        Only neighbours compete (hill climbing): a far bucket's figures are old, and a
        throughput curve over batch sizes has one peak. A move needs `confirm_samples` live
        batches on the neighbour and a lead of more than `margin`, so noise cannot make
        the limit flap between two buckets of about equal speed.
        """
        ready = {
            b: rate
            for b in self._neighbours()
            if len(self._buckets[b].costs) >= self.settings.confirm_samples
            and self._leads(b)
            and (rate := self.estimate(b)) is not None
        }
        if not ready:
            return
        best = max(ready, key=lambda b: (ready[b], -b))
        self._limit = best
        self._counters.changes += 1
        self._counters.since_explore = 0
        self._history.append((self._clock(), best, "measured"))

    # -- figures -------------------------------------------------------------------------
    def estimate(self, bucket: int) -> float | None:
        """Images per second of a full batch of `bucket`: live when measured, else seeded."""
        return self._rate(bucket, bucket)

    def _rate(self, items: int, bucket: int) -> float | None:
        b = self._buckets[bucket]
        cost = b.cost()
        if cost is not None and cost > 0:
            return items / cost
        if b.seed_img_s:
            return b.seed_img_s * items / bucket
        return None

    def snapshot(self) -> dict[str, Any]:
        """The current choice and the figures behind it, JSON-able.

        `by_bucket[b]`: `img_s` (a full batch, from the median of the last `window` costs),
        `samples` (live batches in that window), `batches`/`items` (all time), `source`
        (live | seed | none), `explored` (batches run as explorations).
        """
        c = self._counters
        by_bucket: dict[str, dict[str, Any]] = {}
        for size, b in self._buckets.items():
            rate = self.estimate(size)
            by_bucket[str(size)] = {
                "img_s": round(rate, 1) if rate is not None else None,
                "median_ms": round(cost * 1e3, 2) if (cost := b.cost()) is not None else None,
                "samples": len(b.costs),
                "batches": b.batches,
                "items": b.items,
                "explored": b.explored,
                "source": "live" if b.costs else ("seed" if b.seed_img_s else "none"),
            }
        now = self._clock()
        return {
            "limit": self._limit,
            "chosen_from": by_bucket[str(self._limit)]["source"],
            "by_bucket": by_bucket,
            "batches": c.batches,
            "backlogged_batches": c.backlogged,
            "explorations": c.explorations,
            "limit_changes": c.changes,
            "padding_waste": round(c.padded_items / (c.items + c.padded_items), 4)
            if c.items
            else 0.0,
            "history": [
                {"ago_s": round(now - at, 1), "limit": limit, "why": why}
                for at, limit, why in self._history
            ],
            "settings": {
                "window": self.settings.window,
                "min_samples": self.settings.min_samples,
                "confirm_samples": self.settings.confirm_samples,
                "margin": self.settings.margin,
                "explore_every": self.settings.explore_every,
            },
        }
