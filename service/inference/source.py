"""What to serve: one version of one model, with every setting that shapes how it loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kerasserve.service.inference.catalogue import PreprocessMode


@dataclass(frozen=True)
class ModelSource:
    """A catalogue model (`family`, or `name` itself) or a user's `.keras` file, at one version.

    Server flags fill these for `--model`/`--model-file`; a repository's `config.toml`
    fills them per model (its settings win over the flags).
    """

    name: str
    version: int = 1
    family: str | None = None
    weights: str = "auto"
    model_file: Path | None = None
    labels_file: Path | None = None
    labels_language: str = "en"
    extra_labels: tuple[tuple[str, Path], ...] = ()
    preprocess: PreprocessMode | None = None
    output_kind: str = "auto"
    safe_mode: bool = True
    runtime: str = "auto"
    precision: str = "fp32"
    calibration_dir: Path | None = None
    int8_min_top1: float = 0.99
    int8_min_top5: float = 0.95
    tolerance: float = 1e-4
    streams: int = 0
    max_feature_outputs: int = 4
    calibrate_batch: bool = True
    tune_batch: bool = True

    @property
    def catalogue_name(self) -> str:
        return self.family or self.name
