"""Optional API keys: `Authorization: Bearer <key>` or `X-API-Key`, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from kerasserve.service.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <key>`")


async def require_api_key(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    header_key: str | None = Security(api_key_header),
) -> None:
    keys: list[str] = request.state.app.settings.api_keys
    if not keys:
        return
    if _matches(header_key or (credentials.credentials if credentials else None), keys):
        return
    raise Unauthorized(
        "missing or invalid API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
    )


async def require_admin_key(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    header_key: str | None = Security(api_key_header),
) -> None:
    """Admin routes (load, unload, repository index): open when no keys are configured at
    all; else they need an admin key (`--admin-key`), and an API key is not enough."""
    settings = request.state.app.settings
    admin: list[str] = settings.admin_keys
    if not admin and not settings.api_keys:
        return
    if not admin:
        raise Forbidden(
            "admin routes are closed: API keys are configured but no admin key; start the "
            "server with --admin-key KEY (or KERASSERVE_ADMIN_KEYS)"
        )
    if _matches(header_key or (credentials.credentials if credentials else None), admin):
        return
    raise Unauthorized(
        "this admin route needs an admin key: send `Authorization: Bearer <admin key>` "
        "or `X-API-Key: <admin key>`"
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
