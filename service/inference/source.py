"""What to serve: one version of one model, with every setting that shapes how it loads."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from kerasserve.service.inference.catalogue import PreprocessMode, model_names, resolve_name

if TYPE_CHECKING:
    from kerasserve.service.settings import Settings


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


def base_source(settings: Settings) -> ModelSource:
    """The settings every model starts from (a repository's config.toml overrides them)."""
    return ModelSource(
        name="",
        weights=settings.weights,
        extra_labels=tuple(settings.language_labels),
        preprocess=settings.preprocess,
        output_kind=settings.output_kind,
        safe_mode=not settings.unsafe_model_files,
        runtime=settings.runtime,
        precision=settings.precision,
        calibration_dir=settings.calibration_images,
        int8_min_top1=settings.int8_min_top1,
        int8_min_top5=settings.int8_min_top5,
        tolerance=settings.runtime_tolerance,
        streams=settings.runtime_streams,
        max_feature_outputs=settings.max_feature_outputs,
        calibrate_batch=settings.calibrate_batch,
        tune_batch=settings.tune_batch,
    )


def model_sources(settings: Settings) -> list[ModelSource]:
    """`--model` and `--model-file`: one version each."""
    base = base_source(settings)
    known = model_names()
    sources = [replace(base, name=resolve_name(name, known)) for name in settings.models]
    for path, labels in settings.model_files:
        sources.append(replace(base, name=path.stem, model_file=path, labels_file=labels))
    return sources
