"""Every exception a request can meet, mapped in one place to a status code and `ErrorResponse`."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles

from kerasserve.batching import (
    BatchFailed,
    BatchingError,
    DeadlineExceeded,
    QueueFull,
    ShuttingDown,
)
from kerasserve.schemas import ErrorCode, ErrorDetail, ErrorResponse
from kerasserve.service.errors import RateLimited, ServiceError

logger = logging.getLogger("kerasserve.http")

# batching/ knows nothing of HTTP: its errors get their status and code here.
BATCHING_ERRORS: dict[type[BatchingError], tuple[int, ErrorCode]] = {
    QueueFull: (503, ErrorCode.OVERLOADED),
    ShuttingDown: (503, ErrorCode.SHUTTING_DOWN),
    DeadlineExceeded: (504, ErrorCode.DEADLINE_EXCEEDED),
    BatchFailed: (500, ErrorCode.INFERENCE_FAILED),
}

_HTTP_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def describe(exc: BaseException) -> tuple[int, ErrorResponse, dict[str, str]]:
    """The status, body (without request id) and extra headers for `exc`."""
    headers: dict[str, str] = {}
    if isinstance(exc, ServiceError):
        body = ErrorResponse(code=exc.code, message=exc.message, extra=exc.extra)
        status = exc.status
        if status == 503:
            headers["Retry-After"] = "5"
            body.retry_after = 5.0
        elif status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="kerasserve"'
        elif isinstance(exc, RateLimited):
            wait = max(1, math.ceil(exc.retry_after))
            headers["Retry-After"] = str(wait)
            body.retry_after = float(wait)
        elif status == 408 or exc.code == ErrorCode.PAYLOAD_TOO_LARGE:
            # The client is still (slowly) sending: end the connection rather than let it
            # trickle on after its answer (RFC 9110 §15.5.9).
            headers["Connection"] = "close"
        return status, body, headers
    if isinstance(exc, BatchingError):
        status, code = BATCHING_ERRORS.get(type(exc), (500, ErrorCode.INTERNAL))
        message = str(exc)
        if isinstance(exc, BatchFailed):
            message = f"inference failed for this request's batch: {exc.__cause__!r}"
        body = ErrorResponse(code=code, message=message)
        if isinstance(exc, QueueFull | ShuttingDown):
            retry = exc.retry_after if isinstance(exc, QueueFull) else 5.0
            headers["Retry-After"] = str(math.ceil(retry))
            body.retry_after = float(math.ceil(retry))
        return status, body, headers
    return (
        500,
        ErrorResponse(code=ErrorCode.INTERNAL, message="internal error; the log has the details"),
        headers,
    )


def resolve(request: Request, exc: BaseException) -> tuple[int, ErrorResponse, dict[str, str]]:
    """The one error table for every protocol: the status, the `ErrorResponse` (with the
    request id) and the headers of any exception a request meets, FastAPI's own included.

    It notes the error's code on the request (the access log and metrics count it) and logs
    what nothing mapped; each protocol only renders the body (v1 as is, v2 `{"error"}`,
    the classic `/predict` `{"success": false}`).
    """
    headers: dict[str, str]
    if isinstance(exc, RequestValidationError):
        status, body, headers = 422, _validation_body(exc), {}
    elif isinstance(exc, StarletteHTTPException):
        status, body, headers = _http_body(request, exc)
    else:
        status, body, headers = describe(exc)
        if status >= 500 and not isinstance(exc, BatchingError | ServiceError):
            logger.error("unhandled error (request %s)", request_id(request), exc_info=exc)
    body.request_id = request_id(request)
    request.state.error_code = body.code.value
    return status, body, headers


def error_response(request: Request, exc: BaseException) -> JSONResponse:
    status, body, headers = resolve(request, exc)
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


async def _error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, exc)


def _validation_body(exc: RequestValidationError) -> ErrorResponse:
    details = [
        ErrorDetail(
            loc=[str(x) for x in err.get("loc", ())], msg=err.get("msg", ""), type=err.get("type")
        )
        for err in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(map(str, d.loc))}: {d.msg}" for d in details)
    return ErrorResponse(
        code=ErrorCode.INVALID_REQUEST, message=f"invalid request: {summary}", details=details
    )


def _http_body(
    request: Request, exc: StarletteHTTPException
) -> tuple[int, ErrorResponse, dict[str, str]]:
    status, headers, message = exc.status_code, exc.headers, str(exc.detail)
    if status in (404, 405) and isinstance(request.scope.get("endpoint"), StaticFiles):
        status, headers, message = _static_miss(request, status)
    code = _HTTP_CODES.get(status, ErrorCode.INVALID_REQUEST)
    return status, ErrorResponse(code=code, message=message), dict(headers or {})


def _static_miss(request: Request, status: int) -> tuple[int, dict[str, str] | None, str]:
    """What is true instead of the 404 or 405 a `StaticFiles` mount raised.

    The web page is mounted at `/`, so it gets every request no route took in full: it
    answers 404 to `GET /v1/models/m/predict` (a POST route: 405) and 405 "Allow: GET, HEAD"
    to `TRACE /healthz` (405, but "Allow: GET") as to `POST /v1/models/a/b/predict` (404).
    """
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Mount):
            continue
        # Ask each route about each method: FastAPI's included routers hide their routes'
        # `methods`, but every route answers `matches`.
        for method in _METHODS:
            match, _ = route.matches({**request.scope, "method": method})
            if match is Match.FULL:
                allowed.add(method)
    if not allowed and status == 405 and _static_file_exists(request):
        allowed = {"GET", "HEAD"}
    if not allowed:
        return 404, None, "Not Found"
    return 405, {"Allow": ", ".join(sorted(allowed))}, "Method Not Allowed"


def _static_file_exists(request: Request) -> bool:
    static = request.scope["endpoint"]
    try:
        _, found = static.lookup_path(static.get_path(request.scope))
    except (OSError, ValueError):
        return False
    return found is not None


def install(app: FastAPI) -> None:
    for kind in (ServiceError, BatchingError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(kind, _error)
    app.add_exception_handler(Exception, _error)


def openapi_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries, each an `ErrorResponse` with an example."""
    examples = {
        400: (
            ErrorCode.INVALID_IMAGE,
            "the JPEG image could not be decoded: image file is truncated",
        ),
        401: (ErrorCode.UNAUTHORIZED, "missing or invalid API key"),
        403: (ErrorCode.FORBIDDEN, "this route needs an admin key (--admin-key)"),
        404: (ErrorCode.MODEL_NOT_FOUND, "Unknown model 'resnet5'. Did you mean: ResNet50?"),
        409: (ErrorCode.TOO_MANY_MODELS, "loading cats would pass --max-loaded-models 2"),
        408: (ErrorCode.REQUEST_TIMEOUT, "the upload did not complete within 30 s"),
        413: (ErrorCode.PAYLOAD_TOO_LARGE, "the body exceeds the limit of 10,485,760 bytes"),
        415: (ErrorCode.UNSUPPORTED_MEDIA_TYPE, "unsupported image type (detected HEIC)"),
        422: (ErrorCode.INVALID_REQUEST, "invalid request: query.top_k: must be <= 100"),
        429: (ErrorCode.RATE_LIMITED, "over the limit of 30 per 1 minute; retry in 12 s"),
        500: (ErrorCode.INFERENCE_FAILED, "inference failed for this request's batch"),
        503: (ErrorCode.OVERLOADED, "queue is full (256 waiting, limit 256); retry in 1 s"),
        504: (ErrorCode.DEADLINE_EXCEEDED, "no result within 30 s (still queued)"),
    }
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, message = examples[status]
        out[status] = {
            "model": ErrorResponse,
            "description": code.value.replace("_", " "),
            "content": {
                "application/json": {
                    "example": {"code": code.value, "message": message, "request_id": "1f2e3d4c"}
                }
            },
        }
        if status in (429, 503):
            out[status]["headers"] = {
                "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
            }
    return out
