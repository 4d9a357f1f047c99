"""Feature extraction: any layer's output, pooled in the graph, batched like predictions.

Each (layer, pooling) pair gets a sub-model (`Model(inputs=base.input, outputs=layer.output)`,
the seed's recipe) compiled with the model's own preprocessing, warmed on every bucket, and
its own batcher; they run on the model's thread, so they never compete with predictions for
the cores. At most `max_outputs` are kept; the least recently used idle one makes room.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from kerasserve.batching import Batcher, BatchObserver, BatchPolicy, Completed, QueueFull
from kerasserve.schemas import FeatureLayer
from kerasserve.service.errors import InvalidRequest, LayerNotFound
from kerasserve.service.inference.runtime import make_preprocess, pad_to_bucket

logger = logging.getLogger("kerasserve.features")

Pooling = Literal["avg", "max", "none"]


def list_layers(model: Any) -> list[FeatureLayer]:
    """Layers whose output is one tensor with a batch dimension (what a sub-model can expose)."""
    layers = []
    for layer in model.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if isinstance(shape, tuple | list) and len(shape) >= 2 and shape and shape[0] is None:
            layers.append(FeatureLayer(name=layer.name, output_shape=list(shape)))
    return layers


@dataclass(frozen=True)
class LayerTable:
    """The layers a model can expose as features, and the default one: the last spatial map
    (pooled by `avg`, what `include_top=False, pooling='avg'` gives). Reading it walks the
    whole model: loading builds it on the model's thread, never on the event loop."""

    layers: dict[str, FeatureLayer]
    default: str | None
    model_name: str

    @classmethod
    def of(cls, model: Any) -> LayerTable:
        found = list_layers(model)
        spatial = [layer.name for layer in found if len(layer.output_shape) == 4]
        return cls(
            {layer.name: layer for layer in found}, spatial[-1] if spatial else None, model.name
        )

    @property
    def default_layer(self) -> str:
        if self.default is None:
            raise InvalidRequest(f"{self.model_name} has no spatial layer to pool")
        return self.default


@dataclass
class FeatureOutput:
    layer: str
    pooling: Pooling
    shape: tuple[int, ...]  # one image's features, after pooling
    runtime: FeatureRuntime
    batcher: Batcher[np.ndarray, np.ndarray]
    last_used: float


class FeatureRuntime:
    """preprocess -> sub-model up to `layer` -> pooling, as one graph on uint8 batches."""

    def __init__(
        self,
        model: Any,
        layer: str,
        pooling: Pooling,
        preprocess_input: Any,
        input_size: tuple[int, int],
        buckets: list[int],
    ) -> None:
        import keras
        import tensorflow as tf

        sub = keras.Model(inputs=model.inputs, outputs=model.get_layer(layer).output)
        preprocess = make_preprocess(preprocess_input, input_size)

        def forward(x: Any) -> Any:
            out = sub(preprocess(x), training=False)
            if pooling == "avg":
                return tf.reduce_mean(out, axis=[1, 2])
            if pooling == "max":
                return tf.reduce_max(out, axis=[1, 2])
            return out

        spec = tf.TensorSpec([None, *input_size, 3], tf.uint8)
        self._forward = tf.function(forward, input_signature=[spec])
        self.buckets = buckets
        self.input_size = input_size

    def run(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        return np.asarray(self._forward(pad_to_bucket(batch, self.buckets)), dtype=np.float32)[:n]

    def warm(self) -> None:
        h, w = self.input_size
        for size in self.buckets:
            self.run(np.zeros((size, h, w, 3), dtype=np.uint8))


class FeatureExtractors:
    """The feature outputs of one served model, created on first use."""

    def __init__(
        self,
        model: Any,
        preprocess_input: Any,
        input_size: tuple[int, int],
        buckets: list[int],
        policy: BatchPolicy,
        thread: ThreadPoolExecutor,
        *,
        max_outputs: int,
        name: str,
        observer: BatchObserver | None = None,
        table: LayerTable | None = None,
    ) -> None:
        self.model = model
        self.preprocess_input = preprocess_input
        self.input_size = input_size
        self.buckets = buckets
        self.policy = policy
        self.thread = thread
        self.max_outputs = max_outputs
        self.name = name
        self.observer = observer
        # `table`: built at load time off the event loop (computed here only when not given).
        self.table = table or LayerTable.of(model)
        self.layers = self.table.layers
        self._outputs: OrderedDict[tuple[str, Pooling], FeatureOutput] = OrderedDict()
        self._creating: dict[tuple[str, Pooling], asyncio.Future[FeatureOutput]] = {}

    @property
    def default_layer(self) -> str:
        return self.table.default_layer

    def resolve(self, layer: str | None, pooling: Pooling | None) -> tuple[str, Pooling]:
        """Validate the request's layer and pooling; fill in the defaults."""
        name = layer or self.default_layer
        info = self.layers.get(name)
        if info is None:
            close = difflib.get_close_matches(name, list(self.layers), n=5, cutoff=0.5)
            hint = f" Close matches: {', '.join(close)}." if close else ""
            shown = name if len(name) <= 80 else name[:77] + "..."
            raise LayerNotFound(
                f"{self.name} has no layer {shown!r}.{hint} "
                f"`GET /v1/models/{self.name}/layers` lists them.",
                extra={"suggestions": close},
            )
        spatial = len(info.output_shape) == 4
        if pooling is None:
            pooling = "avg" if spatial else "none"
        if pooling != "none" and not spatial:
            raise InvalidRequest(
                f"pooling={pooling!r} applies to spatial maps, but {name} outputs "
                f"{info.output_shape}; use pooling=none",
                extra={"layer": name, "output_shape": info.output_shape},
            )
        return name, pooling

    def output_shape(self, layer: str, pooling: Pooling) -> tuple[int, ...]:
        shape = [int(d) if d is not None else -1 for d in self.layers[layer].output_shape[1:]]
        if pooling != "none":
            shape = shape[-1:]
        return tuple(shape)

    async def get(self, layer: str, pooling: Pooling) -> FeatureOutput:
        key = (layer, pooling)
        output = self._outputs.get(key)
        if output is not None:
            self._outputs.move_to_end(key)
            output.last_used = time.monotonic()
            return output
        pending = self._creating.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        await self._make_room()
        fut: asyncio.Future[FeatureOutput] = asyncio.get_running_loop().create_future()
        self._creating[key] = fut
        try:
            output = await self._create(layer, pooling)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: concurrent waiters re-raise it themselves
            raise
        finally:
            del self._creating[key]
        fut.set_result(output)
        self._outputs[key] = output
        return output

    async def _create(self, layer: str, pooling: Pooling) -> FeatureOutput:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()

        def build() -> FeatureRuntime:
            runtime = FeatureRuntime(
                self.model, layer, pooling, self.preprocess_input, self.input_size, self.buckets
            )
            runtime.warm()
            return runtime

        runtime = await loop.run_in_executor(self.thread, build)

        async def run_batch(items: list[np.ndarray]) -> list[np.ndarray]:
            out = await loop.run_in_executor(self.thread, runtime.run, np.stack(items))
            return list(out)

        batcher: Batcher[np.ndarray, np.ndarray] = Batcher(
            run_batch, self.policy, name=f"{self.name}:{layer}:{pooling}", observer=self.observer
        )
        await batcher.start()
        logger.info(
            "%s: feature output %s (pooling %s) built and warmed in %.1f s",
            self.name,
            layer,
            pooling,
            time.perf_counter() - started,
        )
        return FeatureOutput(
            layer, pooling, self.output_shape(layer, pooling), runtime, batcher, time.monotonic()
        )

    async def _make_room(self) -> None:
        while len(self._outputs) + len(self._creating) >= self.max_outputs:
            idle = [
                key
                for key, out in self._outputs.items()
                if out.batcher.queue_depth == 0 and not out.batcher.busy
            ]
            if not idle:
                raise QueueFull(len(self._outputs), self.max_outputs, retry_after=5.0)
            key = idle[0]  # OrderedDict: least recently used first
            evicted = self._outputs.pop(key)
            await evicted.batcher.aclose()
            logger.info("%s: evicted feature output %s (pooling %s)", self.name, *key)

    async def infer(
        self, output: FeatureOutput, pixels: np.ndarray, *, timeout: float, tag: object = None
    ) -> Completed[np.ndarray]:
        return await output.batcher.submit(pixels, timeout=timeout, tag=tag)

    async def aclose(self, timeout: float | None = None) -> None:
        for output in list(self._outputs.values()):
            await output.batcher.aclose(timeout)
        self._outputs.clear()
