"""The Open Inference Protocol (KServe v2 REST) beside the v1 API: its routes.

The routes call `LoadedModel.classify`, so v2 requests ride the same batcher as v1
requests; the codec (`v2_codec.py`) turns bodies into images and results into bodies.
Every failure under `/v2` answers the protocol's `{"error": "..."}`.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from kerasserve.batching import BatchingError
from kerasserve.schemas import ErrorCode
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
from kerasserve.service.errors import (
    ModelNotFound,
    NotReady,
    ServiceError,
)
from kerasserve.service.http.disconnect import until_disconnect
from kerasserve.service.http.errors import describe
from kerasserve.service.http.security import require_api_key
from kerasserve.service.http.upload import read_body
from kerasserve.service.http.v2_codec import (
    HEADER_LENGTH,
    IMAGE_INPUT,
    OUTPUT,
    PIXELS_INPUT,
    decompress,
    encode_response,
    output_tensors,
    parse_request,
    plan_outputs,
    request_images,
    split_body,
)
from kerasserve.service.inference.loaded import LoadedModel, server_timing

if TYPE_CHECKING:
    # Not at run time: the state module imports the model loaders (and so Keras), and the
    # codec below is unit-tested without them.
    from kerasserve.service.http.state import AppState

logger = logging.getLogger("kerasserve.http")


# -- errors: the protocol's {"error": "..."} -----------------------------------------------------


def error_body(request: Request, exc: Exception) -> JSONResponse:
    """`{"error": message}` with the status (and headers, e.g. `Retry-After`) of `exc`."""
    if isinstance(exc, RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in exc.errors()
        )
        status, headers, code, message = (
            422,
            {},
            ErrorCode.INVALID_REQUEST,
            f"invalid request: {problems}",
        )
    elif isinstance(exc, StarletteHTTPException):
        status, headers, message = exc.status_code, dict(exc.headers or {}), str(exc.detail)
        code = ErrorCode.NOT_FOUND if status == 404 else ErrorCode.INVALID_REQUEST
    else:
        status, body, headers = describe(exc)
        code, message = body.code, body.message
        if status >= 500 and not isinstance(exc, BatchingError | ServiceError):
            logger.error(
                "unhandled error (request %s)",
                getattr(request.state, "request_id", None),
                exc_info=exc,
            )
    request.state.error_code = code.value
    return JSONResponse(ErrorV2(error=message).model_dump(), status_code=status, headers=headers)


class V2Route(APIRoute):
    """A route whose every failure, its dependencies' included, answers `{"error": ...}`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as exc:
                return error_body(request, exc)

        return guarded


def install(app: FastAPI) -> None:
    """Answer `{"error": ...}` for unmatched paths and methods under `/v2` too (the app's
    handler decides the status, e.g. 405 with `Allow`); call after `errors.install(app)`."""
    previous = app.exception_handlers[StarletteHTTPException]

    async def handler(request: Request, exc: Exception) -> Response:
        answer = previous(request, exc)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        path = request.url.path
        if path != "/v2" and not path.startswith("/v2/"):
            return response
        body = json.loads(bytes(response.body))
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "content-type")
        }
        return JSONResponse(
            ErrorV2(error=body.get("message", "")).model_dump(),
            status_code=response.status_code,
            headers=headers,
        )

    app.add_exception_handler(StarletteHTTPException, handler)


# -- routes -----------------------------------------------------------------------------------------

router = APIRouter(prefix="/v2", route_class=V2Route, tags=["Open Inference Protocol (v2)"])


async def _get_state(request: Request) -> AppState:
    state: AppState = request.state.app
    return state


State = Annotated["AppState", Depends(_get_state)]
ModelName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        description="Model name, any case or punctuation: `MobileNetV2`, `mobilenet_v2`.",
        examples=["MobileNetV2"],
    ),
]
Version = Annotated[
    str, Path(min_length=1, max_length=20, description="An integer version.", examples=["1"])
]
Lang = Annotated[
    str | None,
    Query(
        max_length=100,
        description="Labels' language for classification (`zh-CN`); else `Accept-Language`.",
    ),
]
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


def _json(body: Any, status: int = 200) -> Response:
    return Response(body.model_dump_json(), status_code=status, media_type="application/json")


def _version(name: str, version: str | None) -> int | None:
    if version is None:
        return None
    try:
        return int(version)
    except ValueError:
        raise ModelNotFound(
            f"model {name!r} has no version {version!r}: versions are integers"
        ) from None


def _model(state: AppState, name: str, version: str | None) -> LoadedModel:
    return state.registry.get(name, _version(name, version))


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


async def _metadata(state: AppState, model: str, version: str | None) -> Response:
    loaded = _model(state, model, version)
    return _json(metadata(loaded, sorted(state.registry.entry(loaded.name).versions)))


async def _ready(state: AppState, model: str, version: str | None) -> Response:
    loaded = _model(state, model, version)
    return _json(ModelReady(name=loaded.name, ready=True))


@router.get(
    "/models/{model}",
    response_model=ModelMetadata,
    summary="Model metadata",
    dependencies=_AUTH,
    responses=_METADATA_ERRORS,
)
async def model_metadata(state: State, model: ModelName) -> Response:
    return await _metadata(state, model, None)


@router.get(
    "/models/{model}/versions/{version}",
    response_model=ModelMetadata,
    summary="Model version metadata",
    dependencies=_AUTH,
    responses=_METADATA_ERRORS,
)
async def model_version_metadata(state: State, model: ModelName, version: Version) -> Response:
    return await _metadata(state, model, version)


@router.get(
    "/models/{model}/ready",
    response_model=ModelReady,
    summary="Model readiness",
    dependencies=_AUTH,
    responses=_METADATA_ERRORS,
)
async def model_ready(state: State, model: ModelName) -> Response:
    return await _ready(state, model, None)


@router.get(
    "/models/{model}/versions/{version}/ready",
    response_model=ModelReady,
    summary="Model version readiness",
    dependencies=_AUTH,
    responses=_METADATA_ERRORS,
)
async def model_version_ready(state: State, model: ModelName, version: Version) -> Response:
    return await _ready(state, model, version)


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


async def _infer(
    request: Request, state: AppState, model: str, version: str | None, lang: str | None
) -> Response:
    # Held from lookup to answer, so a version swap or unload waits for this request.
    with state.registry.use(model, _version(model, version)) as loaded:
        settings = state.settings
        body = await read_body(
            request, max_bytes=settings.max_body_bytes, timeout_s=settings.upload_timeout_s
        )
        body = decompress(body, request.headers.get("content-encoding"), settings.max_body_bytes)
        header, tail = split_body(body, request.headers.get(HEADER_LENGTH))
        inference = parse_request(header)
        images = request_images(
            inference, tail, max_images=settings.max_images, max_pixels=settings.max_pixels
        )
        plans = plan_outputs(inference, loaded.num_classes)
        language, _ = loaded.labels_for(lang or request.headers.get("accept-language"))
        top_k = max((p.classification for p in plans), default=0) or 1
        rid = getattr(request.state, "request_id", None)
        results = await until_disconnect(
            request, loaded.classify(images, top_k, lang=language, request_id=rid)
        )
    response = InferenceResponse(
        model_name=loaded.name,
        model_version=str(loaded.version),
        id=inference.id,
        parameters={"output_kind": str(loaded.output_kind), "labels_language": language},
        outputs=[],
    )
    content, headers = encode_response(response, output_tensors(plans, results))
    headers["Server-Timing"] = server_timing(results)
    if loaded.weights.random:
        headers["X-Kerasserve-Warning"] = "random weights: predictions are meaningless"
    return Response(content, headers=headers)


@router.post(
    "/models/{model}/infer",
    response_model=InferenceResponse,
    summary="Classify images (Open Inference Protocol)",
    dependencies=_AUTH,
    openapi_extra=INFER_BODY,
    responses=_INFER_ERRORS,
)
async def infer(request: Request, state: State, model: ModelName, lang: Lang = None) -> Response:
    """Input `image` (BYTES: encoded images) or `pixels` (UINT8 [n, h, w, 3]); output
    `probabilities` (FP32 [n, classes]), or its top k with `"classification": k`."""
    return await _infer(request, state, model, None, lang)


@router.post(
    "/models/{model}/versions/{version}/infer",
    response_model=InferenceResponse,
    summary="Classify images with one version (Open Inference Protocol)",
    dependencies=_AUTH,
    openapi_extra=INFER_BODY,
    responses=_INFER_ERRORS,
)
async def infer_version(
    request: Request, state: State, model: ModelName, version: Version, lang: Lang = None
) -> Response:
    return await _infer(request, state, model, version, lang)


__all__ = ["install", "router"]
