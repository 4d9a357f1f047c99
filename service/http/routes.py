"""The API routes: predictions, the seed's `/predict`, model descriptions, health, metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from schemas import (
    Health,
    LegacyPrediction,
    LegacyPredictResponse,
    ModelInfo,
    ModelList,
    ModelRef,
    PredictResponse,
    Readiness,
)
from service import __version__
from service.errors import NotReady
from service.http.errors import describe, openapi_errors
from service.http.inference import image_result, infer_upload, server_timing, top_k
from service.http.security import require_api_key
from service.http.state import AppState, get_state
from service.http.upload import read_upload
from service.inference.models import ServedModel

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

api = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])
ops = APIRouter()


def ready_model(state: AppState, name: str) -> ServedModel:
    model = state.registry.get(name)
    if model.state.value != "ready":
        raise NotReady(f"model {model.name} is {model.state.value}; retry shortly")
    return model


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


@api.post(
    "/models/{model}/predict",
    response_model=PredictResponse,
    summary="Classify one or more images",
    openapi_extra=MULTIPART_BODY,
    responses=openapi_errors(400, 401, 404, 408, 413, 415, 422, 500, 503, 504),
)
async def predict(request: Request, state: State, model: ModelName, top_k: TopK = 5) -> Response:
    """Upload images in the multipart field `image` (several allowed, or a raw `image/*` body).

    Each image is decoded, resized to the model's input, and batched with concurrent
    requests. Results come back in upload order with the batch each image rode in.
    """
    served = ready_model(state, model)
    settings = state.settings
    upload = await read_upload(
        request,
        max_bytes=settings.max_body_bytes,
        max_images=settings.max_images,
        timeout_s=settings.upload_timeout_s,
    )
    inferred = await infer_upload(request, state, served, upload)
    assert served.weights is not None
    body = PredictResponse(
        model=ModelRef(name=served.name, weights=served.weights, runtime=served.runtime_info()),
        results=[image_result(served, item, top_k) for item in inferred],
        request_id=getattr(request.state, "request_id", None),
    )
    headers = {"Server-Timing": server_timing(inferred)}
    if served.weights.random:
        headers["X-Kerasserve-Warning"] = "random weights: predictions are meaningless"
    return json_response(body, headers=headers)


@api.get(
    "/models",
    response_model=ModelList,
    summary="List the served models",
    responses=openapi_errors(401),
)
async def list_models(state: State) -> Response:
    registry = state.registry
    default = registry.default
    return json_response(
        ModelList(
            models=[m.describe(default=m is default) for m in registry],
            default_model=default.name if default else None,
        )
    )


@api.get(
    "/models/{model}",
    response_model=ModelInfo,
    summary="Describe one model",
    responses=openapi_errors(401, 404),
)
async def get_model(state: State, model: ModelName) -> Response:
    served = state.registry.get(model)
    return json_response(served.describe(default=served is state.registry.default))


@ops.post(
    "/predict",
    response_model=LegacyPredictResponse,
    summary="The seed's contract: classify one image with the default model",
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
async def legacy_predict(request: Request, state: State) -> Response:
    """Field `image`; answers `{"success": true, "predictions": [{"label", "probability"}]}`."""
    try:
        served = state.registry.default
        if served is None or served.state.value != "ready":
            raise NotReady("the default model is not ready; retry shortly")
        settings = state.settings
        upload = await read_upload(
            request,
            max_bytes=settings.max_body_bytes,
            max_images=1,
            timeout_s=settings.upload_timeout_s,
        )
        (item,) = await infer_upload(request, state, served, upload)
    except Exception as exc:
        status, error, headers = describe(exc)
        request.state.error_code = error.code.value
        body = LegacyPredictResponse(success=False, error=error.message, code=error.code.value)
        if status >= 500 and error.code.value == "internal_error":
            raise
        return json_response(body, status, headers)
    predictions = [
        LegacyPrediction(label=p.label, probability=p.probability)
        for p in top_k(served, item.output, 5)
    ]
    return json_response(LegacyPredictResponse(success=True, predictions=predictions))


@ops.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(version=__version__)


@ops.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: every model loaded and warmed",
    responses={503: {"model": Readiness, "description": "Not ready (loading or draining)"}},
)
async def readyz(state: State) -> Response:
    registry = state.registry
    ready = registry.ready and not state.draining
    body = Readiness(
        ready=ready,
        models={m.name: m.state.value for m in registry},
        detail=None if ready else ("draining" if state.draining else "loading"),
    )
    return json_response(body, 200 if ready else 503)


@ops.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: State) -> Response:
    for model in state.registry:
        state.metrics.queue_depth.labels(model.name).set(
            model.batcher.queue_depth if model.batcher else 0
        )
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


__all__ = ["api", "ops"]
