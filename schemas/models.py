"""Model descriptions: what is served, with which weights, runtime and batching settings."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field


class WeightsKind(StrEnum):
    IMAGENET = "imagenet"
    RANDOM = "random"
    FILE = "file"
    MODEL_FILE = "model-file"


class WeightsInfo(BaseModel):
    """Which weights a model runs. `random` means its predictions carry no meaning."""

    kind: WeightsKind
    path: str | None = Field(default=None, description="File the weights came from, if any.")
    random: bool = Field(description="True when the weights are randomly initialised.")
    warning: str | None = None


class Preprocessing(BaseModel):
    """How pixels are prepared for the model."""

    mode: Literal["caffe", "tf", "torch", "none"] = Field(
        description="caffe: BGR minus means; tf: x/127.5-1; torch: ImageNet mean/std; "
        "none: the model rescales raw 0-255 RGB itself."
    )
    module: str | None = Field(default=None, description="Module whose preprocess_input is used.")
    input_size: tuple[int, int] = Field(description="(height, width) images are resized to.")


class RuntimeInfo(BaseModel):
    """The engine that runs the forward pass."""

    name: str = Field(description="keras, openvino, ...")
    detail: str | None = None
    max_abs_diff: float | None = Field(
        default=None, description="Measured difference from the Keras reference on a probe batch."
    )


class BatchingInfo(BaseModel):
    max_batch_size: int
    max_wait_ms: float
    max_queue: int
    max_concurrent_batches: int = Field(
        default=1,
        description="Batches run side by side: the runtime's execution streams (OpenVINO).",
    )
    timeout_s: float
    buckets: list[int] = Field(description="Batch sizes compiled and warmed at start-up.")
    configured_max_batch_size: int | None = Field(
        default=None,
        description="The operator's maximum when calibration lowered `max_batch_size`.",
    )
    throughput_by_batch: dict[int, float] | None = Field(
        default=None, description="Images per second measured at each bucket at start-up."
    )


class ModelState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ModelInfo(BaseModel):
    """Everything a client may want to know about one served model."""

    name: str
    aliases: list[str] = Field(default_factory=list)
    family: str | None = Field(default=None, description="keras.applications constructor name.")
    input_shape: tuple[int, int, int]
    preprocessing: Preprocessing
    weights: WeightsInfo
    num_classes: int
    runtime: RuntimeInfo
    batching: BatchingInfo
    state: ModelState
    queue_depth: int = 0
    default: bool = False


class ModelList(BaseModel):
    models: list[ModelInfo]
    default_model: str | None = None
