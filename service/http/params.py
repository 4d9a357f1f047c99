"""Request parameters every protocol shares, and one handler registered at both model paths."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query

from kerasserve.service.http.state import AppState, get_state

State = Annotated[AppState, Depends(get_state)]
ModelName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        description="Model name, any case or punctuation: `MobileNetV2`, `mobilenet_v2`.",
        examples=["MobileNetV2"],
    ),
]
Version = Annotated[int, Path(ge=0, description="A loaded version of the model.")]
# The Open Inference Protocol spells versions as strings: a non-integer one is a 404 there.
VersionText = Annotated[
    str, Path(min_length=1, max_length=20, description="An integer version.", examples=["1"])
]
TopK = Annotated[int, Query(ge=1, le=100, description="How many classes to return per image.")]
Lang = Annotated[
    str | None,
    Query(
        max_length=100,
        description="Language of the labels (`zh-CN`, `en`); default: the `Accept-Language` "
        "header, else the model's first language.",
    ),
]
AcceptLanguage = Annotated[str | None, Header(include_in_schema=False)]

# The upload's OpenAPI description (the body is read by `upload.read_upload`, not FastAPI).
MULTIPART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more images (JPEG, PNG, WebP, GIF, BMP, TIFF).",
                        }
                    },
                },
                "encoding": {"image": {"contentType": "image/*"}},
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

MODEL_PATH = "/models/{model}"
VERSION_PATH = "/models/{model}/versions/{version}"


def add_model_route(
    router: APIRouter,
    suffix: str,
    endpoint: Callable[..., Any],
    *,
    summary: str,
    version_summary: str | None = None,
    **kwargs: Any,
) -> None:
    """Register `endpoint` at `/models/{model}{suffix}` and `/models/{model}/versions/{version}{suffix}`.

    `endpoint` takes a `version` parameter (a path parameter, `Version` or `VersionText`);
    on the path without a version it is called with `version=None`, the newest. One handler,
    two routes: the unversioned route's signature is the endpoint's without `version`.
    """
    hints = typing.get_type_hints(endpoint, include_extras=True)
    signature = inspect.signature(endpoint)
    typed = [
        p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
    ]
    if "version" not in signature.parameters:
        raise TypeError(f"{endpoint.__name__} needs a `version` parameter to serve both paths")

    async def newest(**values: Any) -> Any:
        return await endpoint(version=None, **values)

    newest.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in typed if p.name != "version"],
        return_annotation=hints.get("return", signature.return_annotation),
    )
    newest.__name__ = endpoint.__name__
    newest.__doc__ = endpoint.__doc__
    router.add_api_route(MODEL_PATH + suffix, newest, summary=summary, **kwargs)
    router.add_api_route(
        VERSION_PATH + suffix,
        endpoint,
        summary=version_summary or f"{summary}, with one loaded version",
        name=f"{endpoint.__name__}_version",
        **kwargs,
    )
