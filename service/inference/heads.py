"""Classifier heads: what the model's last layer outputs, and how it becomes probabilities.

softmax      a distribution already (Dense(n, activation="softmax"))        served as is
logits       no activation (classifier_activation=None)                       softmax applied
binary       one sigmoid unit: p = P(class 1) (the Keras guide's classifier)  [1 - p, p]
multi_label  n independent sigmoid units                                      served as is,
                                                                              never renormalised
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from kerasserve.service.errors import ModelLoadError

logger = logging.getLogger("kerasserve.heads")

OutputKind = Literal["softmax", "logits", "binary", "multi_label"]
OUTPUT_KINDS: tuple[str, ...] = get_args(OutputKind)


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32 (the one softmax: serving and every check use it)."""
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float32)


def _activation_name(layer: Any) -> str | None:
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = getattr(activation, "__name__", None) or getattr(activation, "name", None)
    return str(name).lower() if name else None


def detect(model: Any) -> OutputKind:
    """The head kind, read from the activation of the layer that produces the output."""
    units = int(model.output_shape[-1])
    layer = _output_layer(model)
    activation = _activation_name(layer) if layer is not None else None
    if activation == "softmax":
        return "softmax"
    if activation == "sigmoid":
        return "binary" if units == 1 else "multi_label"
    if units == 1:
        # One unit and no sigmoid: a logit of class 1 (Dense(1) trained with from_logits=True).
        return "binary"
    return "logits"


def _output_layer(model: Any) -> Any:
    """The layer whose output is the model's output (skipping nothing: Activation layers count)."""
    try:
        history = model.outputs[0]._keras_history
        return history.operation if hasattr(history, "operation") else history[0]
    except (AttributeError, IndexError, TypeError):
        layers = getattr(model, "layers", None)
        return layers[-1] if layers else None


def num_classes(kind: OutputKind, units: int) -> int:
    """Classes a client sees: a binary head's one unit stands for two classes."""
    return 2 if kind == "binary" else units


def sigmoid_applied(model: Any) -> bool:
    """Whether the layer producing the model's output ends in a sigmoid."""
    layer = _output_layer(model)
    return _activation_name(layer) == "sigmoid" if layer is not None else False


def check(kind: OutputKind, units: int, where: str) -> None:
    if kind == "binary" and units != 1:
        raise ModelLoadError(
            f"{where}: output_kind 'binary' needs one output unit, the model has {units}; "
            "use 'softmax', 'logits' or 'multi_label'"
        )


def apply(kind: OutputKind, raw: np.ndarray, *, sigmoid_applied: bool = True) -> np.ndarray:
    """Turn raw model outputs (n, units) into served probabilities (n, classes).

    `sigmoid_applied`: the model's last layer is a sigmoid (False: a binary or multi-label
    head declared in config over a layer that outputs logits).
    """
    out = np.asarray(raw, dtype=np.float32)
    if kind == "softmax":
        return out
    if kind == "logits":
        return softmax(out)
    if not sigmoid_applied:
        out = (1.0 / (1.0 + np.exp(-out))).astype(np.float32)
    if kind == "binary":
        p = out[:, :1]
        return np.concatenate([1.0 - p, p], axis=1)
    return out


@dataclass(frozen=True)
class Head:
    """The transform serving applies to a runtime's raw outputs: `head(raw) -> probabilities`.

    Runtimes hold the one their model serves through, so every check of a runtime (the
    OpenVINO FP32 tolerance, the INT8 accuracy gate, calibration) judges the very numbers a
    client receives.

    >>> Head("logits")(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """

    kind: OutputKind
    sigmoid_applied: bool = True

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return apply(self.kind, raw, sigmoid_applied=self.sigmoid_applied)

    @classmethod
    def of(cls, model: Any) -> Head:
        """The head read from the model itself (its output layer's activation)."""
        return cls(detect(model), sigmoid_applied(model))
