"""A loaded model: one version, complete, behind its own batcher; the front door into inference.

The HTTP side (our v1 API, the classic Flask `/predict` contract, the Open Inference
Protocol) calls `classify` or `extract` with encoded images or pixels and gets results with
their timings; decoding, batching, the head's transform and labels all happen here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from kerasserve.batching import Batcher, BatchObserver, BatchPolicy, BatchSizeTuner, Completed
from kerasserve.schemas import (
    BatchingInfo,
    ModelInfo,
    ModelRef,
    ModelState,
    Prediction,
    Preprocessing,
    RuntimeInfo,
    Timing,
    WeightsInfo,
)
from kerasserve.service.errors import InvalidImage, ServiceError
from kerasserve.service.inference import heads
from kerasserve.service.inference.features import FeatureExtractors, LayerTable, Pooling
from kerasserve.service.inference.imaging import decode_image, resize
from kerasserve.service.inference.labels import Labels, pick_language
from kerasserve.service.inference.runtime import Runtime
from kerasserve.service.inference.source import ModelSource

logger = logging.getLogger("kerasserve.models")

R = TypeVar("R")

# An image: encoded bytes (any format we decode), or uint8 pixels (h, w, 3) of any size.
ImageInput = bytes | np.ndarray
# Queues one image's pixels (with a tag for log lines) and waits for its batch's result.
Submit = Callable[[np.ndarray, object], Awaitable[Completed[R]]]

# How many classes of every image are ranked where its batch finishes (a runtime's thread),
# so that `top_k` up to this many needs no sorting on the event loop.
RANKED = 16


@dataclass(frozen=True, slots=True)
class Scored:
    """One image's served probabilities and its most probable classes, most probable first
    (up to `RANKED`; ties in class order), computed off the event loop with its batch."""

    probs: np.ndarray
    ranked: np.ndarray


def score(probs: np.ndarray) -> list[Scored]:
    """A batch of served probabilities (n, classes), each row with its ranking."""
    top = ranking(probs, RANKED)
    return [Scored(p, r) for p, r in zip(probs, top, strict=True)]


def ranking(probs: np.ndarray, k: int) -> np.ndarray:
    """The indices of each row's `k` most probable classes (n, min(k, classes)), most
    probable first; ties keep class order, also at the k-th place; NaN ranks last."""
    n, count = probs.shape
    k = min(k, count)
    kth = np.partition(probs, count - k, axis=1)[:, count - k]
    out = np.empty((n, k), dtype=np.intp)
    for i in range(n):
        row = probs[i]
        candidates = np.flatnonzero(row >= kth[i])  # in class order
        if candidates.size < k:  # NaNs compare false: rank every class (NaN sorts last)
            candidates = np.arange(count)
        out[i] = candidates[np.argsort(-row[candidates], kind="stable")[:k]]
    return out


@dataclass(frozen=True)
class Decoder:
    """Where images are decoded (a thread pool: never on the event loop) and their pixel bound."""

    pool: ThreadPoolExecutor
    max_pixels: int


@dataclass(frozen=True)
class Batching:
    """How a loaded model batches: its policy and deadline, and what start-up measured."""

    policy: BatchPolicy
    timeout_s: float
    # Learn the batch size from live traffic (a runtime that runs one batch at a time).
    tune: bool = False
    # The tuner's first limit (None: its own choice from `throughput`).
    initial: int | None = None
    # img/s by batch size, measured at start-up (empty: not measured).
    throughput: dict[int, float] = field(default_factory=dict)
    # The `max_batch_size` asked for, when start-up calibration capped the policy below it.
    configured_max: int | None = None


class NoObserver:
    """A `BatchObserver` that records nothing (a model served without metrics)."""

    def batch_done(self, size: int, run_s: float, queue_waits: Sequence[float]) -> None:
        pass

    def dropped(self, reason: str) -> None:
        pass


def timing(done: Completed[Any], decode_ms: float) -> Timing:
    """The one Timing builder: where one image's time went, and the batch it rode in."""
    return Timing(
        queue_ms=round(done.queue_s * 1e3, 3),
        inference_ms=round(done.run_s * 1e3, 3),
        batch_size=done.batch_size,
        decode_ms=round(decode_ms, 3),
    )


@dataclass(frozen=True)
class Inferred:
    """One image's model output (served probabilities, or features) and its timing."""

    output: np.ndarray
    timing: Timing


@dataclass(frozen=True)
class Classified(Inferred):
    """One image classified: probabilities over every class and the top k with labels."""

    predictions: list[Prediction]


def server_timing(results: Sequence[Inferred]) -> str:
    """A `Server-Timing` header value: the slowest image's decode, queue and model call."""
    decode = max(r.timing.decode_ms or 0.0 for r in results)
    queue = max(r.timing.queue_ms for r in results)
    infer = max(r.timing.inference_ms for r in results)
    return f"decode;dur={decode:.2f}, queue;dur={queue:.2f}, inference;dur={infer:.2f}"


@dataclass(eq=False)
class LoadedModel:
    """One version of one model, loaded, checked and warmed; the runtime only ever runs on
    `workers` (`thread`, or for runtimes with several streams a pool of their own)."""

    source: ModelSource
    family: str | None
    model: Any
    preprocess_fn: Any
    runtime: Runtime
    labels: dict[str, Labels]
    output_kind: heads.OutputKind
    sigmoid_applied: bool
    weights: WeightsInfo
    preprocessing: Preprocessing
    input_size: tuple[int, int]
    batching: Batching
    decoder: Decoder
    thread: ThreadPoolExecutor
    # Where batches run: `thread`, or a pool of one worker per stream of the runtime.
    workers: ThreadPoolExecutor
    observer: BatchObserver
    # The layers `extract` can expose, read at load time (walking a model is not loop work).
    feature_layers: LayerTable
    batcher: Batcher[np.ndarray, Scored] = field(init=False)
    _features: FeatureExtractors | None = field(default=None, init=False)
    _inflight: int = field(default=0, init=False)
    _decoding: int = field(default=0, init=False)
    _idle: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _refs: dict[str, ModelRef] = field(default_factory=dict, init=False)
    retiring: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        batching = self.batching
        tuner = None
        if batching.tune:
            tuner = BatchSizeTuner(
                self.runtime.buckets, initial=batching.initial, seed=batching.throughput or None
            )
        self.batcher = Batcher(
            self._run_batch,
            batching.policy,
            name=self.name,
            observer=self.observer,
            tuner=tuner,
            coming=self._images_decoding,
        )
        self._idle.set()

    async def start(self) -> None:
        await self.batcher.start()

    # -- identity -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.source.name

    @property
    def version(self) -> int:
        return self.source.version

    @property
    def num_classes(self) -> int:
        return len(self.default_labels)

    @property
    def default_labels(self) -> Labels:
        return next(iter(self.labels.values()))

    @property
    def languages(self) -> list[str]:
        return list(self.labels)

    def labels_for(self, lang: str | None) -> tuple[str, Labels]:
        """The labels in the language asked for (an `Accept-Language` value or a tag), else the default."""
        language = pick_language(lang, self.languages) or self.languages[0]
        return language, self.labels[language]

    # -- the front door -----------------------------------------------------------------------
    # The caller holds a lease (`Registry.use` or `lease()`) for the whole call: one per request.
    async def classify(
        self,
        images: Sequence[ImageInput],
        top_k: int,
        labels: Labels,
        *,
        names: Sequence[str | None] | None = None,
        request_id: str | None = None,
    ) -> list[Classified]:
        """Decode, batch and classify `images`, in order; each gets its top `top_k` classes
        named by `labels` (one of `self.labels`, from `labels_for`)."""
        scored = await self._infer(images, names, request_id, self._submit_predict)
        return [
            Classified(s.probs, t, top_k_predictions(labels, s.probs, top_k, s.ranked))
            for s, t in scored
        ]

    async def extract(
        self,
        images: Sequence[ImageInput],
        layer: str,
        pooling: Pooling,
        *,
        names: Sequence[str | None] | None = None,
        request_id: str | None = None,
    ) -> list[Inferred]:
        """Decode and batch `images` through the output of `layer` (pooled), in order."""
        extractors = self.features
        output = await extractors.get(layer, pooling)

        async def submit(pixels: np.ndarray, tag: object) -> Completed[np.ndarray]:
            return await extractors.infer(output, pixels, timeout=self.batching.timeout_s, tag=tag)

        return [Inferred(v, t) for v, t in await self._infer(images, names, request_id, submit)]

    # -- inside --------------------------------------------------------------------------------
    async def _submit_predict(self, pixels: np.ndarray, tag: object) -> Completed[Scored]:
        return await self.batcher.submit(pixels, timeout=self.batching.timeout_s, tag=tag)

    async def _infer(
        self,
        images: Sequence[ImageInput],
        names: Sequence[str | None] | None,
        request_id: str | None,
        submit: Submit[R],
    ) -> list[tuple[R, Timing]]:
        count = len(images)
        if count == 1:  # the common case: no task of its own, no gather
            return [await self._infer_one(0, images[0], names, count, request_id, submit)]
        return list(
            await asyncio.gather(
                *(
                    self._infer_one(i, image, names, count, request_id, submit)
                    for i, image in enumerate(images)
                )
            )
        )

    async def _infer_one(
        self,
        index: int,
        image: ImageInput,
        names: Sequence[str | None] | None,
        count: int,
        request_id: str | None,
        submit: Submit[R],
    ) -> tuple[R, Timing]:
        """Decode one image (off the loop) and queue it as soon as it is decoded."""
        start = time.perf_counter()
        h, w = self.input_size
        try:
            if isinstance(image, np.ndarray):
                pixels = _check_pixels(image, h, w)
            else:
                # Counted while decoding: the batcher waits for company only when some is on
                # its way (nothing runs between the count going down and the submit below).
                self._decoding += 1
                try:
                    pixels = await asyncio.get_running_loop().run_in_executor(
                        self.decoder.pool,
                        decode_image,
                        image,
                        self.input_size,
                        self.decoder.max_pixels,
                    )
                finally:
                    self._decoding -= 1
        except ServiceError as exc:
            if count > 1:
                name = names[index] if names else None
                label = f" ({name})" if name else ""
                exc.message = f"image {index + 1}{label}: {exc.message}"
                exc.args = (exc.message,)
            raise
        decode_ms = (time.perf_counter() - start) * 1e3
        done = await submit(pixels, request_id)
        return done.value, timing(done, decode_ms)

    async def _run_batch(self, items: list[np.ndarray]) -> list[Scored]:
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[list[Scored]] = loop.create_future()

        def done(result: np.ndarray | BaseException) -> None:  # on the runtime's thread
            # The head and the ranking run here too: numpy on the loop would release the
            # GIL (copies, sorts) and queue the loop behind the decode threads to get it back.
            scored: list[Scored] | BaseException
            try:
                scored = result if isinstance(result, BaseException) else self._score(result)
            except BaseException as exc:  # never into the runtime's thread
                scored = exc
            loop.call_soon_threadsafe(_settle, outcome, scored)

        # A runtime that runs batches on threads of its own (OpenVINO's async queue) takes
        # the batch from here: no executor thread between the loop and the model.
        if self.runtime.start(items, done):
            return await outcome
        return await loop.run_in_executor(self.workers, self._predict_sync, items)

    def _predict_sync(self, items: list[np.ndarray]) -> list[Scored]:
        return self._score(self.runtime.raw(np.stack(items)))

    def _score(self, raw: np.ndarray) -> list[Scored]:
        if raw.ndim != 2:
            raise ValueError(
                f"the model answered a batch with shape {list(raw.shape)}, not (images, classes)"
            )
        return score(heads.apply(self.output_kind, raw, sigmoid_applied=self.sigmoid_applied))

    def _images_decoding(self) -> int:
        return self._decoding

    def lease(self) -> _Lease:
        """Hold the model for a request: a retiring version waits until every lease ends."""
        return _Lease(self)

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def inflight(self) -> int:
        """Requests inside `classify`/`extract` (decoding, queued or running)."""
        return self._inflight

    async def retire(self, timeout: float | None) -> None:
        """Finish every request already accepted (up to `timeout` s), then release everything."""
        self.retiring = True
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            logger.warning(
                "%s v%d: %d requests still running after %ss; closing",
                self.name,
                self.version,
                self._inflight,
                timeout,
            )
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        await self.aclose(left)

    async def aclose(self, timeout: float | None = None) -> None:
        await self.batcher.aclose(timeout)
        if self._features is not None:
            await self._features.aclose(timeout)
        self.thread.shutdown(wait=False, cancel_futures=True)
        if self.workers is not self.thread:
            self.workers.shutdown(wait=False, cancel_futures=True)

    @property
    def features(self) -> FeatureExtractors:
        """This model's feature outputs (built on first use, on the model's thread)."""
        if self._features is None:
            self._features = FeatureExtractors(
                self.model,
                self.preprocess_fn,
                self.input_size,
                self.runtime.buckets,
                # Features run the Keras graph on the model's one thread: one batch at a time.
                replace(self.batching.policy, max_concurrent_batches=1),
                self.thread,
                max_outputs=self.source.max_feature_outputs,
                name=self.name,
                observer=self.observer,
                table=self.feature_layers,
            )
        return self._features

    # -- description ---------------------------------------------------------------------------
    def describe(self, *, default: bool = False, versions: list[int] | None = None) -> ModelInfo:
        h, w = self.input_size
        policy = self.batching.policy
        return ModelInfo(
            name=self.name,
            version=self.version,
            versions=versions or [self.version],
            family=self.family,
            input_shape=(h, w, 3),
            preprocessing=self.preprocessing,
            weights=self.weights,
            num_classes=self.num_classes,
            output_kind=self.output_kind,
            labels_languages=self.languages,
            runtime=self.runtime_info(),
            batching=BatchingInfo(
                max_batch_size=self.batcher.batch_limit,
                max_wait_ms=policy.max_wait_s * 1e3,
                max_queue=policy.max_queue,
                max_concurrent_batches=policy.max_concurrent_batches,
                timeout_s=self.batching.timeout_s,
                buckets=self.runtime.buckets,
                configured_max_batch_size=self.batching.configured_max,
                throughput_by_batch=(
                    {k: round(v, 1) for k, v in self.batching.throughput.items()} or None
                ),
                tuning=_tuning(self.batcher),
            ),
            state=ModelState.READY,
            queue_depth=self.batcher.queue_depth,
            default=default,
        )

    def runtime_info(self) -> RuntimeInfo:
        return self.runtime.info()

    def model_ref(self, language: str) -> ModelRef:
        """What every v1 answer says of the model that answered, built once per label language
        (nothing in it changes while this version serves)."""
        ref = self._refs.get(language)
        if ref is None:
            info = self.runtime_info()
            ref = self._refs[language] = ModelRef(
                name=self.name,
                version=self.version,
                weights=self.weights,
                # Which runtime and precision answered, and the figures that let it serve;
                # its whole description (how it was chosen, its kernels, timings) is the
                # model's (`GET /v1/models/{model}`), not every answer's: 1.1 of 2.2 KB.
                runtime=RuntimeInfo.model_validate(info.model_dump(include=set(_ANSWER_RUNTIME))),
                output_kind=self.output_kind,
                labels_language=language,
            )
        return ref


# The runtime's fields every answer carries: which runtime and precision, and its check's figures.
_ANSWER_RUNTIME = frozenset(
    {
        "name",
        "precision",
        "max_abs_diff",
        "max_prob_diff",
        "top1_agreement",
        "top5_overlap",
        "gate_images",
    }
)


def _tuning(batcher: Batcher[Any, Any]) -> dict[str, Any] | None:
    tuner = getattr(batcher, "tuner", None)
    snapshot = getattr(tuner, "snapshot", None)
    return snapshot() if callable(snapshot) else None


class _Lease:
    """Counts a request in for as long as it uses the model, so a retiring version drains it.

    Taken synchronously, in the same step of the event loop as the lookup that found the
    model (see `Registry.use`): a swap that happens later sees the request and waits for it.
    """

    def __init__(self, model: LoadedModel) -> None:
        self.model = model

    def __enter__(self) -> LoadedModel:
        self.model._inflight += 1
        self.model._idle.clear()
        return self.model

    def __exit__(self, *exc_info: object) -> None:
        self.model._inflight -= 1
        if self.model._inflight == 0:
            self.model._idle.set()


def _settle(outcome: asyncio.Future[list[Scored]], result: list[Scored] | BaseException) -> None:
    if outcome.done():  # the batch was cancelled meanwhile (shutdown)
        return
    if isinstance(result, BaseException):
        outcome.set_exception(result)
    else:
        outcome.set_result(result)


def _check_pixels(image: np.ndarray, h: int, w: int) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidImage(
            f"pixels must be uint8 of shape (height, width, 3), got {image.dtype} {list(image.shape)}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidImage(f"pixels have an empty side: {list(image.shape)}")
    if image.shape[:2] == (h, w):
        return np.ascontiguousarray(image)
    return resize(image, h, w)


def top_k_predictions(
    labels: Labels, probs: np.ndarray, k: int, ranked: np.ndarray | None = None
) -> list[Prediction]:
    """The `k` most probable classes, most probable first (ties keep class order, also at
    the k-th place). `ranked`: the row's ranking from `score`, used when it is long enough."""
    k = min(k, probs.shape[0])
    if ranked is None or ranked.shape[0] < k:
        ranked = ranking(probs[None], k)[0]
    idx = ranked[:k]
    return [
        Prediction(
            index=i,
            class_id=labels.class_ids[i],
            label=labels.names[i],
            probability=min(1.0, max(0.0, p)),
        )
        for i, p in zip(idx.tolist(), probs[idx].tolist(), strict=True)
    ]
