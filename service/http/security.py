"""Who may call what: API keys, WeChat login tokens, admin keys and per-caller limits.

Keys travel as `Authorization: Bearer <key>` or `X-API-Key`, compared in constant time; a
login token (service/http/auth.py) travels as `Authorization: Bearer <token>`. Admin routes
are closed unless `--admin-key` opens them.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from kerasserve.service.errors import Forbidden, Unauthorized
from kerasserve.service.http.auth import TokenSigner, WeChat, wants_chinese
from kerasserve.service.http.ratelimit import RateLimiter, client_address
from kerasserve.service.settings import Settings

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key or token>`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <key>`")

# Reads cost nothing to serve; the limit counts the requests that run a model.
_UNCOUNTED = frozenset({"GET", "HEAD", "OPTIONS"})


class Guard:
    """What a request must show, built once per app from its settings (`app.state.guard`)."""

    def __init__(self, settings: Settings) -> None:
        self.api_keys: list[str] = list(settings.api_keys)
        self.admin_keys: list[str] = list(settings.admin_keys)
        self.wechat = WeChat(settings) if settings.wechat_appid else None
        self.tokens = (
            TokenSigner(
                settings.token_secret.get_secret_value() if settings.token_secret else None,
                settings.token_ttl_s,
            )
            if self.wechat is not None
            else None
        )
        self.limiter = (
            RateLimiter(settings.rate_limit, settings.rate_limit_storage)
            if settings.rate_limit
            else None
        )
        self.auth_required = bool(self.api_keys) or self.tokens is not None
        # Nothing configured: the hot path returns at once.
        self.idle = not self.auth_required and self.limiter is None

    def caller(
        self, header_key: str | None, credentials: HTTPAuthorizationCredentials | None
    ) -> str | None:
        """`key:<digest>` or `wx:<openid>` for a valid credential; None for none when none is
        needed; `Unauthorized` otherwise."""
        offered = header_key or (credentials.credentials if credentials else None)
        if self.api_keys and _matches(offered, self.api_keys):
            assert offered is not None
            # The limit's storage (maybe a shared Redis) never sees a key itself.
            return "key:" + hashlib.sha256(offered.encode()).hexdigest()[:24]
        if self.tokens is not None and credentials is not None and header_key is None:
            try:
                return "wx:" + self.tokens.verify(credentials.credentials)
            except Unauthorized:
                if self.auth_required:
                    raise
        if not self.auth_required:
            return None
        if self.tokens is not None:
            raise Unauthorized(
                "missing or invalid credentials: log in (POST /v1/auth/wechat) and send "
                "`Authorization: Bearer <token>`"
                + (", or send an API key as `X-API-Key: <key>`" if self.api_keys else "")
            )
        raise Unauthorized(
            "missing or invalid API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
        )


async def require_api_key(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    header_key: str | None = Security(api_key_header),
) -> None:
    """Model routes: a valid API key or login token when either is configured; then the
    caller's `--rate-limit`, if one is set."""
    guard: Guard = request.app.state.guard
    if guard.idle:
        return
    caller = guard.caller(header_key, credentials)
    if guard.limiter is not None and request.method not in _UNCOUNTED:
        await guard.limiter.check(
            caller or f"ip:{client_address(request)}", chinese=wants_chinese(request)
        )


async def require_admin_key(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    header_key: str | None = Security(api_key_header),
) -> None:
    """Admin routes (load, unload, repository index, classifiers): closed (403) unless the
    server has an admin key (`--admin-key`); then they need it (401), and neither an API key
    nor a login token is enough."""
    admin: list[str] = request.app.state.guard.admin_keys
    if not admin:
        raise Forbidden(
            "admin routes are closed on this server: start it with --admin-key KEY (or "
            "KERASSERVE_ADMIN_KEYS) and send the key as `X-API-Key: KEY` or "
            "`Authorization: Bearer KEY`"
        )
    if _matches(header_key or (credentials.credentials if credentials else None), admin):
        return
    raise Unauthorized(
        "this admin route needs an admin key (--admin-key): send `Authorization: Bearer "
        "<admin key>` or `X-API-Key: <admin key>`"
    )


def _matches(offered: str | None, keys: list[str]) -> bool:
    if offered is None:
        return False
    candidate = offered.encode()
    # Compare against every key so the time taken does not reveal which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode())
    return matched
