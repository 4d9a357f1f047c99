"""Per-caller request limits (`--rate-limit 30/minute`), counted by `limits` in memory or Redis."""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from kerasserve.service.errors import RateLimited

logger = logging.getLogger("kerasserve.ratelimit")


class RateLimiter:
    """Counts each caller's requests in a moving window: `30/minute` means at most 30 in any
    60 s. Callers are named by `security.py` (`wx:<openid>`, `key:<digest>`, `ip:<address>`).

    If the storage fails (Redis down), requests pass and the failure is logged, at most every
    30 s: a limit is a fairness guard, not worth turning a Redis outage into an outage of the
    whole service.
    """

    def __init__(self, limit: str, storage_uri: str = "memory://") -> None:
        self.limit = limit
        self.items: list[RateLimitItem] = parse_many(limit)
        self.storage = _storage(storage_uri)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self._last_failure_log = -math.inf

    async def check(self, caller: str, *, chinese: bool = False) -> None:
        """Count one request of `caller`, or raise `RateLimited` with the seconds to wait."""
        try:
            for item in self.items:
                if not await self.limiter.hit(item, caller):
                    wait = await self._wait(item, caller)
                    raise RateLimited(
                        _message(item, wait, chinese),
                        retry_after=wait,
                        extra={"limit": str(item)},
                    )
        except RateLimited:
            raise
        except Exception as exc:  # storage errors: redis' own, OSError, limits' wrappers
            now = time.monotonic()
            if now - self._last_failure_log > 30:
                self._last_failure_log = now
                logger.error("rate limit storage failed, letting requests through: %r", exc)

    async def _wait(self, item: RateLimitItem, caller: str) -> float:
        stats = await self.limiter.get_window_stats(item, caller)
        return max(1.0, stats.reset_time - time.time())


def client_address(request: Request) -> str:
    """The peer's address (behind nginx, uvicorn's --forwarded-allow-ips makes it the client's)."""
    return request.client.host if request.client else "unknown"


def _storage(uri: str) -> Storage:
    if uri.startswith("memory://"):
        return MemoryStorage()
    # redis-py's asyncio client (the `redis` package) rather than limits' default, coredis.
    return RedisStorage(f"async+{uri}", implementation="redispy")


_UNITS_ZH = {
    "second": "秒",
    "minute": "分钟",
    "hour": "小时",
    "day": "天",
    "month": "个月",
    "year": "年",
}


def _message(item: RateLimitItem, wait: float, chinese: bool) -> str:
    seconds = math.ceil(wait)
    per = f"{item.multiples} {item.GRANULARITY.name}"
    if chinese:
        unit = _UNITS_ZH.get(item.GRANULARITY.name, item.GRANULARITY.name)
        return f"请求太频繁:每 {item.multiples} {unit}最多 {item.amount} 次,请 {seconds} 秒后再试"
    return (
        f"over the limit of {item.amount} requests per {per} (--rate-limit); retry in {seconds} s"
    )
