"""The API routes: predictions, the classic Flask `/predict` contract, models (ops: ops.py)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from kerasserve.batching import BatchingError
from kerasserve.schemas import (
    ImageResult,
    LegacyPrediction,
    LegacyPredictResponse,
    ModelInfo,
    ModelList,
    ModelState,
    PredictResponse,
    RepositoryIndex,
)
from kerasserve.service.errors import ModelLoadError, ModelUnavailable, NotReady, ServiceError
from kerasserve.service.http.errors import openapi_errors, request_id, resolve
from kerasserve.service.http.lean import LeanRoute
from kerasserve.service.http.params import (
    MULTIPART_BODY,
    AcceptLanguage,
    Lang,
    ModelName,
    State,
    TopK,
    Version,
    add_model_route,
)
from kerasserve.service.http.pipeline import answer_headers, json_response, read_images, run
from kerasserve.service.http.security import require_admin_key, require_api_key
from kerasserve.service.http.state import AppState
from kerasserve.service.http.upload import Upload
from kerasserve.service.inference.loaded import Classified, LoadedModel
from kerasserve.service.settings import Settings

# What v1's classification gives back: the labels' language, the file names, the results.
Named = tuple[str, list[str | None], list[Classified]]

api = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], route_class=LeanRoute)
admin = APIRouter(
    prefix="/v1", dependencies=[Depends(require_admin_key)], tags=["admin"], route_class=LeanRoute
)
ops = APIRouter(route_class=LeanRoute)


async def predict(
    request: Request,
    state: State,
    model: ModelName,
    version: Version,
    top_k: TopK = 5,
    lang: Lang = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    """Upload images in the multipart field `image` (several allowed, or a raw `image/*` body).

    Each image is decoded, resized to the model's input, and batched with concurrent
    requests. Results come back in upload order with the batch each image rode in, and
    `model.version` says which version answered (`/versions/{version}/predict` picks one).
    """
    rid = request_id(request)

    async def classify(served: LoadedModel, upload: Upload) -> Named:
        images, names = upload.require_images()
        language, labels = served.labels_for(lang or accept_language)
        results = await served.classify(images, top_k, labels, names=names, request_id=rid)
        return language, names, results

    served, (language, names, results) = await run(
        request, state, model, version, read_images, classify
    )
    body = PredictResponse(
        model=served.model_ref(language),
        results=[
            ImageResult(filename=name, predictions=r.predictions, timing=r.timing)
            for name, r in zip(names, results, strict=True)
        ],
        request_id=rid,
    )
    headers = answer_headers(served, results, **{"Content-Language": language})
    return json_response(body, headers=headers)


add_model_route(
    api,
    "/predict",
    predict,
    methods=["POST"],
    response_model=PredictResponse,
    summary="Classify one or more images",
    version_summary="Classify images with one loaded version of the model",
    openapi_extra=MULTIPART_BODY,
    responses=openapi_errors(400, 401, 404, 408, 413, 415, 422, 500, 503, 504),
)


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
    return await _change(state, model, "load")


@admin.post(
    "/models/{model}/unload",
    response_model=ModelInfo,
    summary="Stop serving a model (after it finishes what it accepted)",
    responses=openapi_errors(401, 403, 404),
)
async def unload_model(state: State, model: ModelName) -> Response:
    return await _change(state, model, "unload")


async def _change(state: AppState, model: str, action: Literal["load", "unload"]) -> Response:
    """Load or unload `model` here, then in every sibling worker; describe what came of it."""
    registry = state.registry
    try:
        entry = await (registry.load(model) if action == "load" else registry.unload(model))
    except ModelLoadError as exc:
        # What served before still serves: the swap happens only once every version loaded.
        raise ModelUnavailable(
            f"{model} did not load: {exc}; the versions that served before still serve"
        ) from exc
    if state.workers is not None:
        await state.workers.broadcast(action, entry.name)
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

    async def classify(served: LoadedModel, upload: Upload) -> list[Classified]:
        images, names = upload.require_images()
        _, labels = served.labels_for(accept_language)
        return await served.classify(images, 5, labels, names=names)

    try:
        name = state.registry.default_name
        if name is None:
            raise NotReady("no model is loaded")
        _, (result,) = await run(request, state, name, None, _read_one_image, classify)
    except (ServiceError, BatchingError) as exc:  # anything else: the 500 ErrorResponse
        status, error, headers = resolve(request, exc)
        body = LegacyPredictResponse(success=False, error=error.message, code=error.code.value)
        return json_response(body, status, headers)
    predictions = [
        LegacyPrediction(label=p.label, probability=p.probability) for p in result.predictions
    ]
    return json_response(LegacyPredictResponse(success=True, predictions=predictions))


async def _read_one_image(request: Request, settings: Settings) -> Upload:
    return await read_images(request, settings, max_images=1)


__all__ = ["admin", "api", "ops", "ModelState"]
