"""One request pipeline for every protocol: lease the model, read the body, watch the client, answer.

v1, the classic `/predict` and the Open Inference Protocol differ only in how they read a
body and render a result; each is a thin adapter over `run`:

    model, results = await run(request, state, name, version, read_images, classify)
    return json_response(body, headers=answer_headers(model, results))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response

from kerasserve.service.http.disconnect import until_disconnect
from kerasserve.service.http.state import AppState
from kerasserve.service.http.upload import Upload, read_body, read_upload
from kerasserve.service.inference.loaded import Inferred, LoadedModel, server_timing
from kerasserve.service.settings import Settings

B = TypeVar("B")
T = TypeVar("T")

RANDOM_WARNING = "random weights: predictions are meaningless"


async def run(
    request: Request,
    state: AppState,
    name: str,
    version: int | None,
    read: Callable[[Request, Settings], Awaitable[B]],
    work: Callable[[LoadedModel, B], Awaitable[T]],
) -> tuple[LoadedModel, T]:
    """Lease `name` (its newest version, or `version`), `read` the body, then `work` on it,
    cancelled if the client goes away first.

    The lease is taken in the same step as the lookup and held until the result is in, so a
    swap or unload that comes later waits for this request (see `Registry.use`).
    """
    with state.registry.use(name, version) as model:
        body = await read(request, state.settings)
        result = await until_disconnect(request, work(model, body))
    return model, result


async def read_images(
    request: Request, settings: Settings, max_images: int | None = None
) -> Upload:
    """A multipart upload (field `image`) or a raw image body, within the settings' limits."""
    return await read_upload(
        request,
        max_bytes=settings.max_body_bytes,
        max_images=settings.max_images if max_images is None else max_images,
        timeout_s=settings.upload_timeout_s,
    )


async def read_bytes(request: Request, settings: Settings) -> bytes:
    """The whole body (the v2 protocol's JSON, and its binary tail), within the byte limit."""
    return await read_body(
        request, max_bytes=settings.max_body_bytes, timeout_s=settings.upload_timeout_s
    )


def answer_headers(model: LoadedModel, results: Sequence[Inferred], **extra: str) -> dict[str, str]:
    """Headers every inference answer carries: `Server-Timing`, and a warning on random weights."""
    headers = {"Server-Timing": server_timing(results), **extra}
    if model.weights.random:
        headers["X-Kerasserve-Warning"] = RANDOM_WARNING
    return headers


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A Pydantic model as a JSON response, serialised once (no `jsonable_encoder` pass)."""
    return Response(
        body.model_dump_json(), status_code=status, media_type="application/json", headers=headers
    )


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)
