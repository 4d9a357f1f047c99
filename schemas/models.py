"""Model descriptions: what is served, with which weights, runtime and batching settings."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

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
    precision: Literal["fp32", "bf16", "int8"] = Field(
        default="fp32",
        description="fp32, bf16 (OpenVINO's bf16 inference precision) or int8 (OpenVINO "
        "quantised with NNCF); bf16 and int8 serve only past their accuracy gate.",
    )
    top1_agreement: float | None = Field(
        default=None,
        description="INT8: share of held-out photos whose top-1 class equals the FP32 Keras model's.",
    )
    top5_overlap: float | None = Field(
        default=None, description="INT8: mean share of the FP32 Keras top-5 found in the top-5."
    )
    gate_images: int | None = Field(
        default=None,
        description="INT8: held-out images (crops and flips of held-out photos) the accuracy "
        "gate measured.",
    )
    calibration: str | None = Field(
        default=None, description="INT8: the photos the quantisation was calibrated on."
    )
    max_prob_diff: float | None = Field(
        default=None,
        description="bf16/int8: largest difference in any served probability from the FP32 "
        "Keras model over the gate's held-out images (reported, not gated).",
    )
    kernels: dict[str, int] | None = Field(
        default=None,
        description="OpenVINO: compute layers per kernel the CPU plugin chose (e.g. "
        "brgconv_avx512_I8), most used first.",
    )
    precision_selection: dict[str, Any] | None = Field(
        default=None,
        description="`--precision auto`: each candidate precision's gate figures and start-up "
        "images per second (or why it was rejected), and whether the choice was cached.",
    )
    selection: dict[str, float] | None = Field(
        default=None,
        description="`--runtime auto`: images per second each candidate runtime served at "
        "start-up; the fastest serves.",
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
    tuning: dict[str, Any] | None = Field(
        default=None,
        description="The batch-size limit learned from live traffic, and the figures behind it.",
    )


class ModelState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    UNLOADING = "unloading"
    UNAVAILABLE = "unavailable"


OutputKind = Literal["softmax", "logits", "binary", "multi_label"]


class ModelInfo(BaseModel):
    """Everything a client may want to know about one served model."""

    name: str
    version: int | None = Field(
        default=None, description="The version answering requests by name (the newest loaded)."
    )
    versions: list[int] = Field(default_factory=list, description="Every loaded version.")
    aliases: list[str] = Field(default_factory=list)
    family: str | None = Field(default=None, description="keras.applications constructor name.")
    state: ModelState
    error: str | None = Field(default=None, description="Why the model failed to load.")
    # Absent while a model loads or after it failed: they describe a loaded version.
    input_shape: tuple[int, int, int] | None = None
    preprocessing: Preprocessing | None = None
    weights: WeightsInfo | None = None
    num_classes: int | None = None
    output_kind: OutputKind | None = Field(
        default=None,
        description="softmax (a distribution), logits (softmax applied), binary (one sigmoid "
        "unit: two classes, p and 1-p), multi_label (independent sigmoid probabilities, "
        "never renormalised).",
    )
    labels_languages: list[str] = Field(
        default_factory=list, description="Languages labels come in; the first is the default."
    )
    runtime: RuntimeInfo | None = None
    batching: BatchingInfo | None = None
    queue_depth: int = 0
    default: bool = False


class ModelList(BaseModel):
    models: list[ModelInfo]
    default_model: str | None = None


class RepositoryModel(BaseModel):
    """One model folder of the repository, and what of it is loaded."""

    name: str
    available_versions: list[int] = Field(description="Version folders on disk.")
    served_versions: list[int] = Field(description="Those the version policy selects.")
    loaded_versions: list[int] = Field(description="Those loaded and serving now.")
    state: ModelState
    error: str | None = None


class RepositoryIndex(BaseModel):
    """`GET /v1/repository/index`: every model the repository holds."""

    repository: str | None = Field(description="The repository folder (None: models from flags).")
    models: list[RepositoryModel]
