"""Feature-extraction responses: embeddings and intermediate layer outputs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kerasserve.schemas.predictions import Timing


class FeatureLayer(BaseModel):
    name: str
    output_shape: list[int | None]


class LayerList(BaseModel):
    model: str
    layers: list[FeatureLayer]
    default_layer: str


class FeatureResult(BaseModel):
    filename: str | None = None
    vector: list[float] | None = Field(default=None, description="Flattened float32 values.")
    timing: Timing


class FeaturesResponse(BaseModel):
    model: str
    layer: str
    pooling: str
    shape: list[int] = Field(description="Shape of one image's features (after pooling).")
    results: list[FeatureResult]
