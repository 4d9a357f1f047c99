"""Settings: one `Settings` object, from CLI flags, `KERASSERVE_*` environment variables or defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of a kerasserve server. Environment: `KERASSERVE_<NAME>`.

    List settings (`model`, `model_file`, `labels`, `api_keys`, `cors_origins`) take
    comma-separated values in the environment, e.g. `KERASSERVE_MODEL=ResNet50,InceptionV3`.
    """

    model_config = SettingsConfigDict(env_prefix="KERASSERVE_", extra="forbid")

    # what to serve
    model: CommaList = Field(
        default_factory=list, description="keras.applications model names (default MobileNetV2)."
    )
    weights: str = Field("auto", description="auto | imagenet | none | PATH to a weights file.")
    model_file: CommaList = Field(default_factory=list, description="User .keras model files.")
    labels: CommaList = Field(default_factory=list, description="Labels files, one per model file.")
    preprocess: Literal["caffe", "tf", "torch", "none"] | None = Field(
        None, description="Preprocessing for model files (default: that of the base model)."
    )
    unsafe_model_files: bool = Field(
        False, description="Load model files with safe_mode=False (runs code from the file!)."
    )
    runtime: Literal["keras", "openvino", "auto"] = Field(
        "keras", description="keras | openvino | auto (the fastest that passes its check)."
    )
    runtime_tolerance: float = Field(
        1e-4,
        gt=0,
        le=1,
        description="Largest probability difference from Keras a runtime may show.",
    )
    runtime_streams: int = Field(
        0,
        ge=0,
        le=64,
        description="OpenVINO execution streams, each running its own batch: 0 = as many as "
        "its throughput hint picks for this CPU; 1 = one stream over every core (lowest "
        "latency for a lone request, less throughput under load).",
    )

    # feature extraction
    max_feature_outputs: int = Field(
        4, ge=1, le=64, description="Distinct (layer, pooling) outputs kept per model."
    )
    max_feature_values_json: int = Field(
        262_144, ge=1, description="Floats per /features response in JSON (more: use npy)."
    )
    max_feature_values: int = Field(
        16_777_216, ge=1, description="Floats per /features response in any format."
    )

    # where
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)

    # batching
    max_batch_size: int = Field(32, ge=1, le=1024)
    max_wait_ms: float = Field(5.0, ge=0, le=10_000)
    max_queue: int = Field(256, ge=1, le=1_000_000)
    timeout_s: float = Field(30.0, gt=0, le=3600)
    calibrate_batch: bool = Field(
        True,
        description="Measure each bucket at start-up and cap batches at the smallest size "
        "within 90% of the best throughput.",
    )

    # limits
    max_body_mb: float = Field(10.0, gt=0, le=1024, description="Request body limit, MB.")
    max_pixels: int = Field(50_000_000, ge=1, description="Decoded pixels per image.")
    max_images: int = Field(32, ge=1, le=1024, description="Images per request.")
    upload_timeout_s: float = Field(30.0, gt=0, description="Time allowed to receive a body.")
    decode_workers: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, le=64)
    drain_timeout_s: float = Field(30.0, ge=0, description="Graceful-shutdown drain bound.")

    # security and HTTP
    api_keys: CommaList = Field(default_factory=list, description="If set, model routes need one.")
    cors_origins: CommaList = Field(default_factory=list)
    log_level: str = "info"

    @field_validator("model", "model_file", "labels", "api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @model_validator(mode="after")
    def _check_pairs(self) -> Settings:
        if self.labels and len(self.labels) != len(self.model_file):
            raise ValueError(
                f"got {len(self.labels)} --labels for {len(self.model_file)} --model-file; "
                "give one labels file per model file, in the same order"
            )
        return self

    @property
    def models(self) -> list[str]:
        """Catalogue models to serve; MobileNetV2 when nothing at all was asked for."""
        if not self.model and not self.model_file:
            return ["MobileNetV2"]
        return list(self.model)

    @property
    def model_files(self) -> list[tuple[Path, Path | None]]:
        labels: list[Path | None] = [Path(p) for p in self.labels] or [None] * len(self.model_file)
        return [(Path(f), lab) for f, lab in zip(self.model_file, labels, strict=True)]

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)
