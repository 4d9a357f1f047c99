"""Optional API keys: `Authorization: Bearer <key>` or `X-API-Key`, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.errors import Unauthorized

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
    offered = header_key or (credentials.credentials if credentials else None)
    if offered is not None:
        candidate = offered.encode()
        # Compare against every key so the time taken does not reveal which one matched.
        matched = False
        for key in keys:
            matched |= hmac.compare_digest(candidate, key.encode())
        if matched:
            return
    raise Unauthorized(
        "missing or invalid API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
    )
