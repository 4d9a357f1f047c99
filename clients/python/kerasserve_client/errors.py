"""Every error the SDK raises, and the one place httpx errors and error responses become them.

KerasServeError
 ├── TransportError            no HTTP answer; `sent`: the server may have the request
 │    ├── ConnectError         could not connect: the server is down or the URL is wrong
 │    └── ClientTimeout        no answer within the client's `timeout`
 ├── APIError                  the server answered an error status (`status_code`, `code`, ...)
 │    ├── InvalidImage         400/415 invalid_image, empty_file, unsupported_media_type
 │    ├── InvalidRequest       422/405/400 missing_image, invalid_request, features_too_large,
 │    │                        invalid_config, method_not_allowed, wechat_login_failed
 │    ├── Unauthorized         401 unauthorized: missing or wrong API key
 │    │    └── Forbidden       403 forbidden: an admin route without an admin key
 │    ├── NotFound             404 not_found
 │    │    ├── ModelNotFound   404 model_not_found
 │    │    └── LayerNotFound   404 layer_not_found
 │    ├── RequestTimeout       408 request_timeout: the upload did not arrive in time
 │    ├── TooManyModels        409 too_many_models: loading one more would pass the server's cap
 │    ├── TooLarge             413 payload_too_large, image_too_large, too_many_images
 │    ├── RateLimited          429 rate_limited: over the server's per-caller limit; retried
 │    │                        after its `Retry-After` by default
 │    ├── ServerError          500 inference_failed, internal_error
 │    ├── Unavailable          503 (wechat_unavailable too), retried by default
 │    │    ├── Overloaded      503 overloaded: queue full, `retry_after` says when to come back
 │    │    ├── NotReady        503 not_ready: models still loading
 │    │    ├── ModelUnavailable 503 model_unavailable: the model failed to load or is unloaded
 │    │    └── ShuttingDown    503 shutting_down
 │    └── DeadlineExceeded     504 deadline_exceeded
 ├── UnexpectedResponse        a success status whose body is not what this API returns
 ├── ReadyTimeout              `wait_until_ready` gave up
 └── InputError                an image could not be read or encoded on this side (never sent)
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
from pydantic import ValidationError

from kerasserve.schemas import ErrorCode, ErrorDetail, ErrorResponse, Readiness


class KerasServeError(Exception):
    """Base of every error the SDK raises."""


class TransportError(KerasServeError):
    """No HTTP answer came back. `sent` is False when the server cannot have seen the request."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class ConnectError(TransportError):
    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)


class ClientTimeout(TransportError):
    pass


class APIError(KerasServeError):
    """The server answered with an error status and (usually) an `ErrorResponse` body."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: ErrorCode | str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        details: list[ErrorDetail] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.details = details or []
        self.extra = extra

    def __str__(self) -> str:
        code = self.code.value if isinstance(self.code, ErrorCode) else self.code
        where = f" [request {self.request_id}]" if self.request_id else ""
        return f"{self.status_code} {code or 'error'}: {self.message}{where}"


class InvalidImage(APIError):
    pass


class InvalidRequest(APIError):
    pass


class Unauthorized(APIError):
    pass


class Forbidden(Unauthorized):
    pass


class NotFound(APIError):
    pass


class ModelNotFound(NotFound):
    pass


class LayerNotFound(NotFound):
    pass


class RequestTimeout(APIError):
    pass


class TooManyModels(APIError):
    pass


class TooLarge(APIError):
    pass


class ServerError(APIError):
    pass


class Unavailable(APIError):
    pass


class Overloaded(Unavailable):
    pass


class NotReady(Unavailable):
    pass


class ModelUnavailable(Unavailable):
    """The model exists but cannot answer: it failed to load (see `GET /v1/models`) or is gone."""


class ShuttingDown(Unavailable):
    pass


class RateLimited(APIError):
    """429: this caller sent more than the server's `--rate-limit`; `retry_after` says when."""


class DeadlineExceeded(APIError):
    pass


class UnexpectedResponse(KerasServeError):
    """A success status whose body does not parse: a different server, or an SDK/server mismatch."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class InputError(KerasServeError):
    """An input could not be read or encoded, so it was never sent; the cause is chained.

    `predict_iter` yields it as that image's error; the single-image calls raise the cause itself
    (`OSError`, `TypeError`, `ValueError`).
    """


class ReadyTimeout(KerasServeError):
    """The server was not ready within the time `wait_until_ready` was given."""

    def __init__(self, message: str, *, last: Readiness | None) -> None:
        super().__init__(message)
        self.last = last


ERROR_CLASSES: dict[ErrorCode, type[APIError]] = {
    ErrorCode.INVALID_IMAGE: InvalidImage,
    ErrorCode.EMPTY_FILE: InvalidImage,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: InvalidImage,
    ErrorCode.MISSING_IMAGE: InvalidRequest,
    ErrorCode.INVALID_REQUEST: InvalidRequest,
    ErrorCode.FEATURES_TOO_LARGE: InvalidRequest,  # ask for pooling or a later layer
    ErrorCode.INVALID_CONFIG: InvalidRequest,
    ErrorCode.METHOD_NOT_ALLOWED: InvalidRequest,
    ErrorCode.UNAUTHORIZED: Unauthorized,
    ErrorCode.FORBIDDEN: Forbidden,
    ErrorCode.TOO_MANY_MODELS: TooManyModels,
    ErrorCode.MODEL_UNAVAILABLE: ModelUnavailable,
    ErrorCode.MODEL_NOT_FOUND: ModelNotFound,
    ErrorCode.LAYER_NOT_FOUND: LayerNotFound,
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.REQUEST_TIMEOUT: RequestTimeout,
    ErrorCode.PAYLOAD_TOO_LARGE: TooLarge,
    ErrorCode.IMAGE_TOO_LARGE: TooLarge,
    ErrorCode.TOO_MANY_IMAGES: TooLarge,
    ErrorCode.INFERENCE_FAILED: ServerError,
    ErrorCode.INTERNAL: ServerError,
    ErrorCode.OVERLOADED: Overloaded,
    ErrorCode.NOT_READY: NotReady,
    ErrorCode.SHUTTING_DOWN: ShuttingDown,
    ErrorCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    ErrorCode.RATE_LIMITED: RateLimited,
    ErrorCode.WECHAT_LOGIN_FAILED: InvalidRequest,  # a bad or reused wx.login code
    ErrorCode.WECHAT_UNAVAILABLE: Unavailable,  # WeChat unreachable: try again later
    # 499 answers a client that already left; only a log or a proxy ever sees one.
    ErrorCode.CLIENT_CLOSED_REQUEST: APIError,
}

# For answers without a code we know: a proxy's 502, a newer server's new code.
_STATUS_CLASSES: dict[int, type[APIError]] = {
    401: Unauthorized,
    403: Forbidden,
    409: TooManyModels,
    404: NotFound,
    408: RequestTimeout,
    413: TooLarge,
    415: InvalidImage,
    503: Unavailable,
    504: DeadlineExceeded,
}


def _error_class(status_code: int, code: ErrorCode | str | None) -> type[APIError]:
    if isinstance(code, ErrorCode) and code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if 400 <= status_code < 500:
        return InvalidRequest
    if status_code >= 500:
        return ServerError
    return APIError


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds or an HTTP date; None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def api_error(response: httpx.Response) -> APIError:
    """The typed error for an error response, whatever its body (ours, a proxy's, or none)."""
    status = response.status_code
    header_retry_after = parse_retry_after(response.headers.get("retry-after"))
    request_id = response.headers.get("x-request-id")
    try:
        body = ErrorResponse.model_validate_json(response.content)
    except ValidationError:
        raw = _raw_body(response)
        code, message = raw.get("code"), raw.get("message")
        text = message if isinstance(message, str) and message else None
        body_request_id = raw.get("request_id")
        return _error_class(status, code if isinstance(code, str) else None)(
            text or response.text.strip()[:200] or response.reason_phrase,
            status_code=status,
            code=code if isinstance(code, str) else None,
            request_id=body_request_id if isinstance(body_request_id, str) else request_id,
            retry_after=header_retry_after,
        )
    return _error_class(status, body.code)(
        body.message,
        status_code=status,
        code=body.code,
        request_id=body.request_id or request_id,
        retry_after=body.retry_after if body.retry_after is not None else header_retry_after,
        details=body.details,
        extra=body.extra,
    )


def _raw_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a body that is not an `ErrorResponse` we know: a newer server's code
    (its message is still worth showing), a proxy's JSON; empty for anything else."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def transport_error(exc: httpx.TransportError, url: str) -> TransportError:
    """The SDK error for an httpx transport error; `raise ... from exc` keeps the original."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ConnectError(
            f"cannot connect to the kerasserve server at {url} ({exc or type(exc).__name__})"
        )
    if isinstance(exc, httpx.PoolTimeout):
        return ClientTimeout(f"no free connection to {url} in time", sent=False)
    if isinstance(exc, httpx.TimeoutException):
        # A write timeout may leave a partial upload, which the server discards: not sent.
        sent = not isinstance(exc, httpx.WriteTimeout)
        return ClientTimeout(
            f"no answer from {url} within the client timeout ({type(exc).__name__}); "
            "raise `timeout=` or check the server's load",
            sent=sent,
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError):
        return TransportError(f"cannot send the request to {url}: {exc}", sent=False)
    return TransportError(
        f"the connection to {url} failed mid-request ({type(exc).__name__}: {exc})", sent=True
    )
