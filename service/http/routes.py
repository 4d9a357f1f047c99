"""The API routes: predictions, the classic Flask `/predict` contract, models (ops: ops.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response

from kerasserve.schemas import (
    ImageResult,
    LegacyPrediction,
    LegacyPredictResponse,
    ModelInfo,
    ModelList,
    ModelRef,
    ModelState,
    PredictResponse,
    RepositoryIndex,
)
from kerasserve.service.errors import NotReady
from kerasserve.service.http.disconnect import until_disconnect
from kerasserve.service.http.errors import describe, openapi_errors
from kerasserve.service.http.security import require_admin_key, require_api_key
from kerasserve.service.http.state import AppState, get_state
from kerasserve.service.http.upload import read_upload
from kerasserve.service.inference.loaded import LoadedModel, server_timing

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
TopK = Annotated[int, Query(ge=1, le=100, description="How many classes to return per image.")]

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

Version = Annotated[int, Path(ge=0, description="A loaded version of the model.")]
Lang = Annotated[
    str | None,
    Query(
        max_length=100,
        description="Language of the labels (`zh-CN`, `en`); default: the `Accept-Language` "
        "header, else the model's first language.",
    ),
]
AcceptLanguage = Annotated[str | None, Header(include_in_schema=False)]

api = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])
admin = APIRouter(prefix="/v1", dependencies=[Depends(require_admin_key)], tags=["admin"])
ops = APIRouter()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def _predict(
    request: Request,
    state: AppState,
    served: LoadedModel,
    top_k: int,
    lang: str | None,
) -> Response:
    settings = state.settings
    upload = await read_upload(
        request,
        max_bytes=settings.max_body_bytes,
        max_images=settings.max_images,
        timeout_s=settings.upload_timeout_s,
    )
    images, names = upload.require_images()
    language, _ = served.labels_for(lang)
    results = await until_disconnect(
        request,
        served.classify(
            images,
            top_k,
            lang=language,
            names=names,
            request_id=getattr(request.state, "request_id", None),
        ),
    )
    body = PredictResponse(
        model=ModelRef(
            name=served.name,
            version=served.version,
            weights=served.weights,
            runtime=served.runtime_info(),
            output_kind=served.output_kind,
            labels_language=language,
        ),
        results=[
            ImageResult(filename=name, predictions=r.predictions, timing=r.timing)
            for name, r in zip(names, results, strict=True)
        ],
        request_id=getattr(request.state, "request_id", None),
    )
    headers = {"Server-Timing": server_timing(results), "Content-Language": language}
    if served.weights.random:
        headers["X-Kerasserve-Warning"] = "random weights: predictions are meaningless"
    return json_response(body, headers=headers)


PREDICT_DOC = {
    "response_model": PredictResponse,
    "summary": "Classify one or more images",
    "openapi_extra": MULTIPART_BODY,
    "responses": openapi_errors(400, 401, 404, 408, 413, 415, 422, 500, 503, 504),
}


@api.post("/models/{model}/predict", **PREDICT_DOC)  # type: ignore[arg-type]
async def predict(
    request: Request,
    state: State,
    model: ModelName,
    top_k: TopK = 5,
    lang: Lang = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    """Upload images in the multipart field `image` (several allowed, or a raw `image/*` body).

    Each image is decoded, resized to the model's input, and batched with concurrent
    requests. Results come back in upload order with the batch each image rode in, and
    `model.version` says which version answered.
    """
    with state.registry.use(model) as served:
        return await _predict(request, state, served, top_k, lang or accept_language)


@api.post("/models/{model}/versions/{version}/predict", **PREDICT_DOC)  # type: ignore[arg-type]
async def predict_version(
    request: Request,
    state: State,
    model: ModelName,
    version: Version,
    top_k: TopK = 5,
    lang: Lang = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    """Like `/v1/models/{model}/predict`, answered by one loaded version of the model."""
    with state.registry.use(model, version) as served:
        return await _predict(request, state, served, top_k, lang or accept_language)


@api.get(
    "/models",
    response_model=ModelList,
    summary="List the served models",
    responses=openapi_errors(401),
)
async def list_models(state: State) -> Response:
    registry = state.registry
    return json_response(
        ModelList(
            models=[registry.describe(entry) for entry in registry.entries],
            default_model=registry.default_name,
        )
    )


@api.get(
    "/models/{model}",
    response_model=ModelInfo,
    summary="Describe one model",
    responses=openapi_errors(401, 404),
)
async def get_model(state: State, model: ModelName) -> Response:
    registry = state.registry
    return json_response(registry.describe(registry.entry(model)))


@api.get(
    "/models/{model}/versions/{version}",
    response_model=ModelInfo,
    summary="Describe one loaded version of a model",
    responses=openapi_errors(401, 404),
)
async def get_model_version(state: State, model: ModelName, version: Version) -> Response:
    registry = state.registry
    entry = registry.entry(model)
    served = registry.get(model, version)
    return json_response(
        served.describe(
            default=entry.name == registry.default_name, versions=sorted(entry.versions)
        )
    )


@admin.post(
    "/models/{model}/load",
    response_model=ModelInfo,
    summary="Load a model from the repository, or swap in its versions anew",
    responses=openapi_errors(401, 403, 404, 409, 422, 503),
)
async def load_model(state: State, model: ModelName) -> Response:
    """Reads the model's config and version folders again, loads and warms every version its
    policy selects beside the ones serving, then moves traffic over at once; the old
    versions finish the requests they accepted, then are released. With several workers,
    it answers once every worker has done the same."""
    registry = state.registry
    entry = await registry.load(model)
    if state.workers is not None:
        await state.workers.broadcast("load", entry.name)
    return json_response(registry.describe(entry))


@admin.post(
    "/models/{model}/unload",
    response_model=ModelInfo,
    summary="Stop serving a model (after it finishes what it accepted)",
    responses=openapi_errors(401, 403, 404),
)
async def unload_model(state: State, model: ModelName) -> Response:
    registry = state.registry
    entry = await registry.unload(model)
    if state.workers is not None:
        await state.workers.broadcast("unload", entry.name)
    return json_response(registry.describe(entry))


@admin.get(
    "/repository/index",
    response_model=RepositoryIndex,
    summary="Every model of the repository, with its versions and state",
    responses=openapi_errors(401, 403),
)
async def repository_index(state: State) -> Response:
    registry = state.registry
    root = getattr(registry.repository, "root", None)
    return json_response(
        RepositoryIndex(repository=str(root) if root else None, models=registry.index())
    )


@ops.post(
    "/predict",
    response_model=LegacyPredictResponse,
    summary="The classic Flask contract: classify one image with the default model",
    openapi_extra=MULTIPART_BODY,
    dependencies=[Depends(require_api_key)],
    responses={
        **{
            s: {"model": LegacyPredictResponse, "description": "`success: false` with `error`"}
            for s in (400, 413, 415, 422, 503, 504)
        },
        **openapi_errors(401),
    },
)
async def legacy_predict(
    request: Request, state: State, accept_language: AcceptLanguage = None
) -> Response:
    """Field `image`; answers `{"success": true, "predictions": [{"label", "probability"}]}`."""
    try:
        name = state.registry.default_name
        if name is None:
            raise NotReady("no model is loaded")
        with state.registry.use(name) as served:
            settings = state.settings
            upload = await read_upload(
                request,
                max_bytes=settings.max_body_bytes,
                max_images=1,
                timeout_s=settings.upload_timeout_s,
            )
            images, names = upload.require_images()
            (result,) = await until_disconnect(
                request, served.classify(images, 5, lang=accept_language, names=names)
            )
    except Exception as exc:
        status, error, headers = describe(exc)
        request.state.error_code = error.code.value
        body = LegacyPredictResponse(success=False, error=error.message, code=error.code.value)
        if status >= 500 and error.code.value == "internal_error":
            raise
        return json_response(body, status, headers)
    predictions = [
        LegacyPrediction(label=p.label, probability=p.probability) for p in result.predictions
    ]
    return json_response(LegacyPredictResponse(success=True, predictions=predictions))


__all__ = ["admin", "api", "ops", "ModelState"]
