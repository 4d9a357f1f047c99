"""Prediction responses: the v1 API and the classic Flask `/predict` contract."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kerasserve.schemas.models import OutputKind, RuntimeInfo, WeightsInfo


class Prediction(BaseModel):
    """One class and its probability."""

    index: int = Field(description="Position of the class in the model's output vector.")
    class_id: str = Field(description="Stable class id: the WordNet id for ImageNet models.")
    label: str = Field(description="Human-readable class name.")
    probability: float = Field(ge=0.0, le=1.0)


class Timing(BaseModel):
    """Where the time of one image went, and the batch it rode in."""

    queue_ms: float = Field(description="From entering the queue to its batch starting.")
    inference_ms: float = Field(
        description="Duration of the model call for the whole batch (with OpenVINO streams, "
        "including any wait for a stream the batch before it still held)."
    )
    batch_size: int = Field(ge=1, description="Images in the batch this image rode in.")
    decode_ms: float | None = Field(default=None, description="Decoding and resizing the upload.")


class ImageResult(BaseModel):
    """The result for one uploaded image, in upload order."""

    filename: str | None = None
    predictions: list[Prediction]
    timing: Timing


class ModelRef(BaseModel):
    """Which model answered, and with which weights and runtime."""

    name: str
    version: int | None = Field(default=None, description="The version that answered.")
    weights: WeightsInfo
    runtime: RuntimeInfo = Field(
        description="The runtime and precision that answered, with the figures of its check "
        "or accuracy gate; its whole description (detail, kernels, how it was chosen) is in "
        "`GET /v1/models/{model}`."
    )
    output_kind: OutputKind | None = Field(
        default=None,
        description="multi_label: probabilities are independent (they do not sum to 1).",
    )
    labels_language: str | None = Field(
        default=None, description="Language of the labels (`?lang=` or `Accept-Language`)."
    )


class PredictResponse(BaseModel):
    """Response of `POST /v1/models/{model}/predict`."""

    model: ModelRef
    results: list[ImageResult]
    request_id: str | None = None


class LegacyPrediction(BaseModel):
    """A prediction of the classic Flask `/predict` contract."""

    label: str
    probability: float


class LegacyPredictResponse(BaseModel):
    """The classic Flask `/predict` response; `error` is set when `success` is false."""

    success: bool
    predictions: list[LegacyPrediction] = Field(default_factory=list)
    error: str | None = None
    code: str | None = None
