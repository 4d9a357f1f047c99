"""Request ids, request metrics, and (when asked) one structured access-log line per request."""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kerasserve.service.http.errors import error_response
from kerasserve.service.http.metrics import Metrics

logger = logging.getLogger("kerasserve.access")
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every log record, so every log line can carry it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


class RequestContextMiddleware:
    """Give every request an id (the client's `X-Request-ID` if sane), count it, and with
    `access_log` log it (off by default: a line per request is a cost on the hot path).

    It is the outermost layer the app's own code controls, so it also turns an unhandled
    exception into the 500 `ErrorResponse` (Starlette would answer that from its
    `ServerErrorMiddleware`, outside this one, without the `X-Request-ID` header).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        # The labelled children, looked up once per (route, method, status): `labels()`
        # takes a lock and builds a key on every call.
        self._counted: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        # A fresh id needs to be unique, not secret: `random` (reseeded in every forked
        # worker) costs no system call, and on the loop a system call releases the GIL and
        # queues the loop behind the decode threads to get it back.
        rid = (
            incoming if incoming and _VALID_ID.match(incoming) else f"{random.getrandbits(64):016x}"
        )
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        token = current_request_id.set(rid)
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception as exc:
                if started:
                    raise
                await error_response(Request(scope), exc)(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            method = scope.get("method", "")
            self._count(route, method, status, elapsed)
            code = state.get("error_code")
            if code:
                self.metrics.rejected.labels(code).inc()
            if self.access_log:
                self._log(scope, method, route, status, elapsed, code)
            current_request_id.reset(token)

    def _count(self, route: str, method: str, status: int, elapsed: float) -> None:
        key = (route, method, str(status))
        children = self._counted.get(key)
        if children is None:
            children = (
                self.metrics.requests.labels(*key),
                self.metrics.latency.labels(route, method),
            )
            self._counted[key] = children
        requests, latency = children
        requests.inc()
        latency.observe(elapsed)

    @staticmethod
    def _log(
        scope: Scope, method: str, route: str, status: int, elapsed: float, code: str | None
    ) -> None:
        # logfmt: one line per request whatever the path holds (it is quoted and escaped,
        # so a `%0A` in a URL cannot forge a second log line).
        logger.info(
            "method=%s path=%s route=%s status=%d duration_ms=%.1f code=%s client=%s",
            method,
            _quoted_path(scope),
            route,
            status,
            elapsed * 1e3,
            code or "-",
            _client(scope),
            extra={
                "status": status,
                "duration_ms": round(elapsed * 1e3, 2),
                "error_code": code,
            },
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _quoted_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path", ""))
    return json.dumps(path[:2048], ensure_ascii=True)


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


def _route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label values), not the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
