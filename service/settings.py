"""Settings: one `Settings` object, from CLI flags, `KERASSERVE_*` environment variables or defaults."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def cache_home() -> Path:
    """Where the server keeps what it builds once per model and machine (OpenVINO exports, INT8
    models, precision choices, JAX's compiled executables): `$KERASSERVE_CACHE_DIR`, else
    `$XDG_CACHE_HOME/kerasserve` (`~/.cache/kerasserve`)."""
    base = os.environ.get("KERASSERVE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kerasserve"
    )
    return Path(base)


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
    labels: CommaList = Field(
        default_factory=list,
        description="Labels files, one per model file; `LANG=FILE` (e.g. `zh-CN=labels.zh.txt`) "
        "adds labels in another language to every model served from flags.",
    )
    model_repository: Path | None = Field(
        None,
        description="A model repository: DIR/<model>/<version>/ with an optional "
        "DIR/<model>/config.toml (see docs/models.md). Replaces --model/--model-file.",
    )
    poll_repository_s: float = Field(
        0, ge=0, le=86_400, description="Scan the repository every N s for new versions (0: off)."
    )
    max_loaded_models: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Most model versions loaded at once (a swap counts both).",
    )
    output_kind: Literal["auto", "softmax", "logits", "binary", "multi_label"] = Field(
        "auto", description="The classifier head (auto: read from the last layer's activation)."
    )
    preprocess: Literal["caffe", "tf", "torch", "none"] | None = Field(
        None, description="Preprocessing for model files (default: that of the base model)."
    )
    unsafe_model_files: bool = Field(
        False, description="Load model files with safe_mode=False (runs code from the file!)."
    )
    runtime: Literal["keras", "openvino", "auto"] = Field(
        "auto", description="auto (the fastest that passes its check) | keras | openvino."
    )
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto",
        description="auto: the fastest OpenVINO precision (int8, bf16 where the CPU has it, "
        "fp32) past its accuracy gate, chosen at the first start and cached; int8: quantised "
        "with NNCF; bf16: OpenVINO's bf16 kernels; both served only past the gate.",
    )
    calibration_images: Path | None = Field(
        None, description="Photos to calibrate INT8 on (default: a built-in set of real photos)."
    )
    int8_min_top1: float = Field(
        0.99,
        ge=0,
        le=1,
        description="INT8 accuracy gate: least top-1 agreement with the FP32 Keras model on "
        "held-out photos.",
    )
    int8_min_top5: float = Field(
        0.95,
        ge=0,
        le=1,
        description="INT8 accuracy gate: least mean top-5 overlap with the FP32 Keras model.",
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
    workers: Literal["auto"] | Annotated[int, Field(ge=1, le=256)] = Field(
        "auto",
        description="Worker processes behind the one port, each serving every model with its "
        "share of the cores (auto: 1 below 4 cores, measured fastest on 2; else one per 2 cores).",
    )

    # batching
    max_batch_size: int = Field(32, ge=1, le=1024)
    max_wait_ms: float = Field(5.0, ge=0, le=10_000)
    max_queue: int = Field(256, ge=1, le=1_000_000)
    timeout_s: float = Field(30.0, gt=0, le=3600)
    calibrate_batch: bool = Field(
        True,
        description="Measure each bucket at start-up: with tune_batch, once, as the tuner's "
        "first guess; without, three times, capping batches at the smallest size within 90% "
        "of the best throughput.",
    )
    tune_batch: bool = Field(
        True,
        description="Learn the batch size from live traffic: images per second per bucket "
        "measured on the batches served (GET /v1/models/{m} batching.tuning).",
    )
    tf_intra_op_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="TensorFlow intra-op threads (0: one per core, measured best on 2 cores).",
    )
    tf_inter_op_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="TensorFlow inter-op threads (0: one per core).",
    )
    runtime_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="OpenVINO inference threads (0: every core; with several workers, "
        "cores // workers each).",
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
    admin_keys: CommaList = Field(
        default_factory=list,
        description="Keys for the admin routes (load, unload, repository index, classifiers); "
        "without one they answer 403.",
    )
    wechat_appid: str | None = Field(
        None, description="Mini-program appid: turns on POST /v1/auth/wechat (wx.login codes)."
    )
    # Secrets come from the environment only (KERASSERVE_WECHAT_SECRET,
    # KERASSERVE_TOKEN_SECRET): a flag would show in `ps` and shell history. `exclude`: no dump
    # of the settings carries them (worker processes read them from the environment they share).
    wechat_secret: SecretStr | None = Field(
        None, exclude=True, description="The mini-program's AppSecret."
    )
    wechat_api_base: str = Field(
        "https://api.weixin.qq.com", description="Where jscode2session is (tests: a stand-in)."
    )
    wechat_timeout_s: float = Field(5.0, gt=0, le=60, description="jscode2session deadline.")
    token_secret: SecretStr | None = Field(
        None,
        exclude=True,
        description="Signs login tokens (HS256). Unset: a random key per process, so tokens "
        "die with it and one worker refuses another's: set it with --workers N.",
    )
    token_ttl_s: int = Field(7200, ge=60, le=30 * 86_400, description="Login token lifetime.")
    rate_limit: str | None = Field(
        None,
        description="Predictions per caller, e.g. `30/minute` (`limits` syntax): per login "
        "token's openid, per API key, else per client IP. Unset: no limit, no cost.",
    )
    rate_limit_storage: str = Field(
        "memory://",
        description="Where the counts live: memory:// (per process) or redis://HOST:PORT/DB "
        "(shared by every worker and replica).",
    )
    cors_origins: CommaList = Field(default_factory=list)
    log_level: str = "info"
    access_log: bool = Field(
        False, description="One INFO line per request (off: it costs every request a log write)."
    )
    otel: bool = Field(
        False,
        description="FastAPI's native OpenTelemetry (request spans, metrics, exception logs) "
        "for the providers this process configures. Off: FastAPI would look the providers up "
        "on every request; /metrics (Prometheus) is kerasserve's own either way.",
    )

    @field_validator(
        "model", "model_file", "labels", "api_keys", "admin_keys", "cors_origins", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"--rate-limit {value!r} is not a limit; write COUNT/PERIOD, e.g. 30/minute, "
                "100/hour or 5/second"
            ) from None
        return value.strip()

    @field_validator("rate_limit_storage")
    @classmethod
    def _rate_limit_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            raise ValueError(
                f"--rate-limit-storage {value!r}: use memory:// or redis://HOST:PORT/DB"
            )
        return value

    @field_validator("token_secret")
    @classmethod
    def _token_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError(
                f"KERASSERVE_TOKEN_SECRET has {len(value.get_secret_value())} characters; use "
                "at least 32 random ones, e.g. from `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`"
            )
        return value

    @model_validator(mode="after")
    def _check_wechat(self) -> Settings:
        if bool(self.wechat_appid) != (self.wechat_secret is not None):
            missing = "KERASSERVE_WECHAT_SECRET" if self.wechat_appid else "--wechat-appid"
            raise ValueError(
                f"WeChat login needs both --wechat-appid and KERASSERVE_WECHAT_SECRET; set "
                f"{missing} too (or neither, to leave login off)"
            )
        return self

    @model_validator(mode="after")
    def _check_pairs(self) -> Settings:
        plain = self.plain_labels
        if plain and len(plain) != len(self.model_file):
            raise ValueError(
                f"got {len(plain)} --labels for {len(self.model_file)} --model-file; "
                "give one labels file per model file, in the same order (or LANG=FILE for "
                "labels in another language)"
            )
        if self.model_repository is not None and (self.model or self.model_file):
            raise ValueError(
                "--model-repository serves the models of its folder; do not combine it with "
                "--model or --model-file"
            )
        return self

    @property
    def plain_labels(self) -> list[str]:
        return [entry for entry in self.labels if not _is_language_entry(entry)]

    @property
    def language_labels(self) -> list[tuple[str, Path]]:
        """`--labels zh-CN=FILE` entries: (language, file)."""
        found = []
        for entry in self.labels:
            if _is_language_entry(entry):
                language, _, path = entry.partition("=")
                found.append((language.strip(), Path(path.strip())))
        return found

    @property
    def models(self) -> list[str]:
        """Catalogue models to serve; MobileNetV2 when nothing at all was asked for."""
        if self.model_repository is not None:
            return []
        if not self.model and not self.model_file:
            return ["MobileNetV2"]
        return list(self.model)

    @property
    def model_files(self) -> list[tuple[Path, Path | None]]:
        plain = self.plain_labels
        labels: list[Path | None] = [Path(p) for p in plain] or [None] * len(self.model_file)
        return [(Path(f), lab) for f, lab in zip(self.model_file, labels, strict=True)]

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


def _is_language_entry(entry: str) -> bool:
    """`zh-CN=labels.txt` (a language tag, then `=`), not a path that merely holds a `=`."""
    tag, sep, _ = entry.partition("=")
    return bool(sep) and bool(re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", tag.strip()))
