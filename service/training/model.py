"""The fine-tuning model: the base's own preprocessing in the graph, the base, a new softmax head.

The recipe is the Keras guide's: raw 0-255 RGB pixels in, the base's `preprocess_input` as
layers (so the saved file is whole and serves with `preprocess = "none"`), the base called with
`training=False` (its BatchNorm layers stay in inference mode even when unfrozen), global average
pooling, dropout, a Dense softmax over the user's classes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from kerasserve.service.errors import ModelLoadError
from kerasserve.service.inference import weights
from kerasserve.service.inference.catalogue import ModelSpec, PreprocessMode
from kerasserve.service.training.errors import InvalidOption

logger = logging.getLogger("kerasserve.train")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
BN_STATISTICS_PHOTOS = 64
# A random base's pooled features are ~1e-12 (a new model's BatchNorm statistics): either set
# those statistics from the photos, or keep them and feed the head unit-length features.
RANDOM_BASE_ROUTES = ("bn-statistics", "unit-norm")


@dataclass
class BaseWeights:
    """Which weights the base started from, and whether its BatchNorm statistics were re-set."""

    kind: str  # imagenet | file | random
    path: str | None
    bn_statistics_from_photos: int  # photos the BatchNorm statistics were set from (0: not)
    warning: str | None = None
    random_base: str | None = None  # how a random base was made usable: RANDOM_BASE_ROUTES

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "random_base": self.random_base,
            "bn_statistics_from_photos": self.bn_statistics_from_photos,
            "warning": self.warning,
        }


def preprocessing_layer(mode: PreprocessMode) -> Any | None:
    """Keras' `preprocess_input` of `mode` as one built-in layer (None for mode `none`).

    Built-in layers only, so the saved file loads with `safe_mode=True`: `tf` and `torch` are
    per-channel affine maps (Normalization with a fixed mean and variance); `caffe` also swaps
    RGB to BGR, which a fixed 1x1 convolution does (a permutation matrix, the means as bias).
    """
    import keras

    if mode == "none":
        return None
    if mode == "tf":
        return keras.layers.Normalization(mean=127.5, variance=127.5**2, name="preprocess_tf")
    if mode == "torch":
        mean = [255.0 * m for m in IMAGENET_MEAN]
        variance = [(255.0 * s) ** 2 for s in IMAGENET_STD]
        return keras.layers.Normalization(mean=mean, variance=variance, name="preprocess_torch")
    swap = np.zeros((1, 1, 3, 3), dtype=np.float32)
    for out_channel, in_channel in enumerate((2, 1, 0)):
        swap[0, 0, in_channel, out_channel] = 1.0
    bias = -np.asarray(CAFFE_MEAN_BGR, dtype=np.float32)
    return keras.layers.Conv2D(
        3,
        1,
        kernel_initializer=keras.initializers.Constant(swap),
        bias_initializer=keras.initializers.Constant(bias),
        trainable=False,
        name="preprocess_caffe",
    )


def build_base(
    spec: ModelSpec, choice: str, image_size: tuple[int, int]
) -> tuple[Any, BaseWeights]:
    """`spec`'s base without its top at `image_size`, with the weights asked for.

    `auto` is ImageNet when Keras' cache has them, else random (the caller then sets the
    BatchNorm statistics from photos); a path is the weights of the base without its top.
    """
    shape = (image_size[0], image_size[1], 3)
    try:
        base, info = weights.build(spec, choice, include_top=False, input_shape=shape)
    except ModelLoadError as exc:
        raise InvalidOption(f"--weights {choice!r}: {exc}") from exc
    except ValueError as exc:  # the constructor refused the input size
        raise InvalidOption(
            f"--image-size {image_size[0]}: {spec.name} refuses it ({exc}); pick another "
            f"size (its default is {spec.input_size[0]})"
        ) from exc
    if info.random and choice.strip().lower() == "auto":
        warning = (
            f"ImageNet weights for {spec.name} are not in Keras' cache: training on a RANDOM "
            "base (see --random-base). Accuracy will be far below a pretrained base; run `kerasserve fetch-weights {spec.name}` where the "
            "internet is reachable, or pass --weights PATH"
        )
    elif info.random:
        warning = (
            "--weights none: a RANDOM base (a fresh base's BatchNorm statistics shrink its "
            "features to ~1e-12: no head learns on them as they are)"
        )
    else:
        warning = None
    return base, BaseWeights(info.kind.value, info.path, 0, warning)


def set_batchnorm_statistics(base: Any, pixels: np.ndarray, preprocess: Any | None) -> int:
    """Make every BatchNorm layer's moving statistics those of `pixels` (one training pass).

    Momentum 0 makes the moving mean and variance the batch's own; the base must be trainable
    for `training=True` to reach its BatchNorm layers. Returns the photos used.
    """
    import keras

    norms = [
        layer
        for layer in base._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    saved = [layer.momentum for layer in norms]
    x = keras.ops.convert_to_tensor(pixels.astype("float32"))
    if preprocess is not None:
        x = preprocess(x)
    try:
        for layer in norms:
            layer.momentum = 0.0
        base(x, training=True)
    finally:
        for layer, momentum in zip(norms, saved, strict=True):
            layer.momentum = momentum
    return len(pixels)


def feature_scale(base: Any, pixels: np.ndarray, preprocess: Any | None) -> float:
    """The median length of the base's pooled features over `pixels` (inference mode)."""
    import keras

    x = keras.ops.convert_to_tensor(pixels.astype("float32"))
    if preprocess is not None:
        x = preprocess(x)
    pooled = np.asarray(keras.ops.mean(base(x, training=False), axis=(1, 2)), dtype=np.float64)
    return float(np.median(np.linalg.norm(pooled, axis=1)))


def classifier(
    base: Any, preprocess: Any | None, classes: int, name: str, *, unit_norm: float | None = None
) -> Any:
    """Raw pixels -> preprocessing -> base (inference mode) -> pooling -> Dense softmax.

    `unit_norm` (the features' typical length) puts a rescaling by it and an L2 normalisation
    between pooling and the head: a fresh base's features are ~1e-12, below Keras' own
    normalisation floor (1e-12 on the length), but their direction still tells classes apart,
    which a Dense head on unit vectors can use.
    """
    import keras

    height, width = base.input_shape[1:3]
    inputs = keras.Input((height, width, 3), name="pixels")
    x = preprocess(inputs) if preprocess is not None else inputs
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if unit_norm is not None:
        x = keras.layers.Rescaling(1.0 / unit_norm, name="feature_scale")(x)
        x = keras.layers.UnitNormalization(name="unit_norm")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def unfreeze_top(base: Any, count: int) -> int:
    """Make the top `count` layers of `base` trainable, BatchNorm layers excepted (as the guide
    does: their statistics would be ruined by small batches). Returns the layers unfrozen."""
    import keras

    base.trainable = True
    layers = base.layers
    cut = max(0, len(layers) - count)
    unfrozen = 0
    for i, layer in enumerate(layers):
        trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable
        unfrozen += int(trainable and bool(layer.weights))
    return unfrozen
