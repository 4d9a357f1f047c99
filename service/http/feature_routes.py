"""Feature-extraction routes: list a model's layers, extract (pooled) layer outputs."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from kerasserve.schemas import FeatureResult, FeaturesResponse, LayerList
from kerasserve.service.errors import FeaturesTooLarge
from kerasserve.service.http.errors import openapi_errors, request_id
from kerasserve.service.http.lean import LeanRoute
from kerasserve.service.http.params import MULTIPART_BODY, ModelName, State
from kerasserve.service.http.pipeline import answer_headers, json_response, read_images, run
from kerasserve.service.http.security import require_api_key
from kerasserve.service.http.upload import Upload
from kerasserve.service.inference.features import Pooling
from kerasserve.service.inference.loaded import Inferred, LoadedModel
from kerasserve.service.settings import Settings

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], route_class=LeanRoute)

NPY_TYPES = ("application/octet-stream", "application/x-npy")


@router.get(
    "/models/{model}/layers",
    response_model=LayerList,
    summary="List the layers features can be taken from",
    responses=openapi_errors(401, 404),
)
async def layers(state: State, model: ModelName) -> Response:
    served = state.registry.get(model)
    features = served.features
    return json_response(
        LayerList(
            model=served.name,
            layers=list(features.layers.values()),
            default_layer=features.default_layer,
        )
    )


@router.post(
    "/models/{model}/features",
    response_model=FeaturesResponse,
    summary="Extract features (embeddings) from any layer",
    openapi_extra={
        **MULTIPART_BODY,
        "responses": {
            "200": {
                "content": {
                    "application/octet-stream": {
                        "schema": {"type": "string", "format": "binary"},
                        "description": "With `format=npy` or `Accept: application/octet-stream`: "
                        "one NumPy `.npy` file, float32, shape (images, *shape). Headers "
                        "`X-Feature-Layer` and `X-Feature-Shape` describe it.",
                    }
                }
            }
        },
    },
    responses=openapi_errors(400, 401, 404, 413, 415, 422, 503, 504),
)
async def features(
    request: Request,
    state: State,
    model: ModelName,
    layer: Annotated[
        str | None,
        Query(max_length=200, description="Layer name (default: the last spatial map)."),
    ] = None,
    pooling: Annotated[
        Literal["avg", "max", "none"] | None,
        Query(
            description="avg or max over the spatial map, none for the full map "
            "(default: avg for maps, none for vectors)."
        ),
    ] = None,
    format: Annotated[  # noqa: A002 - the query parameter's public name
        Literal["json", "npy"] | None,
        Query(description="json (default) or npy (binary float32)."),
    ] = None,
) -> Response:
    """Upload images in field `image`; get one feature vector (or map) per image, in order.

    The default (`layer` unset, `pooling=avg`) is what `include_top=False, pooling='avg'`
    gives: an embedding for search, deduplication and similarity.
    """
    rid = request_id(request)
    binary = format == "npy" or (
        format is None and request.headers.get("accept", "").split(";")[0].strip() in NPY_TYPES
    )

    async def extract(served: LoadedModel, upload: Upload) -> Extracted:
        extractors = served.features
        layer_name, pool = extractors.resolve(layer, pooling)
        shape = extractors.output_shape(layer_name, pool)
        _check_size(layer_name, pool, shape, len(upload.images), binary, state.settings)
        images, names = upload.require_images()
        inferred = await served.extract(images, layer_name, pool, names=names, request_id=rid)
        return Extracted(layer_name, pool, shape, names, inferred)

    served, done = await run(request, state, model, None, read_images, extract)
    headers = answer_headers(
        served,
        done.inferred,
        **{
            "X-Feature-Layer": done.layer,
            "X-Feature-Pooling": done.pooling,
            "X-Feature-Shape": ",".join(map(str, done.shape)),
        },
    )
    if binary:
        buf = io.BytesIO()
        vectors = np.stack([item.output for item in done.inferred]).astype("<f4")
        np.save(buf, vectors, allow_pickle=False)
        return Response(buf.getvalue(), media_type="application/octet-stream", headers=headers)
    body = FeaturesResponse(
        model=served.name,
        layer=done.layer,
        pooling=done.pooling,
        shape=list(done.shape),
        results=[
            FeatureResult(
                filename=name, vector=item.output.reshape(-1).tolist(), timing=item.timing
            )
            for name, item in zip(done.names, done.inferred, strict=True)
        ],
    )
    return json_response(body, headers=headers)


@dataclass(frozen=True)
class Extracted:
    layer: str
    pooling: Pooling
    shape: tuple[int, ...]
    names: list[str | None]
    inferred: list[Inferred]


def _check_size(
    layer: str, pool: str, shape: Sequence[int], count: int, binary: bool, settings: Settings
) -> None:
    """`FeaturesTooLarge` when the answer would hold more values than the format's limit."""
    per_image = math.prod(shape)
    total = per_image * max(1, count)
    limit = settings.max_feature_values if binary else settings.max_feature_values_json
    if total > limit:
        hint = "" if binary else "; ask format=npy for binary float32, or pool the map"
        raise FeaturesTooLarge(
            f"{layer} with pooling={pool} is {per_image:,} values per image, "
            f"{total:,} for this request; the {'npy' if binary else 'JSON'} limit is {limit:,}{hint}",
            extra={"values": total, "limit": limit, "shape": list(shape)},
        )
