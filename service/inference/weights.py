"""Building a model with the weights the operator asked for, and saying which it got."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from kerasserve.schemas import WeightsInfo, WeightsKind
from kerasserve.service.errors import ModelLoadError
from kerasserve.service.inference.catalogue import ModelSpec

logger = logging.getLogger("kerasserve.weights")

RANDOM_WARNING = (
    "random weights: predictions are meaningless (start with --weights imagenet or PATH)"
)
_URL = re.compile(r"URL fetch failure on (\S+):\s")


def keras_cache_dir() -> Path:
    """Where `keras.utils.get_file` keeps downloaded weights: `$KERAS_HOME/models`."""
    from keras.src.backend import config

    return Path(config.keras_home()) / "models"


class WeightsUnavailable(ModelLoadError):
    """ImageNet weights are neither in Keras' cache nor downloadable."""

    def __init__(self, model: str, url: str | None, cause: BaseException) -> None:
        cache = keras_cache_dir()
        filename = url.rsplit("/", 1)[-1] if url else "<weights file>"
        where = f" from {url}" if url else ""
        super().__init__(
            f"ImageNet weights for {model} are not in Keras' cache and cannot be downloaded "
            f"({type(cause).__name__}: {str(cause)[:200]}). Either place the file {filename!r}"
            f"{where} at {cache / filename}, or pass --weights PATH to a weights file, "
            "or --weights none for random weights (tests and benchmarks)."
        )
        self.filename = filename
        self.cache_dir = cache


def _build_imagenet(spec: ModelSpec, **kwargs: Any) -> Any:
    try:
        return spec.constructor(weights="imagenet", **kwargs)
    except Exception as exc:
        match = _URL.search(str(exc))
        if match or isinstance(exc, OSError):
            raise WeightsUnavailable(spec.name, match.group(1) if match else None, exc) from exc
        raise


# Random weights are drawn from this seed: the same on every start, so a restart finds its
# OpenVINO export (keyed by the weights' values) in the cache instead of exporting again.
RANDOM_SEED = 1234


def _random(spec: ModelSpec, **kwargs: Any) -> Any:
    import keras

    keras.utils.set_random_seed(RANDOM_SEED)
    return spec.constructor(weights=None, **kwargs)


def build(spec: ModelSpec, weights: str, **kwargs: Any) -> tuple[Any, WeightsInfo]:
    """Build `spec`'s model with `weights`: `auto`, `imagenet`, `none` or a path to a file."""
    choice = weights.strip()
    lowered = choice.lower()
    if lowered in ("none", "random"):
        return _random(spec, **kwargs), WeightsInfo(
            kind=WeightsKind.RANDOM, random=True, warning=RANDOM_WARNING
        )
    if lowered == "imagenet":
        return _build_imagenet(spec, **kwargs), WeightsInfo(kind=WeightsKind.IMAGENET, random=False)
    if lowered == "auto":
        try:
            return _build_imagenet(spec, **kwargs), WeightsInfo(
                kind=WeightsKind.IMAGENET, random=False
            )
        except WeightsUnavailable as exc:
            logger.warning(
                "!!! %s: serving RANDOM weights, predictions are meaningless !!! %s",
                spec.name,
                exc,
            )
            return _random(spec, **kwargs), WeightsInfo(
                kind=WeightsKind.RANDOM,
                random=True,
                warning=f"{RANDOM_WARNING}; ImageNet weights were not available offline",
            )
    path = Path(os.path.expanduser(choice))
    if not path.is_file():
        raise ModelLoadError(
            f"--weights {choice!r} is not auto, imagenet, none, or an existing file"
        )
    try:
        model = spec.constructor(weights=str(path), **kwargs)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load weights file {str(path)!r} into {spec.name}: {exc}"
        ) from exc
    return model, WeightsInfo(kind=WeightsKind.FILE, path=str(path), random=False)


def fetch(spec: ModelSpec) -> Path:
    """Make sure `spec`'s ImageNet weights are in Keras' cache (downloading them if needed)."""
    model = _build_imagenet(spec)
    del model
    return keras_cache_dir()
