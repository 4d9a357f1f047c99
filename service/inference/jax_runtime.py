"""Keras runtime on the JAX backend: the model's preprocessing and forward pass in one `jax.jit`.

With `KERAS_BACKEND=jax` the same `keras.applications` model runs through XLA on whatever
device JAX finds first (a GPU when `jax[cuda]` sees one, else the CPU), and TensorFlow is
never imported. Padding, the head, warm-up and the description are `KerasBase`'s, shared with
the TensorFlow runtime: uint8 batches in, padded to a bucket so every call reuses one of the
executables compiled at warm-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from kerasserve.service.errors import ModelLoadError
from kerasserve.service.inference.heads import Head
from kerasserve.service.inference.runtime import KerasBase
from kerasserve.service.settings import cache_home

logger = logging.getLogger("kerasserve.runtime")


def use_compilation_cache() -> str:
    """Keep XLA's executables across starts, so a restarted server compiles nothing.

    JAX's own persistent compilation cache, in `$JAX_COMPILATION_CACHE_DIR` when the operator
    set one, else `<kerasserve cache>/jax` (`~/.cache/kerasserve/jax`). The model's variables
    are arguments of the jitted function, not constants, so an entry depends on the
    architecture, the bucket and the device, never on the weights: new weights or a new
    version of the same network reuse it, and the folder grows only with new architectures.
    Measured on CPU (2 cores, MobileNetV2 + ResNet50 + MobileNetV3Small, buckets 1 and 4):
    load and warm 53 s with an empty cache, 12 s from the cache. Returns the folder.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    config: Any = jax.config  # untyped attributes, one per option
    configured = config.jax_compilation_cache_dir
    if configured:
        return str(configured)
    path = cache_home() / "jax"
    path.mkdir(parents=True, exist_ok=True)
    compilation_cache.set_cache_dir(str(path))
    # Every compile, not only those over JAX's default 1 s: loading a model runs hundreds of
    # small eager ops, each compiled once per shape, and those were most of the time saved.
    config.update("jax_persistent_cache_min_compile_time_secs", 0)
    # JAX decides once per process whether its cache is used, at the first compile: Keras'
    # eager ops while the model was built may already have compiled without one.
    compilation_cache.reset_cache()
    return str(path)


def describe_device() -> str:
    """JAX's first device as `platform:id kind`, e.g. `cuda:0 NVIDIA H100 80GB HBM3`."""
    import jax

    device = jax.devices()[0]
    platform = "cuda" if device.platform == "gpu" else device.platform
    kind = device.device_kind
    return f"{platform}:{device.id}" + (f" {kind}" if kind and kind != device.platform else "")


class JaxRuntime(KerasBase):
    """`preprocess_input` on float32 and `model.stateless_call`, fused in one jitted function.

    The model's variables are passed to the jitted function as arguments (placed on the
    device once, here), not closed over: closed-over arrays would be baked into each
    executable as constants, one copy per bucket, and slow every compile down. XLA compiles
    one executable per input shape; `warm()` runs every bucket so no request pays for one.

    >>> runtime = JaxRuntime(model, preprocess_input, (224, 224), [1, 2, 4])  # doctest: +SKIP
    >>> runtime.predict(np.zeros((3, 224, 224, 3), np.uint8)).shape  # doctest: +SKIP
    (3, 1000)
    """

    def __init__(
        self,
        model: Any,
        preprocess_input: Callable[..., Any],
        input_size: tuple[int, int],
        buckets: list[int],
        head: Head | None = None,
    ) -> None:
        import jax
        import jax.numpy as jnp
        import keras

        backend = keras.backend.backend()
        if backend != "jax":
            raise ModelLoadError(
                f"the JAX runtime needs Keras' JAX backend, but Keras runs on {backend!r}: "
                "start the server with KERAS_BACKEND=jax"
            )
        super().__init__(model, input_size, buckets, head)
        self.compilation_cache = use_compilation_cache()
        self.device = jax.devices()[0]
        self.detail = (
            f"Keras {keras.__version__} on JAX {jax.__version__}, {describe_device()}, jax.jit"
        )
        put = jax.device_put
        self._state = (
            [put(v.value, self.device) for v in model.trainable_variables],
            [put(v.value, self.device) for v in model.non_trainable_variables],
        )

        def preprocess(x: Any) -> Any:
            # Cast first: caffe mode on uint8 arrays would wrap around.
            return preprocess_input(x.astype(jnp.float32))

        def forward(state: Any, x: Any) -> Any:
            trainable, non_trainable = state
            out, _ = model.stateless_call(trainable, non_trainable, preprocess(x), training=False)
            return out

        self._preprocess = jax.jit(preprocess)
        self._forward = jax.jit(forward)
        self._put = put

    def preprocess(self, batch: np.ndarray) -> np.ndarray:
        """The exact pixels-to-input transform the jitted function applies (for tests)."""
        return np.asarray(self._preprocess(self._put(batch, self.device)))

    def _run(self, padded: np.ndarray) -> Any:
        # Only uint8 pixels cross to the device (a quarter of float32's bytes); the cast and
        # the preprocessing run there.
        pixels = np.ascontiguousarray(padded, dtype=np.uint8)
        return np.array(self._forward(self._state, self._put(pixels, self.device)))

    def forward_on_device(self, pixels: Any) -> Any:
        """The jitted function on a full bucket already on the device; returns JAX's array
        without waiting for it (for benchmarks that time the device alone)."""
        return self._forward(self._state, pixels)
