"""When to retry a failed request and how long to wait: a pure policy the clients consult."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from kerasserve_client.errors import (
    APIError,
    ClientTimeout,
    KerasServeError,
    ModelUnavailable,
    RateLimited,
    TransportError,
)


@dataclass(frozen=True)
class Retry:
    """Retry policy, shared by `Client` and `AsyncClient`.

    Retried by default: 429 rate_limited after its `Retry-After` (when given); answers whose status is in `statuses` (503: overloaded, not ready, shutting
    down; `model_unavailable` only with a `Retry-After`), waiting what their `Retry-After` asks; and connection failures where nothing was sent.
    A connection dropped mid-request is retried for idempotent calls (predictions and features:
    repeating one changes nothing on the server). Never retried: any 4xx, and, unless
    `sent_errors=True`, other failures after the request may have reached the server (a read
    timeout: the server may still be working on it; a dropped non-idempotent call).

    Example: `Client(retry=Retry(max_retries=5, max_retry_after=60))`, or `Client(retry=0)`.
    """

    max_retries: int = 3
    backoff: float = 0.25
    """First wait when the server gives no `Retry-After`; doubles with every retry."""
    max_backoff: float = 8.0
    max_retry_after: float = 30.0
    """The longest `Retry-After` honoured; a server asking for longer gets its error raised."""
    jitter: float = 0.2
    """Each wait is stretched by up to this fraction, at random, so clients do not retry in step."""
    statuses: frozenset[int] = frozenset({503})
    connect_errors: bool = True
    sent_errors: bool = False
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("backoff", "max_backoff", "max_retry_after", "jitter"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        client_errors = sorted(s for s in self.statuses if s < 500)
        if client_errors:
            raise ValueError(
                "statuses must be 5xx: a 4xx answer will fail again the same way; "
                f"got {client_errors}"
            )

    @classmethod
    def off(cls) -> Retry:
        return cls(max_retries=0)

    def delay(
        self, error: KerasServeError, retries_done: int, *, idempotent: bool = False
    ) -> float | None:
        """Seconds to wait before retrying after `error`, or None to raise it."""
        if retries_done >= self.max_retries or not self.retries(error, idempotent=idempotent):
            return None
        if isinstance(error, APIError) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            wait = error.retry_after
        else:
            wait = min(self.max_backoff, self.backoff * 2**retries_done)
        return wait * (1 + self.jitter * self.random())

    def retries(self, error: KerasServeError, *, idempotent: bool = False) -> bool:
        """Whether this kind of error is ever retried under this policy."""
        if isinstance(error, ModelUnavailable):
            # A model that failed to load stays failed; one being reloaded says when to return.
            return error.retry_after is not None and error.status_code in self.statuses
        if isinstance(error, RateLimited):
            # The limit's window says when the next request is welcome; without it, no guess.
            return error.retry_after is not None
        if isinstance(error, APIError):
            return error.status_code >= 500 and error.status_code in self.statuses
        if isinstance(error, TransportError):
            if not error.sent:
                return self.connect_errors
            dropped = not isinstance(error, ClientTimeout)
            return self.sent_errors or (idempotent and dropped)
        return False


DEFAULT_RETRY = Retry()


def as_retry(retry: Retry | int | None) -> Retry:
    """`Retry` from what a client was given: a policy, a number of retries, or None for none."""
    if retry is None:
        return Retry.off()
    if isinstance(retry, Retry):
        return retry
    return Retry(max_retries=retry)
