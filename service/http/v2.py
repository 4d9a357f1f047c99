"""The Open Inference Protocol (KServe v2 REST) beside the v1 API: its routes.

The routes call `LoadedModel.classify`, so v2 requests ride the same batcher as v1
requests; the codec (`v2_codec.py`) turns bodies into images and results into bodies.
Every failure under `/v2` answers the protocol's `{"error": "..."}`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kerasserve.schemas.v2 import (
    ErrorV2,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
    TensorMetadata,
)
from kerasserve.service import __version__
from kerasserve.service.errors import ModelNotFound, NotReady
from kerasserve.service.http.errors import request_id, resolve
from kerasserve.service.http.lean import LeanRoute
from kerasserve.service.http.params import (
    AcceptLanguage,
    Lang,
    ModelName,
    State,
    VersionText,
    add_model_route,
)
from kerasserve.service.http.pipeline import answer_headers, json_response, read_bytes, run
from kerasserve.service.http.security import require_api_key
from kerasserve.service.http.v2_codec import (
    HEADER_LENGTH,
    IMAGE_INPUT,
    OUTPUT,
    PIXELS_INPUT,
    OutputPlan,
    decompress,
    encode_response,
    output_tensors,
    parse_request,
    plan_outputs,
    request_images,
    split_body,
)
from kerasserve.service.inference.loaded import Classified, LoadedModel

# -- errors: the protocol's {"error": "..."}, from the one error table ----------------------------


def error_body(request: Request, exc: Exception) -> JSONResponse:
    """`{"error": message}` with the status (and headers, e.g. `Retry-After`) of `exc`."""
    status, body, headers = resolve(request, exc)
    return JSONResponse(
        ErrorV2(error=body.message).model_dump(), status_code=status, headers=headers
    )


class V2Route(LeanRoute):
    """A route whose every failure, its dependencies' included, answers `{"error": ...}`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as exc:
                return error_body(request, exc)

        guarded.lean = getattr(handle, "lean", False)  # type: ignore[attr-defined]
        return guarded


def install(app: FastAPI) -> None:
    """Answer `{"error": ...}` for unmatched paths and methods under `/v2` too (the one
    error table decides the status, e.g. 405 with `Allow`); call after `errors.install(app)`."""
    previous = app.exception_handlers[StarletteHTTPException]

    async def handler(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if path == "/v2" or path.startswith("/v2/"):
            return error_body(request, exc)
        answer = previous(request, exc)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        return response

    app.add_exception_handler(StarletteHTTPException, handler)


# -- routes -----------------------------------------------------------------------------------------

router = APIRouter(prefix="/v2", route_class=V2Route, tags=["Open Inference Protocol (v2)"])


_STATUSES = {
    400: "A body or image that does not decode",
    401: "Missing or invalid API key",
    404: "Unknown model or version",
    408: "The body did not arrive in time",
    413: "Too many bytes, images or pixels",
    415: "Not an image format the server decodes",
    422: "An invalid inference request (the message says what and where)",
    500: "Inference failed",
    503: "Not ready, or overloaded (`Retry-After`)",
    504: "No result within the deadline",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorV2, "description": _STATUSES[s]} for s in statuses}


_METADATA_ERRORS = _errors(401, 404, 422, 503)
_INFER_ERRORS = {
    **_errors(*_STATUSES),
    200: {
        "description": "JSON, or with binary outputs JSON then their bytes "
        f"(`{HEADER_LENGTH}` says where the JSON ends)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}
_AUTH = [Depends(require_api_key)]


def _version(name: str, version: str | None) -> int | None:
    if version is None:
        return None
    try:
        return int(version)
    except ValueError:
        raise ModelNotFound(
            f"model {name!r} has no version {version!r}: versions are integers"
        ) from None


def _platform(model: LoadedModel) -> str:
    runtime = model.runtime.name
    if runtime != "keras":
        return f"keras_{runtime}"
    return "keras_jax" if type(model.runtime).__name__ == "JaxRuntime" else "keras_tensorflow"


def metadata(model: LoadedModel, versions: Sequence[int]) -> ModelMetadata:
    h, w = model.input_size
    return ModelMetadata(
        name=model.name,
        versions=[str(v) for v in versions],
        platform=_platform(model),
        inputs=[
            TensorMetadata(name=IMAGE_INPUT, datatype="BYTES", shape=[-1]),
            TensorMetadata(name=PIXELS_INPUT, datatype="UINT8", shape=[-1, h, w, 3]),
        ],
        outputs=[TensorMetadata(name=OUTPUT, datatype="FP32", shape=[-1, model.num_classes])],
    )


@router.get(
    "",
    response_model=ServerMetadata,
    summary="Server metadata",
    dependencies=_AUTH,
    responses=_errors(401),
)
async def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="kerasserve", version=__version__)


@router.get("/health/live", response_model=ServerLive, summary="Liveness")
async def server_live() -> ServerLive:
    return ServerLive(live=True)


@router.get(
    "/health/ready",
    response_model=ServerReady,
    summary="Readiness: every model ready",
    responses=_errors(503),
)
async def server_ready(state: State) -> ServerReady:
    if state.draining:
        raise NotReady("the server is draining")
    if not state.registry.ready:
        raise NotReady("not every model is ready; retry shortly")
    return ServerReady(ready=True)


async def model_metadata(state: State, model: ModelName, version: VersionText) -> Response:
    loaded = state.registry.get(model, _version(model, version))
    return json_response(metadata(loaded, sorted(state.registry.entry(loaded.name).versions)))


async def model_ready(state: State, model: ModelName, version: VersionText) -> Response:
    loaded = state.registry.get(model, _version(model, version))
    return json_response(ModelReady(name=loaded.name, ready=True))


_METADATA = {"methods": ["GET"], "dependencies": _AUTH, "responses": _METADATA_ERRORS}
add_model_route(
    router,
    "",
    model_metadata,
    response_model=ModelMetadata,
    summary="Model metadata",
    version_summary="Model version metadata",
    **_METADATA,
)
add_model_route(
    router,
    "/ready",
    model_ready,
    response_model=ModelReady,
    summary="Model readiness",
    version_summary="Model version readiness",
    **_METADATA,
)


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `$defs` references replaced by the definitions (OpenAPI resolves
    `#/$defs/...` against the whole document, where they do not exist)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


INFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An inference request JSON object; with the binary data extension, "
        f"followed by the inputs' bytes ({HEADER_LENGTH} says where the JSON ends).",
        "content": {
            "application/json": {"schema": _inline(InferenceRequest.model_json_schema())},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def infer(
    request: Request,
    state: State,
    model: ModelName,
    version: VersionText,
    lang: Lang = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    """Input `image` (BYTES: encoded images) or `pixels` (UINT8 [n, h, w, 3]); output
    `probabilities` (FP32 [n, classes]), or its top k with `"classification": k`."""
    rid = request_id(request)

    async def classify(loaded: LoadedModel, body: bytes) -> Answer:
        settings = state.settings
        body = decompress(body, request.headers.get("content-encoding"), settings.max_body_bytes)
        header, tail = split_body(body, request.headers.get(HEADER_LENGTH))
        inference = parse_request(header)
        images = request_images(
            inference, tail, max_images=settings.max_images, max_pixels=settings.max_pixels
        )
        plans = plan_outputs(inference, loaded.num_classes)
        language, labels = loaded.labels_for(lang or accept_language)
        top_k = max((p.classification for p in plans), default=0) or 1
        results = await loaded.classify(images, top_k, labels, request_id=rid)
        return Answer(inference.id, language, plans, results)

    loaded, answer = await run(
        request, state, model, _version(model, version), read_bytes, classify
    )
    response = InferenceResponse(
        model_name=loaded.name,
        model_version=str(loaded.version),
        id=answer.id,
        parameters={"output_kind": str(loaded.output_kind), "labels_language": answer.language},
        outputs=[],
    )
    content, headers = encode_response(response, output_tensors(answer.plans, answer.results))
    return Response(content, headers=answer_headers(loaded, answer.results, **headers))


@dataclass(frozen=True)
class Answer:
    id: str | None
    language: str
    plans: list[OutputPlan]
    results: list[Classified]


add_model_route(
    router,
    "/infer",
    infer,
    methods=["POST"],
    response_model=InferenceResponse,
    summary="Classify images (Open Inference Protocol)",
    version_summary="Classify images with one version (Open Inference Protocol)",
    dependencies=_AUTH,
    openapi_extra=INFER_BODY,
    responses=_INFER_ERRORS,
)


__all__ = ["install", "router"]
