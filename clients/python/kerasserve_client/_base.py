"""What `Client` and `AsyncClient` share: settings, building requests, parsing answers."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from kerasserve.schemas import (
    ClassifierResponse,
    ClassifierRetired,
    FeaturesResponse,
    Health,
    LayerList,
    ModelInfo,
    ModelList,
    PredictResponse,
    Readiness,
)
from kerasserve_client._uploads import ImageInput, Prepare, Upload, read_upload
from kerasserve_client._version import __version__
from kerasserve_client.errors import UnexpectedResponse, api_error
from kerasserve_client.retry import Retry, as_retry

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0
DEFAULT_PER_REQUEST = 4
DEFAULT_CONCURRENCY = 2
DEFAULT_ITER_CONCURRENCY = 4
DEFAULT_TOP_K = 5
"""The server's top-k when a call gives none (`top_k=None`); the CLI's default too."""

Pooling = Literal["avg", "max", "none"]
T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call, built once and sent as often as the retry policy allows."""

    method: str
    path: str
    result: type[T]
    params: dict[str, str | int] = field(default_factory=dict)
    uploads: Sequence[Upload] = ()
    accept: frozenset[int] = frozenset()
    """Error statuses whose body is still a `result` (`/readyz` answers 503 with a `Readiness`)."""
    idempotent: bool = False
    """Safe to send again after a dropped connection (predictions, features)."""
    data: dict[str, str] = field(default_factory=dict)
    """Multipart form fields beside the files (`labels` of a teach call)."""


class BaseClient:
    """Settings, request building and response parsing; the twins add only the I/O."""

    def __init__(
        self,
        base_url: str | httpx.URL,
        *,
        model: str | None,
        timeout: float | httpx.Timeout | None,
        api_key: str | None,
        retry: Retry | int | None,
        headers: dict[str, str] | None,
        prepare: Prepare,
        transport: object | None,
        http_client: object | None,
    ) -> None:
        if transport is not None and http_client is not None:
            raise ValueError(
                "pass either transport= or http_client=, not both: "
                "configure the transport on your own http_client"
            )
        url = str(base_url).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
        self.base_url = url
        self.model_name = model
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = as_retry(retry)
        self.prepare = prepare
        """How images become uploads: shrunk to `max_side` pixels, pixels as `pixels` format."""
        self._headers = {
            "accept": "application/json",
            "user-agent": f"kerasserve-client/{__version__} httpx/{httpx.__version__} "
            f"python/{sys.version_info.major}.{sys.version_info.minor}",
            **({"authorization": f"Bearer {api_key}"} if api_key else {}),
            **(headers or {}),
        }
        self._default_model: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    # Request building.

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _send_kwargs(self, call: Call[Any], timeout: float | None = None) -> dict[str, Any]:
        """Arguments of `httpx.Client.request`; `timeout` shortens the client's for this call."""
        return {
            "method": call.method,
            "url": self._url(call.path),
            "params": call.params or None,
            "files": [upload.part() for upload in call.uploads] or None,
            "data": call.data or None,
            "headers": self._headers,
            "timeout": self.timeout if timeout is None else _shorter(self.timeout, timeout),
        }

    def _explicit_model(self, model: str | None) -> str | None:
        """The model named by the call or the client; None means: ask the server for its default."""
        return model or self.model_name or self._default_model

    def _remember_default(self, models: ModelList) -> str:
        if models.default_model:
            name = models.default_model
        elif len(models.models) == 1:
            name = models.models[0].name
        else:
            served = ", ".join(m.name for m in models.models) or "none"
            raise ValueError(
                f"the server at {self.base_url} names no default model; pass model=... "
                f"(served: {served})"
            )
        self._default_model = name
        return name

    @staticmethod
    def _models_call() -> Call[ModelList]:
        return Call("GET", "/v1/models", ModelList)

    @staticmethod
    def _model_call(name: str) -> Call[ModelInfo]:
        return Call("GET", f"/v1/models/{_quote(name)}", ModelInfo)

    @staticmethod
    def _layers_call(model: str) -> Call[LayerList]:
        return Call("GET", f"/v1/models/{_quote(model)}/layers", LayerList)

    @staticmethod
    def _health_call() -> Call[Health]:
        return Call("GET", "/healthz", Health)

    @staticmethod
    def _ready_call() -> Call[Readiness]:
        return Call("GET", "/readyz", Readiness, accept=frozenset({503}))

    @staticmethod
    def _predict_call(
        model: str, uploads: Sequence[Upload], top_k: int | None, lang: str | None = None
    ) -> Call[PredictResponse]:
        check_predict_options(top_k, lang)
        params: dict[str, str | int] = {} if top_k is None else {"top_k": top_k}
        if lang is not None:
            params["lang"] = lang
        path = f"/v1/models/{_quote(model)}/predict"
        return Call("POST", path, PredictResponse, params, uploads, idempotent=True)

    @staticmethod
    def _features_call(
        model: str, upload: Upload, layer: str | None, pooling: Pooling | None
    ) -> Call[FeaturesResponse]:
        # No pooling given: the server's default (avg for spatial maps, none for vectors).
        params: dict[str, str | int] = {} if pooling is None else {"pooling": pooling}
        if layer is not None:
            params["layer"] = layer
        path = f"/v1/models/{_quote(model)}/features"
        return Call("POST", path, FeaturesResponse, params, [upload], idempotent=True)

    @staticmethod
    def _teach_call(
        name: str, uploads: Sequence[Upload], labels: Sequence[str], base: str | None
    ) -> Call[ClassifierResponse]:
        params: dict[str, str | int] = {} if base is None else {"base": base}
        data = {"labels": json.dumps(list(labels), ensure_ascii=False)}
        path = f"/v1/classifiers/{_quote(name)}"
        return Call("POST", path, ClassifierResponse, params, uploads, data=data)

    @staticmethod
    def _retire_call(name: str) -> Call[ClassifierRetired]:
        return Call("DELETE", f"/v1/classifiers/{_quote(name)}", ClassifierRetired)

    # Response parsing.

    def _ready_timeout_message(
        self, timeout: float, last: Readiness | None, failure: Exception | None
    ) -> str:
        if last is not None and failure is None:
            states = ", ".join(f"{name}: {state}" for name, state in last.models.items())
            why = f"models {states or 'none'}" + (f" ({last.detail})" if last.detail else "")
        else:
            why = str(failure)
        return f"{self.base_url} not ready after {timeout:g} s; last: {why}"

    @staticmethod
    def _parse(call: Call[T], response: httpx.Response) -> T:
        """The call's result from a response the sender already accepted (2xx or `call.accept`)."""
        try:
            return call.result.model_validate_json(response.content)
        except ValidationError as exc:
            if not response.is_success:
                raise api_error(response) from None
            snippet = response.text.strip()[:200]
            raise UnexpectedResponse(
                f"{call.method} {call.path} answered {response.status_code} with a body that is "
                f"not a {call.result.__name__}; is {response.url.host}:{response.url.port} a "
                f"kerasserve server of a matching version? Body: {snippet!r}",
                status_code=response.status_code,
            ) from exc


def check_predict_options(top_k: int | None, lang: str | None) -> None:
    """Fail before anything is read or sent (a bulk run would fail every image alike)."""
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if lang is not None and not lang.strip():
        raise ValueError(f"lang must be a language tag such as 'en' or 'zh-CN', got {lang!r}")


def _shorter(timeout: httpx.Timeout, limit: float) -> httpx.Timeout:
    def cap(value: float | None) -> float:
        return limit if value is None else min(value, limit)

    return httpx.Timeout(
        connect=cap(timeout.connect),
        read=cap(timeout.read),
        write=cap(timeout.write),
        pool=cap(timeout.pool),
    )


def _quote(name: str) -> str:
    return quote(name, safe="")


def split(images: Sequence[ImageInput], per_request: int) -> list[list[tuple[int, ImageInput]]]:
    """Images with their input positions, in groups of at most `per_request`, order kept."""
    if per_request < 1:
        raise ValueError(f"per_request must be >= 1, got {per_request}")
    if isinstance(images, str | bytes):
        raise TypeError("predict_many takes a list of images; for one image call predict()")
    if not images:
        raise ValueError("predict_many needs at least one image")
    numbered = list(enumerate(images))
    return [numbered[i : i + per_request] for i in range(0, len(numbered), per_request)]


def merge(responses: Sequence[PredictResponse]) -> PredictResponse:
    """One response for many requests: results in input order, the first answer's model.

    `request_id` is kept only when one request carried every image.
    """
    first = responses[0]
    return PredictResponse(
        model=first.model,
        results=[result for response in responses for result in response.results],
        request_id=first.request_id if len(responses) == 1 else None,
    )


def teach_uploads(
    examples: Mapping[str, Sequence[ImageInput]], prepare: Prepare
) -> tuple[list[Upload], list[str]]:
    """Every example read (shrunk as configured) and its label, in upload order.

    Checked before anything is sent: at least two labels, each with at least one photo (the
    server wants two per class and says so with the counts).
    """
    if isinstance(examples, str | bytes) or not isinstance(examples, Mapping):
        raise TypeError(
            "teach takes {label: [photos...]}, e.g. {'cat': ['c1.jpg', 'c2.jpg'], 'dog': [...]}, "
            f"got {type(examples).__name__}"
        )
    uploads: list[Upload] = []
    labels: list[str] = []
    for label, images in examples.items():
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"labels must be non-empty text, got {label!r}")
        if isinstance(images, str | bytes | os.PathLike) or not images:
            raise ValueError(
                f"label {label!r} needs a list of photos (paths, bytes or arrays), got {images!r}"
            )
        for image in images:
            uploads.append(read_upload(image, len(uploads), prepare))
            labels.append(label)
    if len(examples) < 2:
        raise ValueError(
            f"teach needs photos of at least 2 labels to tell apart, got {sorted(examples)}"
        )
    return uploads, labels
