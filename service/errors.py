"""Errors the service raises on purpose; each maps to one HTTP status and `ErrorCode`.

    ServiceError
     ├── InvalidImage           400 the bytes do not decode as the image they claim to be
     ├── EmptyFile              400
     ├── UnsupportedMediaType   415 not a format we decode (HEIC, PDF, SVG, text...)
     ├── ImageTooLarge          413 too many pixels
     ├── PayloadTooLarge        413 too many bytes
     ├── TooManyImages          413
     ├── MissingImage           422
     ├── InvalidRequest         422
     ├── FeaturesTooLarge       422 the features asked for exceed the format's size limit
     ├── Unauthorized           401
     ├── RateLimited            429 over --rate-limit, or WeChat limits this user's logins
     ├── WeChatLoginFailed      400 WeChat refused the wx.login code (bad, or used before)
     ├── WeChatUnavailable      503 WeChat busy, unreachable, timed out or answering nonsense
     ├── LoginDisabled          404 WeChat login asked for, but not configured
     ├── RequestTimeout         408 the upload did not arrive in time
     ├── ModelNotFound          404
     ├── LayerNotFound          404
     ├── NotReady               503
     ├── ModelUnavailable       503 the model failed to load, or is unloaded
     ├── TooManyModels          409 a load past --max-loaded-models
     ├── InvalidConfig          422 a repository config.toml fails validation
     ├── Forbidden              403 an admin route without an admin key
     ├── ClientGone             499 the client disconnected while its request waited
     └── ModelLoadError         a model cannot load (at start-up with --model: the server
                                refuses to start; from a repository: that model is `failed`)

Errors from `batching/` (QueueFull, DeadlineExceeded, ShuttingDown, BatchFailed) are mapped
beside these in `service/http/errors.py`.
"""

from __future__ import annotations

from typing import Any

from kerasserve.schemas import ErrorCode


class ServiceError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL
    status: int = 500

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class InvalidImage(ServiceError):
    code, status = ErrorCode.INVALID_IMAGE, 400


class EmptyFile(ServiceError):
    code, status = ErrorCode.EMPTY_FILE, 400


class UnsupportedMediaType(ServiceError):
    code, status = ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415


class ImageTooLarge(ServiceError):
    code, status = ErrorCode.IMAGE_TOO_LARGE, 413


class PayloadTooLarge(ServiceError):
    code, status = ErrorCode.PAYLOAD_TOO_LARGE, 413


class TooManyImages(ServiceError):
    code, status = ErrorCode.TOO_MANY_IMAGES, 413


class MissingImage(ServiceError):
    code, status = ErrorCode.MISSING_IMAGE, 422


class InvalidRequest(ServiceError):
    code, status = ErrorCode.INVALID_REQUEST, 422


class FeaturesTooLarge(ServiceError):
    code, status = ErrorCode.FEATURES_TOO_LARGE, 422


class Unauthorized(ServiceError):
    code, status = ErrorCode.UNAUTHORIZED, 401


class RateLimited(ServiceError):
    """`retry_after`: seconds until the window lets this caller in again (`Retry-After`)."""

    code, status = ErrorCode.RATE_LIMITED, 429

    def __init__(
        self, message: str, *, retry_after: float, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, extra=extra)
        self.retry_after = retry_after


class WeChatLoginFailed(ServiceError):
    code, status = ErrorCode.WECHAT_LOGIN_FAILED, 400


class WeChatUnavailable(ServiceError):
    code, status = ErrorCode.WECHAT_UNAVAILABLE, 503


class LoginDisabled(ServiceError):
    code, status = ErrorCode.NOT_FOUND, 404


class RequestTimeout(ServiceError):
    code, status = ErrorCode.REQUEST_TIMEOUT, 408


class ModelNotFound(ServiceError):
    code, status = ErrorCode.MODEL_NOT_FOUND, 404


class LayerNotFound(ServiceError):
    code, status = ErrorCode.LAYER_NOT_FOUND, 404


class NotReady(ServiceError):
    code, status = ErrorCode.NOT_READY, 503


class ModelUnavailable(ServiceError):
    code, status = ErrorCode.MODEL_UNAVAILABLE, 503


class TooManyModels(ServiceError):
    code, status = ErrorCode.TOO_MANY_MODELS, 409


class InvalidConfig(ServiceError):
    code, status = ErrorCode.INVALID_CONFIG, 422


class Forbidden(ServiceError):
    code, status = ErrorCode.FORBIDDEN, 403


class ClientGone(ServiceError):
    code, status = ErrorCode.CLIENT_CLOSED_REQUEST, 499


class ModelLoadError(Exception):
    """A model cannot be loaded; the message says what to do."""
