"""Loading: from a `ModelSource` to a complete `LoadedModel`, or a `ModelLoadError`.

Everything that can fail happens here, on the model's own thread: build or read the
model, find its preprocessing, labels and head, build and check the runtime, warm every
bucket, calibrate. What comes out is whole; nothing on it is left to fill in later.

Measured once: `--runtime auto` times its candidates, and calibration reuses those figures.
A new version of a model already serving (the same architecture, the same runtime settings)
inherits the serving version's choice of runtime and batch cap instead of measuring again:
timings taken beside live traffic are wrong (auto measured 79 vs 37 img/s under load,
228 vs 103 idle) and cost the new version seconds before it can answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from kerasserve.batching import BatchObserver, BatchPolicy
from kerasserve.schemas import Preprocessing, WeightsInfo, WeightsKind
from kerasserve.service.errors import ModelLoadError
from kerasserve.service.inference import catalogue, heads, labels, weights
from kerasserve.service.inference.catalogue import PreprocessMode, normalize
from kerasserve.service.inference.features import LayerTable
from kerasserve.service.inference.loaded import Batching, Decoder, LoadedModel, NoObserver
from kerasserve.service.inference.runtime import Runtime, best_batch, buckets_for, calibrate
from kerasserve.service.inference.runtime_factory import make_runtime
from kerasserve.service.inference.source import ModelSource

logger = logging.getLogger("kerasserve.loading")


@dataclass
class _Built:
    model: Any
    preprocess: Any
    family: str | None
    input_size: tuple[int, int]
    weights: WeightsInfo
    preprocessing: Preprocessing


async def load(
    source: ModelSource,
    policy: BatchPolicy,
    timeout_s: float,
    decoder: Decoder,
    observer: BatchObserver | None = None,
    previous: LoadedModel | None = None,
) -> LoadedModel:
    """Load, check and warm `source` on a thread of its own; start its batcher.

    `previous`: the version serving this model now, whose choices a new version of the same
    architecture inherits (see the module docstring)."""
    thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{source.name}")
    loop = asyncio.get_running_loop()
    try:
        loaded = await loop.run_in_executor(
            thread, _load_sync, source, policy, timeout_s, decoder, observer, thread, previous
        )
        await loaded.start()
    except BaseException:
        thread.shutdown(wait=False, cancel_futures=True)
        raise
    return loaded


def _load_sync(
    source: ModelSource,
    policy: BatchPolicy,
    timeout_s: float,
    decoder: Decoder,
    observer: BatchObserver | None,
    thread: ThreadPoolExecutor,
    previous: LoadedModel | None = None,
) -> LoadedModel:
    start = time.perf_counter()
    _keep_jax_compiles()
    built = _build_file(source) if source.model_file is not None else _build_catalogue(source)
    model = built.model
    units = int(model.output_shape[-1])
    kind = _output_kind(source, model, units)
    model_labels = _labels(source, heads.num_classes(kind, units))
    buckets = buckets_for(policy.max_batch_size)
    head = heads.Head(kind, heads.sigmoid_applied(model))
    heir = previous if _inherits(previous, source, built, kind, policy) else None
    runtime_name, precision = source.runtime, source.precision
    if heir is not None:
        runtime_name, precision = heir.runtime.name, heir.runtime.info().precision
        logger.info(
            "%s v%d: same architecture as v%d, which serves: runtime %s %s and its batch cap "
            "inherited, not measured again beside live traffic",
            source.name,
            source.version,
            heir.version,
            runtime_name,
            precision,
        )
    untrained = (
        f"{built.weights.kind.value} weights: a model that was never trained has no ranking "
        "for an accuracy gate to keep, so a reduced precision cannot pass it"
        if built.weights.random
        else None
    )

    def runtime_for(name: str, precision: str) -> Runtime:
        return make_runtime(
            name,
            model,
            built.preprocess,
            built.preprocessing.mode,
            built.input_size,
            buckets,
            tolerance=source.tolerance,
            streams=source.streams,
            precision=precision,
            calibration_dir=source.calibration_dir,
            gate=(source.int8_min_top1, source.int8_min_top5),
            head=head,
            untrained=untrained,
        )

    try:
        runtime = runtime_for(runtime_name, precision)
    except ModelLoadError as exc:
        if heir is None:
            raise
        # The new weights do not hold the serving version's reduced precision (its accuracy
        # gate judged them): choose for this version from its own settings instead.
        logger.warning(
            "%s v%d: the inherited %s %s did not hold (%s); choosing again with --runtime %s "
            "--precision %s",
            source.name,
            source.version,
            runtime_name,
            precision,
            exc,
            source.runtime,
            source.precision,
        )
        heir = None
        runtime = runtime_for(source.runtime, source.precision)
    # A runtime `auto` chose comes warmed and timed.
    if runtime.measured is None:
        runtime.warm()
    runtime.serve()
    throughput: dict[int, float] | None = None
    configured: int | None = None
    # The tuner learns from live batches of a runtime that runs one batch at a time (Keras);
    # one with several streams keeps the start-up calibration.
    tuned = source.tune_batch and runtime.parallelism == 1 and len(buckets) > 1
    initial: int | None = None
    if heir is not None:
        throughput = heir.batching.throughput
        initial = heir.batcher.batch_limit if tuned else None
        if heir.batching.configured_max is not None and not tuned:
            configured = heir.batching.configured_max
            policy = replace(policy, max_batch_size=heir.batching.policy.max_batch_size)
    elif source.calibrate_batch and tuned:
        # The tuner's first limit (the fastest of three interleaved passes: one pass picked
        # 8 on a 2-core machine where 4 is best); live batches decide after that.
        throughput = runtime.measured or calibrate(runtime, built.input_size)
        initial = best_batch(throughput)
    elif source.calibrate_batch and len(buckets) > 1:
        throughput = runtime.measured
        cpu = getattr(runtime, "measured_cpu", None) if throughput else None
        if not throughput or (runtime.parallelism > 1 and not cpu):
            cpu = {}
            throughput = calibrate(runtime, built.input_size, cpu=cpu)
        # The smallest size within 90 % of the best (95 % for a runtime running batches side
        # by side): taking the largest for OpenVINO's streams served less (5 starts: median
        # 84.7 vs 110.8 img/s at 32 clients). At 90 % one start in five took batch 1 (idle
        # figures 1: 360, 2: 413, 4: 436 img/s; under 32 clients a cap of 1 served 215 img/s,
        # 2: 243, 4: 267), which alone put the spread of fresh starts at ±14 %. A runtime
        # running batches side by side is judged by images per CPU-second (`calibrate`'s
        # `cpu`): at 95 % of the fastest wall time, a start whose timing met another busy
        # process still took batch 1 (one start in five, 264 img/s at 32 clients against
        # 296-311 for the starts that took 2 or 4: ±11.9 %).
        if runtime.parallelism > 1 and cpu:
            chosen = best_batch(cpu, 0.95)
        else:
            chosen = best_batch(throughput, 0.9)
        configured = policy.max_batch_size
        policy = replace(policy, max_batch_size=chosen)
        logger.info(
            "%s: batch size calibrated to %d (img/s by batch: %s%s)",
            source.name,
            chosen,
            ", ".join(f"{k}: {v:.0f}" for k, v in throughput.items()),
            "; images per CPU-second: " + ", ".join(f"{k}: {v:.0f}" for k, v in cpu.items())
            if cpu
            else "",
        )
    workers = None
    if runtime.parallelism > 1:
        # Batches run side by side, one per stream, each on a worker of its own.
        policy = replace(policy, max_concurrent_batches=runtime.parallelism)
        workers = ThreadPoolExecutor(
            max_workers=runtime.parallelism, thread_name_prefix=f"infer-{source.name}"
        )
    load_s = time.perf_counter() - start
    logger.info(
        "%s v%d ready: %s weights, runtime %s, %s head, buckets %s, loaded and warmed in %.1f s",
        source.name,
        source.version,
        built.weights.kind.value,
        runtime.name,
        kind,
        buckets,
        load_s,
    )
    batching = Batching(policy, timeout_s, tuned, initial, throughput or {}, configured)
    return LoadedModel(
        source=source,
        family=built.family,
        model=model,
        preprocess_fn=built.preprocess,
        runtime=runtime,
        labels=model_labels,
        output_kind=kind,
        sigmoid_applied=head.sigmoid_applied,
        weights=built.weights,
        preprocessing=built.preprocessing,
        input_size=built.input_size,
        batching=batching,
        decoder=decoder,
        thread=thread,
        workers=workers or thread,
        observer=observer or NoObserver(),
        feature_layers=LayerTable.of(model),
    )


def _keep_jax_compiles() -> None:
    """On Keras' JAX backend, XLA's persistent cache is on before the model is built: building
    and loading it run hundreds of eager ops, each compiled once per shape."""
    import keras

    if keras.backend.backend() == "jax":
        from kerasserve.service.inference.jax_runtime import use_compilation_cache

        use_compilation_cache()


def _inherits(
    previous: LoadedModel | None,
    source: ModelSource,
    built: _Built,
    kind: heads.OutputKind,
    policy: BatchPolicy,
) -> bool:
    """Whether a new version may take the serving version's runtime and batch cap: the same
    architecture, input, preprocessing and head, asked for with the same runtime settings."""
    if previous is None:
        return False
    old = previous.source
    return (
        (old.runtime, old.precision, old.streams, old.calibrate_batch, old.tune_batch)
        == (
            source.runtime,
            source.precision,
            source.streams,
            source.calibrate_batch,
            source.tune_batch,
        )
        and previous.input_size == built.input_size
        and previous.preprocessing.mode == built.preprocessing.mode
        and previous.output_kind == kind
        and previous.runtime.buckets == buckets_for(policy.max_batch_size)
        and architecture(previous.model) == architecture(built.model)
    )


def architecture(model: Any) -> str:
    """A digest of the model's layers (type, activation, weight shapes), without weights,
    names or initialisers: two trainings of one network share it."""
    layers = [
        (
            type(layer).__name__,
            heads._activation_name(layer),
            [list(map(int, w.shape)) for w in layer.weights],
        )
        for layer in _flatten(model)
    ]
    shapes = [str(model.input_shape), str(model.output_shape)]
    return hashlib.sha256(json.dumps([shapes, layers]).encode()).hexdigest()[:16]


def _flatten(model: Any) -> list[Any]:
    """Every layer, nested models opened (a fine-tuned model nests its base)."""
    found = []
    for layer in model.layers:
        found.extend(_flatten(layer) if hasattr(layer, "layers") else [layer])
    return found


def _output_kind(source: ModelSource, model: Any, units: int) -> heads.OutputKind:
    if source.output_kind == "auto":
        kind = heads.detect(model)
    elif source.output_kind in heads.OUTPUT_KINDS:
        kind = source.output_kind  # type: ignore[assignment]
    else:
        raise ModelLoadError(
            f"{source.name}: unknown output_kind {source.output_kind!r}; "
            f"expected auto or one of {', '.join(heads.OUTPUT_KINDS)}"
        )
    heads.check(kind, units, source.name)
    return kind


def _labels(source: ModelSource, classes: int) -> dict[str, labels.Labels]:
    """Labels by language, the default language first; every set must match the classes."""
    found: dict[str, labels.Labels] = {}
    if source.labels_file is not None:
        found[source.labels_language] = labels.load_labels(source.labels_file)
    elif classes == 1000:
        found.update(labels.imagenet_languages())
    else:
        found[source.labels_language] = labels.generic(classes)
    for language, path in source.extra_labels:
        found[language] = labels.load_labels(path)
    for language, found_labels in found.items():
        if len(found_labels) != classes:
            raise ModelLoadError(
                f"{source.name}: the {language} labels {found_labels.source!r} have "
                f"{len(found_labels)} labels but the model serves {classes} classes"
            )
    return found


def _build_catalogue(source: ModelSource) -> _Built:
    spec = catalogue.spec(source.catalogue_name)
    model, info = weights.build(spec, source.weights)
    preprocessing = Preprocessing(
        mode=spec.preprocess_mode, module=spec.module_short, input_size=spec.input_size
    )
    return _Built(model, spec.preprocess_input, spec.name, spec.input_size, info, preprocessing)


def _build_file(source: ModelSource) -> _Built:
    import keras

    path = source.model_file
    assert path is not None  # only called for file sources
    if not path.is_file():
        raise ModelLoadError(f"model file {str(path)!r} does not exist")
    try:
        model = keras.saving.load_model(path, safe_mode=source.safe_mode, compile=False)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load {str(path)!r} (safe_mode={source.safe_mode}): {exc}"
        ) from exc
    height, width = model.input_shape[1:3]
    input_size = (
        height or catalogue.FALLBACK_INPUT_SIZE,
        width or catalogue.FALLBACK_INPUT_SIZE,
    )
    info = WeightsInfo(kind=WeightsKind.MODEL_FILE, path=str(path), random=False)
    mode, module, preprocess, family = _file_preprocessing(source, model)
    preprocessing = Preprocessing(mode=mode, module=module, input_size=input_size)
    return _Built(model, preprocess, family, input_size, info, preprocessing)


def _file_preprocessing(
    source: ModelSource, model: Any
) -> tuple[PreprocessMode, str | None, Any, str | None]:
    """The preprocessing of a user's model: as given, or that of the base it nests."""
    if source.preprocess is not None:
        return source.preprocess, None, MODE_FUNCTIONS[source.preprocess], None
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
                logger.info(
                    "%s: nests %s, using its preprocessing (%s)",
                    source.name,
                    spec.name,
                    spec.preprocess_mode,
                )
                return spec.preprocess_mode, spec.module_short, spec.preprocess_input, spec.name
    raise ModelLoadError(
        f"cannot tell which preprocessing {str(source.model_file)!r} expects (it nests no "
        "keras.applications model); pass --preprocess tf|caffe|torch|none "
        "(InceptionV3, Xception, MobileNet: tf; ResNet50, VGG: caffe; DenseNet: torch; "
        "EfficientNet, ConvNeXt: none)"
    )


def _mode_function(mode: PreprocessMode) -> Any:
    from keras.src.applications import imagenet_utils

    def preprocess(x: Any) -> Any:
        if mode == "none":
            return x
        return imagenet_utils.preprocess_input(x, mode=mode)

    return preprocess


MODE_FUNCTIONS: dict[PreprocessMode, Any] = {
    mode: _mode_function(mode) for mode in ("caffe", "tf", "torch", "none")
}
