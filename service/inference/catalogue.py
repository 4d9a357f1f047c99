"""The model catalogue: every image classifier `keras.applications` ships, found by introspection."""

from __future__ import annotations

import difflib
import functools
import importlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from kerasserve.service.errors import ModelNotFound

PreprocessMode = Literal["caffe", "tf", "torch", "none"]

# Models whose input is (None, None, 3) take any size; 224 is what their weights were trained at.
FALLBACK_INPUT_SIZE = 224


@dataclass(frozen=True)
class ModelSpec:
    """What it takes to build and feed one keras.applications model."""

    name: str
    constructor: Callable[..., Any]
    module: str  # the implementing module, e.g. keras.src.applications.resnet_v2
    input_size: tuple[int, int]
    preprocess_mode: PreprocessMode
    preprocess_input: Callable[..., Any]

    @property
    def module_short(self) -> str:
        return self.module.rsplit(".", 1)[-1]


def normalize(name: str) -> str:
    """`MobileNet_V2`, `mobilenetv2` and `MobileNet-V2` all normalize to `mobilenetv2`."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _constructors() -> dict[str, Callable[..., Any]]:
    import keras

    return {
        name: obj
        for name, obj in sorted(vars(keras.applications).items())
        if name[:1].isupper() and callable(obj)
    }


class _DefaultSize(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


_probe_lock = threading.Lock()


def _probe_input_size(ctor: Callable[..., Any]) -> tuple[int, int]:
    """Read the default input size the constructor would use, without building the model.

    Every keras.applications constructor but MobileNetV3 asks imagenet_utils'
    `obtain_input_shape` for its shape, passing its default size; we intercept that call.
    Those that do not are built once with random weights and their input shape read.
    """
    from keras.src.applications import imagenet_utils

    original = imagenet_utils.obtain_input_shape

    def intercept(*args: Any, **kwargs: Any) -> Any:
        default_size = kwargs.get("default_size", args[1] if len(args) > 1 else None)
        raise _DefaultSize(int(default_size or FALLBACK_INPUT_SIZE))

    with _probe_lock:
        imagenet_utils.obtain_input_shape = intercept
        try:
            model = ctor(weights=None)
        except _DefaultSize as found:
            return (found.size, found.size)
        finally:
            imagenet_utils.obtain_input_shape = original
    height, width = model.input_shape[1:3]
    del model
    return (height or FALLBACK_INPUT_SIZE, width or FALLBACK_INPUT_SIZE)


def classify_preprocess(fn: Callable[..., Any]) -> PreprocessMode:
    """Tell which of Keras' preprocessing modes `fn` implements by running it on a probe."""
    probe = np.array([[[[0.0, 127.5, 255.0], [10.0, 20.0, 30.0]]]], dtype=np.float32)
    out = np.asarray(fn(probe.copy()), dtype=np.float64)
    x = probe.astype(np.float64)
    candidates: dict[PreprocessMode, np.ndarray] = {
        "none": x,
        "tf": x / 127.5 - 1.0,
        "torch": (x / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225],
        "caffe": x[..., ::-1] - [103.939, 116.779, 123.68],
    }
    for mode, expected in candidates.items():
        if out.shape == expected.shape and np.allclose(out, expected, atol=1e-3):
            return mode
    raise ValueError(f"{fn.__module__}.preprocess_input matches no known preprocessing mode")


@functools.cache
def catalogue() -> dict[str, ModelSpec]:
    """Every classifier of the installed Keras, by canonical name (built lazily, once)."""
    return {name: spec(name) for name in _constructors()}


@functools.cache
def spec(name: str) -> ModelSpec:
    """The spec of one model, by any spelling of its name. Raises `ModelNotFound`."""
    ctors = _constructors()
    canonical = resolve_name(name, list(ctors))
    ctor = ctors[canonical]
    module = importlib.import_module(ctor.__module__)
    preprocess = module.preprocess_input
    return ModelSpec(
        name=canonical,
        constructor=ctor,
        module=ctor.__module__,
        input_size=_probe_input_size(ctor),
        preprocess_mode=classify_preprocess(preprocess),
        preprocess_input=preprocess,
    )


def resolve_name(name: str, known: list[str]) -> str:
    """Match `name` against `known` ignoring case and punctuation; suggest close matches."""
    by_key = {normalize(k): k for k in known}
    key = normalize(name)
    if key in by_key:
        return by_key[key]
    close = difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(by_key[c] for c in close)}?" if close else ""
    shown = name if len(name) <= 80 else name[:77] + "..."
    raise ModelNotFound(
        f"Unknown model {shown!r}.{hint} `GET /v1/models` lists the served models; "
        "`kerasserve models` lists every model the installed Keras can serve.",
        extra={"suggestions": [by_key[c] for c in close]},
    )


def model_names() -> list[str]:
    return list(_constructors())
