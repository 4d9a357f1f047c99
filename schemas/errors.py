"""The one error body every failing request gets, and the codes it may carry."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorCode(StrEnum):
    """Machine-readable error codes; each maps to exactly one HTTP status."""

    INVALID_IMAGE = "invalid_image"  # 400: bytes claim to be an image but do not decode
    EMPTY_FILE = "empty_file"  # 400: a file part with no bytes
    MISSING_IMAGE = "missing_image"  # 422: no `image` file part in the form
    INVALID_REQUEST = "invalid_request"  # 422: bad parameter or malformed multipart body
    FEATURES_TOO_LARGE = "features_too_large"  # 422: the asked features exceed a format's limit
    UNAUTHORIZED = "unauthorized"  # 401: missing or wrong API key
    RATE_LIMITED = "rate_limited"  # 429: over --rate-limit (or WeChat's own); see `Retry-After`
    WECHAT_LOGIN_FAILED = "wechat_login_failed"  # 400: WeChat refused the wx.login code
    WECHAT_UNAVAILABLE = "wechat_unavailable"  # 503: WeChat busy, unreachable or timed out
    MODEL_NOT_FOUND = "model_not_found"  # 404
    LAYER_NOT_FOUND = "layer_not_found"  # 404
    MODEL_UNAVAILABLE = "model_unavailable"  # 503: the model failed to load or is unloaded
    TOO_MANY_MODELS = "too_many_models"  # 409: loading it would pass --max-loaded-models
    INVALID_CONFIG = "invalid_config"  # 422: a repository config.toml fails validation
    FORBIDDEN = "forbidden"  # 403: an admin route without an admin key
    NOT_FOUND = "not_found"  # 404: no such route
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    PAYLOAD_TOO_LARGE = "payload_too_large"  # 413: request body over the byte limit
    IMAGE_TOO_LARGE = "image_too_large"  # 413: too many pixels (decompression bomb guard)
    TOO_MANY_IMAGES = "too_many_images"  # 413: more files in one request than allowed
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # 415: not an image format we decode
    OVERLOADED = "overloaded"  # 503: the model's queue is full; retry after `Retry-After`
    NOT_READY = "not_ready"  # 503: models still loading or warming up
    SHUTTING_DOWN = "shutting_down"  # 503: the server is draining
    DEADLINE_EXCEEDED = "deadline_exceeded"  # 504: the request timed out in the queue or model
    REQUEST_TIMEOUT = "request_timeout"  # 408: the upload did not arrive in time
    CLIENT_CLOSED_REQUEST = "client_closed_request"  # 499: the client left; nobody reads this
    INFERENCE_FAILED = "inference_failed"  # 500: the model raised on this request's batch
    INTERNAL = "internal_error"  # 500: a bug; the request id finds it in the log


class ErrorDetail(BaseModel):
    """One problem with one input (a parameter or a form part)."""

    loc: list[str | int] = Field(default_factory=list, description="Where the problem is.")
    msg: str
    type: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error response of the API."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "model_not_found",
                    "message": "Unknown model 'resnet5'. Did you mean: ResNet50, ResNet50V2?",
                    "request_id": "5f0c6d1e9a3b4c2d",
                    "details": [],
                }
            ]
        }
    )

    code: ErrorCode = Field(description="Stable machine-readable error code.")
    message: str = Field(description="What went wrong and what to do about it.")
    request_id: str | None = Field(default=None, description="Echoes the X-Request-ID header.")
    details: list[ErrorDetail] = Field(default_factory=list)
    retry_after: float | None = Field(
        default=None, description="Seconds to wait before retrying (429 and 503)."
    )
    extra: dict[str, Any] | None = Field(
        default=None, description="Structured context, e.g. the limit that was exceeded."
    )
