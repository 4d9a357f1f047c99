"""A served model: its runtime on a dedicated thread, its batcher, labels and description."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from batching import Batcher, BatchObserver, BatchPolicy, Completed
from schemas import (
    BatchingInfo,
    ModelInfo,
    ModelState,
    Preprocessing,
    RuntimeInfo,
    WeightsInfo,
    WeightsKind,
)
from service.errors import ModelLoadError
from service.inference import catalogue, labels, weights
from service.inference.catalogue import PreprocessMode, normalize
from service.inference.features import FeatureExtractors
from service.inference.runtime import (
    KerasRuntime,
    Runtime,
    best_batch,
    buckets_for,
    calibrate,
)

logger = logging.getLogger("kerasserve.models")


@dataclass(frozen=True)
class ModelSource:
    """What the operator asked to serve: a catalogue model, or a user's `.keras` file."""

    name: str
    weights: str = "auto"
    model_file: Path | None = None
    labels_file: Path | None = None
    preprocess: PreprocessMode | None = None
    safe_mode: bool = True
    runtime: str = "keras"
    tolerance: float = 1e-4
    streams: int = 0
    max_feature_outputs: int = 4
    calibrate_batch: bool = True


@dataclass
class ServedModel:
    """One model behind its own batcher; the runtime is only ever called on `self.thread`."""

    source: ModelSource
    policy: BatchPolicy
    timeout_s: float
    observer: BatchObserver | None = None
    name: str = ""
    family: str | None = None
    state: ModelState = ModelState.LOADING
    runtime: Runtime | None = None
    labels: labels.Labels | None = None
    weights: WeightsInfo | None = None
    preprocessing: Preprocessing | None = None
    input_size: tuple[int, int] = (224, 224)
    load_s: float = 0.0
    batcher: Batcher[np.ndarray, np.ndarray] | None = None
    model: Any = None
    throughput: dict[int, float] | None = None
    configured_max_batch: int | None = None
    thread: ThreadPoolExecutor = field(init=False)
    _workers: ThreadPoolExecutor | None = field(default=None, init=False)
    _features: FeatureExtractors | None = field(default=None, init=False)
    _preprocess_fn: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.name = self.name or self.source.name
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{self.name}")

    # -- loading (on the model thread) --------------------------------------------------
    async def load(self) -> None:
        """Build, compile and warm the model on its thread, then start its batcher."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.thread, self._load_sync)
        except BaseException:
            self.state = ModelState.FAILED
            raise
        self.batcher = Batcher(self._run_batch, self.policy, name=self.name, observer=self.observer)
        await self.batcher.start()
        self.state = ModelState.READY

    def _load_sync(self) -> None:
        start = time.perf_counter()
        if self.source.model_file is not None:
            model, preprocess = self._load_file()
        else:
            model, preprocess = self._load_catalogue()
        buckets = buckets_for(self.policy.max_batch_size)
        assert self.preprocessing is not None
        self.runtime = make_runtime(
            self.source.runtime,
            model,
            preprocess,
            self.preprocessing.mode,
            self.input_size,
            buckets,
            tolerance=self.source.tolerance,
            streams=self.source.streams,
        )
        self.model = model
        self._preprocess_fn = preprocess
        num_classes = int(model.output_shape[-1])
        if self.labels is None:
            self.labels = labels.imagenet() if num_classes == 1000 else labels.generic(num_classes)
        if len(self.labels) != num_classes:
            raise ModelLoadError(
                f"{self.name}: the labels file {self.labels.source!r} has {len(self.labels)} "
                f"labels but the model outputs {num_classes} classes"
            )
        self.runtime.warm()
        if self.source.calibrate_batch and len(buckets) > 1:
            self.throughput = calibrate(self.runtime, self.input_size)
            chosen = best_batch(self.throughput)
            self.configured_max_batch = self.policy.max_batch_size
            self.policy = replace(self.policy, max_batch_size=chosen)
            logger.info(
                "%s: batch size calibrated to %d (img/s by batch: %s)",
                self.name,
                chosen,
                ", ".join(f"{k}: {v:.0f}" for k, v in self.throughput.items()),
            )
        if self.runtime.parallelism > 1:
            # Batches run side by side, one per stream, each on a worker of its own.
            self.policy = replace(self.policy, max_concurrent_batches=self.runtime.parallelism)
            self._workers = ThreadPoolExecutor(
                max_workers=self.runtime.parallelism, thread_name_prefix=f"infer-{self.name}"
            )
        self.load_s = time.perf_counter() - start
        logger.info(
            "%s ready: %s weights, runtime %s, buckets %s, loaded and warmed in %.1f s",
            self.name,
            self.weights.kind.value if self.weights else "?",
            self.runtime.name,
            buckets,
            self.load_s,
        )

    def _load_catalogue(self) -> tuple[Any, Any]:
        spec = catalogue.spec(self.source.name)
        self.family = spec.name
        self.input_size = spec.input_size
        model, self.weights = weights.build(spec, self.source.weights)
        self.preprocessing = Preprocessing(
            mode=spec.preprocess_mode, module=spec.module_short, input_size=spec.input_size
        )
        return model, spec.preprocess_input

    def _load_file(self) -> tuple[Any, Any]:
        import keras

        path = self.source.model_file
        assert path is not None
        if not path.is_file():
            raise ModelLoadError(f"--model-file {str(path)!r} does not exist")
        try:
            model = keras.saving.load_model(path, safe_mode=self.source.safe_mode, compile=False)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load {str(path)!r} (safe_mode={self.source.safe_mode}): {exc}"
            ) from exc
        height, width = model.input_shape[1:3]
        self.input_size = (
            height or catalogue.FALLBACK_INPUT_SIZE,
            width or catalogue.FALLBACK_INPUT_SIZE,
        )
        if self.source.labels_file is not None:
            self.labels = labels.load_labels(self.source.labels_file)
        self.weights = WeightsInfo(kind=WeightsKind.MODEL_FILE, path=str(path), random=False)
        mode, module, preprocess = self._file_preprocessing(model)
        self.preprocessing = Preprocessing(mode=mode, module=module, input_size=self.input_size)
        return model, preprocess

    def _file_preprocessing(self, model: Any) -> tuple[PreprocessMode, str | None, Any]:
        """The preprocessing of a user's model: as given, or that of the base it nests."""
        if self.source.preprocess is not None:
            return self.source.preprocess, None, _MODE_FUNCTIONS[self.source.preprocess]
        names = sorted(catalogue.model_names(), key=len, reverse=True)
        # A saved keras.applications model carries its architecture's name (`resnet50`,
        # `mobilenetv2_1.00_224`); a fine-tuned one usually nests the base model as a layer.
        for layer in [model, *model.layers]:
            if not hasattr(layer, "layers"):
                continue
            key = normalize(layer.name)
            for candidate in names:
                if key.startswith(normalize(candidate)):
                    spec = catalogue.spec(candidate)
                    self.family = spec.name
                    logger.info(
                        "%s: nests %s, using its preprocessing (%s)",
                        self.name,
                        spec.name,
                        spec.preprocess_mode,
                    )
                    return spec.preprocess_mode, spec.module_short, spec.preprocess_input
        raise ModelLoadError(
            f"cannot tell which preprocessing {str(self.source.model_file)!r} expects (it nests no "
            "keras.applications model); pass --preprocess tf|caffe|torch|none "
            "(InceptionV3, Xception, MobileNet: tf; ResNet50, VGG: caffe; DenseNet: torch; "
            "EfficientNet, ConvNeXt: none)"
        )

    # -- serving --------------------------------------------------------------------------
    async def _run_batch(self, items: list[np.ndarray]) -> list[np.ndarray]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._workers or self.thread, self._predict_sync, items)

    def _predict_sync(self, items: list[np.ndarray]) -> list[np.ndarray]:
        assert self.runtime is not None
        probs = self.runtime.predict(np.stack(items))
        return list(probs)

    async def infer(self, pixels: np.ndarray, *, tag: object = None) -> Completed[np.ndarray]:
        """Run one image through the batcher; the result row is the class probabilities."""
        assert self.batcher is not None
        return await self.batcher.submit(pixels, timeout=self.timeout_s, tag=tag)

    async def aclose(self, timeout: float | None = None) -> None:
        if self.batcher is not None:
            await self.batcher.aclose(timeout)
        if self._features is not None:
            await self._features.aclose(timeout)
        self.thread.shutdown(wait=False, cancel_futures=True)
        if self._workers is not None:
            self._workers.shutdown(wait=False, cancel_futures=True)

    @property
    def features(self) -> FeatureExtractors:
        """This model's feature outputs (built on first use, on the model's thread)."""
        if self._features is None:
            assert self.runtime is not None
            self._features = FeatureExtractors(
                self.model,
                self._preprocess_fn,
                self.input_size,
                self.runtime.buckets,
                # Features run the Keras graph on the model's one thread: one batch at a time.
                replace(self.policy, max_concurrent_batches=1),
                self.thread,
                max_outputs=self.source.max_feature_outputs,
                name=self.name,
                observer=self.observer,
            )
        return self._features

    def describe(self, *, default: bool = False) -> ModelInfo:
        runtime = self.runtime
        h, w = self.input_size
        return ModelInfo(
            name=self.name,
            family=self.family,
            input_shape=(h, w, 3),
            preprocessing=self.preprocessing
            or Preprocessing(mode="none", module=None, input_size=self.input_size),
            weights=self.weights or WeightsInfo(kind=WeightsKind.RANDOM, random=True),
            num_classes=len(self.labels) if self.labels else 0,
            runtime=self.runtime_info(),
            batching=BatchingInfo(
                max_batch_size=self.policy.max_batch_size,
                max_wait_ms=self.policy.max_wait_s * 1e3,
                max_queue=self.policy.max_queue,
                max_concurrent_batches=self.policy.max_concurrent_batches,
                timeout_s=self.timeout_s,
                buckets=runtime.buckets if runtime else [],
                configured_max_batch_size=self.configured_max_batch,
                throughput_by_batch=(
                    {k: round(v, 1) for k, v in self.throughput.items()}
                    if self.throughput
                    else None
                ),
            ),
            state=self.state,
            queue_depth=self.batcher.queue_depth if self.batcher else 0,
            default=default,
        )

    def runtime_info(self) -> RuntimeInfo:
        runtime = self.runtime
        if runtime is None:
            return RuntimeInfo(name=self.source.runtime)
        return RuntimeInfo(
            name=runtime.name, detail=runtime.detail, max_abs_diff=runtime.max_abs_diff
        )


def _mode_function(mode: PreprocessMode) -> Any:
    from keras.src.applications import imagenet_utils

    def preprocess(x: Any) -> Any:
        if mode == "none":
            return x
        return imagenet_utils.preprocess_input(x, mode=mode)

    return preprocess


_MODE_FUNCTIONS: dict[PreprocessMode, Any] = {
    mode: _mode_function(mode) for mode in ("caffe", "tf", "torch", "none")
}


RUNTIMES = ("keras", "openvino", "auto")


def make_runtime(
    name: str,
    model: Any,
    preprocess: Any,
    mode: PreprocessMode,
    input_size: tuple[int, int],
    buckets: list[int],
    *,
    tolerance: float,
    streams: int = 0,
) -> Runtime:
    """Build the runtime `name`; `auto` is the faster, measured here, of Keras and OpenVINO
    when OpenVINO passes its check (else Keras, loudly)."""
    if name not in RUNTIMES:
        raise ModelLoadError(f"unknown runtime {name!r}; available: {', '.join(RUNTIMES)}")
    keras_runtime = KerasRuntime(model, preprocess, input_size, buckets)
    if name == "keras":
        return keras_runtime
    try:
        from service.inference.openvino_runtime import OpenVINORuntime
    except ImportError as exc:
        if name == "openvino":
            raise ModelLoadError(
                f"--runtime openvino needs the openvino package: pip install 'kerasserve[openvino]' ({exc})"
            ) from exc
        logger.warning("runtime auto: OpenVINO is not installed (%s); using keras", exc)
        return keras_runtime
    try:
        ov_runtime = OpenVINORuntime(
            model, mode, input_size, buckets, keras_runtime, tolerance=tolerance, streams=streams
        )
    except ModelLoadError as exc:
        if name == "openvino":
            raise
        logger.warning("runtime auto: OpenVINO rejected (%s); FALLING BACK to keras", exc)
        keras_runtime.detail = f"{keras_runtime.detail}; OpenVINO rejected: {exc}"
        return keras_runtime
    if name == "openvino":
        return ov_runtime
    return _faster(keras_runtime, ov_runtime, input_size)


def _faster(a: Runtime, b: Runtime, input_size: tuple[int, int]) -> Runtime:
    """`--runtime auto`: of two runtimes that passed their checks, the one that serves more
    images per second here (each at its best bucket up to 8, timed as the server runs it)."""
    for runtime in (a, b):
        runtime.warm()
    rates = {}
    for runtime in (a, b):
        small = [size for size in runtime.buckets if size <= 8]
        rates[runtime.name] = max(calibrate(runtime, input_size, runs=2, sizes=small).values())
    chosen = a if rates[a.name] >= rates[b.name] else b
    other = b if chosen is a else a
    measured = (
        f"runtime auto: {chosen.name} {rates[chosen.name]:.0f} img/s vs "
        f"{other.name} {rates[other.name]:.0f} img/s at start-up"
    )
    logger.info("%s; serving %s", measured, chosen.name)
    chosen.detail = f"{chosen.detail}; {measured}"
    return chosen
