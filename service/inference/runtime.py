"""Runtimes run the forward pass on whole uint8 batches; Keras (TensorFlow) is the reference."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from kerasserve.schemas import RuntimeInfo
from kerasserve.service.inference.heads import Head

logger = logging.getLogger("kerasserve.runtime")


def buckets_for(max_batch_size: int) -> list[int]:
    """Batch sizes to compile and warm: powers of two up to, and including, the maximum."""
    sizes = [1]
    while sizes[-1] * 2 < max_batch_size:
        sizes.append(sizes[-1] * 2)
    if sizes[-1] != max_batch_size:
        sizes.append(max_batch_size)
    return sizes


def bucket_for(n: int, buckets: list[int]) -> int:
    """The smallest bucket that holds a batch of `n`."""
    size = next((b for b in buckets if b >= n), None)
    if size is None:
        raise ValueError(f"batch of {n} exceeds the largest bucket {buckets[-1]}")
    return size


def pad_to_bucket(batch: np.ndarray, buckets: list[int]) -> np.ndarray:
    """Pad `batch` with zero images up to the smallest bucket that holds it."""
    n = batch.shape[0]
    size = bucket_for(n, buckets)
    if size == n:
        return batch
    pad = np.zeros((size - n, *batch.shape[1:]), dtype=batch.dtype)
    return np.concatenate([batch, pad])


# What one batch costs the server beyond the model call (stacking, futures, thread hand-off):
# calibration charges it to every batch, so tiny batches are not flattered.
BATCH_OVERHEAD_S = 0.002
# The same in CPU time, for the batch cap of a runtime running batches side by side: per
# batch, the event loop's share (gathering, the copy into the request, the start, the result
# handed back to each request) and the hand-off to and from the stream's thread. In process
# on 2 cores (bench/results/frontend.md) the near-free model cost the loop 0.07 ms and
# OpenVINO's threads 0.03 ms more per request than the model itself, at ~5.5 requests a
# batch: about 0.5 ms a batch.
BATCH_CPU_S = 0.0005


def calibration_runs(runtime: Runtime) -> int:
    """How many passes `calibrate` makes by default.

    A runtime running batches side by side (OpenVINO's streams) runs a pass over sizes 1-8
    in about 50 ms on 2 cores, so it gets 9: with 3 the start-up batch cap of MobileNetV2
    changed between fresh starts on the same machine (2, 4 or 8; idle figures for batch 2
    344-427 img/s), and a cap of 8 served 5-15 % less than 2 or 4 under 32 clients. Over 8
    repeated calibrations of one OpenVINO runtime, 3 passes put batch 2 at 344-414 img/s and
    9 passes at 406-414. A runtime running one batch at a time (Keras) keeps 3: each size's
    first pass compiles, and its live tuner decides after the first limit.
    """
    return 9 if runtime.parallelism > 1 else 3


def calibrate(
    runtime: Runtime,
    input_size: tuple[int, int],
    runs: int | None = None,
    sizes: list[int] | None = None,
    cpu: dict[int, float] | None = None,
) -> dict[int, float]:
    """Images per second at each bucket, measured on this machine.

    Buckets are timed in interleaved passes (up, then down, ...) and each keeps its fastest
    run: other load on the machine only ever slows a run down, so the minimum is the
    estimate least hurt by noise, and interleaving spreads any drift over every size.
    A runtime that runs batches side by side (`parallelism` > 1) is timed that way: as many
    batches at once as it takes, so the figure is the whole machine's. `sizes`: a subset of
    the buckets (default all); `runs`: passes (default `calibration_runs`).

    `cpu`, when given, is filled with images per CPU-second of this process at each bucket
    (its least CPU time over the passes, `BATCH_CPU_S` charged to every batch): what a batch
    size costs, whatever else the machine runs. The fastest run in wall time is not: with
    another process keeping one of 2 cores busy, a batch of 1 (a few ms) can slip into a
    moment the other process sleeps and a batch of 4 cannot, so batch 1 looked the fastest
    (MobileNetV2: 1: 383, 2: 330, 4: 353 img/s) where idle it is the slowest (1: 387, 2: 430,
    4: 469), while images per CPU-second agreed busy and idle within 4 %.
    """
    runs = calibration_runs(runtime) if runs is None else runs
    h, w = input_size
    parallel = max(1, runtime.parallelism)
    order = list(sizes or runtime.buckets)
    batches = {size: np.zeros((size, h, w, 3), dtype=np.uint8) for size in order}
    fastest = dict.fromkeys(order, float("inf"))
    cheapest = dict.fromkeys(order, float("inf"))
    with ThreadPoolExecutor(parallel, thread_name_prefix="calibrate") as pool:
        for _ in range(runs):
            for size in order:
                start, used = time.perf_counter(), time.process_time()
                if parallel == 1:
                    runtime.predict(batches[size])
                else:
                    list(pool.map(runtime.predict, [batches[size]] * parallel))
                fastest[size] = min(fastest[size], time.perf_counter() - start)
                cheapest[size] = min(cheapest[size], time.process_time() - used)
            order.reverse()
    if cpu is not None:
        cpu.update(
            {
                size: parallel * size / (max(t, 0.0) + parallel * BATCH_CPU_S)
                for size, t in cheapest.items()
            }
        )
    return {size: parallel * size / (t + BATCH_OVERHEAD_S) for size, t in fastest.items()}


def best_batch(rates: dict[int, float], within: float = 0.9, *, largest: bool = False) -> int:
    """A batch size reaching `within` of the best throughput: the smallest (past it, bigger
    batches only add latency: on a 2-core CPU, TensorFlow peaks around 4 images), or with
    `largest` the largest (a runtime running batches side by side: start-up timing leaves
    out what each batch costs the event loop and the thread hand-offs, which a bigger batch
    shares out, so among sizes the noise cannot tell apart the bigger serves more)."""
    best = max(rates.values())
    near = [size for size, rate in rates.items() if rate >= within * best]
    return max(near) if largest else min(near)


# Receives a batch's raw outputs, or the exception that ended it (see `Runtime.start`).
Done = Callable[[np.ndarray | BaseException], None]


class Runtime(Protocol):
    """Loading happens on the model's own thread; `predict` may be called from up to
    `parallelism` threads at once (1: only ever from the model's thread).

    `raw` is what serving runs (the loaded model applies its head); `predict` is `raw`
    through the same head, for checks, calibration and warm-up, so what is checked is what
    is served.
    """

    name: str
    detail: str | None
    max_abs_diff: float | None
    buckets: list[int]
    parallelism: int
    head: Head
    # `--runtime auto`: images per second each candidate served at start-up (None otherwise).
    selection: dict[str, float] | None
    # `--runtime auto`: images per second by batch size, measured while choosing this runtime
    # (already warmed then); loading reuses them instead of calibrating again.
    measured: dict[int, float] | None
    # Images per CPU-second by batch size, measured with `measured` (`calibrate`'s `cpu`).
    measured_cpu: dict[int, float] | None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """uint8 (n, h, w, 3) -> float32 (n, classes): `head(raw(batch))`."""
        ...

    def raw(self, batch: np.ndarray) -> np.ndarray:
        """uint8 (n, h, w, 3) -> the model's own outputs (n, units), before any head transform."""
        ...

    def warm(self) -> None: ...

    def serve(self) -> None:
        """This runtime is the one that serves: make what only serving needs."""
        ...

    def release(self) -> None:
        """This runtime will not serve: free what it holds now, on the calling thread."""
        ...

    def start(self, images: list[np.ndarray], done: Done) -> bool:
        """Start `raw` of these images, stacked, without a thread of the caller's: `done`
        receives the outputs (or the exception) on the runtime's own thread. False when this
        runtime cannot (or has no idle slot now): the caller runs `raw` on a thread instead."""
        ...

    def info(self) -> RuntimeInfo:
        """What `GET /v1/models/{m}` says of this runtime."""
        ...


class ReferenceRuntime(Runtime, Protocol):
    """A Keras runtime other runtimes are checked against (TensorFlow's, or JAX's)."""

    def preprocess(self, batch: np.ndarray) -> np.ndarray: ...


class KerasBase:
    """What the Keras runtimes share, whatever the backend: padding to buckets, the head,
    warm-up and the description. Subclasses build `_run` (a padded uint8 batch -> outputs)
    and `preprocess`."""

    name = "keras"
    # One batch at a time: the backend already spreads each one over every core (or device).
    parallelism = 1

    def __init__(
        self, model: Any, input_size: tuple[int, int], buckets: list[int], head: Head | None
    ) -> None:
        self.model = model
        self.input_size = input_size
        self.buckets = buckets
        self.head = head or Head.of(model)
        self.max_abs_diff: float | None = 0.0
        self.detail: str | None = None
        self.selection: dict[str, float] | None = None
        self.measured: dict[int, float] | None = None
        self.measured_cpu: dict[int, float] | None = None

    def _run(self, padded: np.ndarray) -> Any:
        raise NotImplementedError

    def preprocess(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def raw(self, batch: np.ndarray) -> np.ndarray:
        """Model outputs for an unpadded batch, as the model computes them."""
        n = batch.shape[0]
        out = self._run(pad_to_bucket(batch, self.buckets))
        return np.asarray(out, dtype=np.float32)[:n]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.head(self.raw(batch))

    def warm(self) -> None:
        h, w = self.input_size
        for size in self.buckets:
            self.raw(np.zeros((size, h, w, 3), dtype=np.uint8))

    def serve(self) -> None:
        pass

    def release(self) -> None:
        pass

    def start(self, images: list[np.ndarray], done: Done) -> bool:  # noqa: ARG002
        # Keras runs a batch on the calling thread (the model's own): nothing to start.
        return False

    def info(self) -> RuntimeInfo:
        return RuntimeInfo(
            name=self.name,
            detail=self.detail,
            max_abs_diff=self.max_abs_diff,
            selection=self.selection,
        )


def make_preprocess(preprocess_input: Callable[..., Any], input_size: tuple[int, int]) -> Any:
    """The model's own `preprocess_input` as a graph on uint8 batches (cast to float32 first:
    caffe mode on uint8 tensors silently wraps around)."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, *input_size, 3], tf.uint8)

    def preprocess(x: Any) -> Any:
        return preprocess_input(tf.cast(x, tf.float32))

    return tf.function(preprocess, input_signature=[spec])


class KerasRuntime(KerasBase):
    """The model's own preprocessing and forward pass fused in one `tf.function` graph.

    The graph takes uint8 pixels with a dynamic batch dimension, so it is traced once;
    every bucket is run once at warm-up so oneDNN has built its kernels for each shape
    before the first request arrives.
    """

    @staticmethod
    def configure_threads(intra_op: int, inter_op: int) -> tuple[int, int]:
        """Size TensorFlow's thread pools; returns the (intra-op, inter-op) counts in force.

        0 means TensorFlow's default (one per core, both pools). TensorFlow fixes its pools
        when it runs its first op, so call this before any model is built (at start-up,
        before loading); afterwards a different request is logged and left unapplied.

        Why it matters on a small CPU: the intra-op pool splits every op over its threads
        and waits for the slowest, so a decode thread or the event loop taking one of the
        cores stalls the whole op; inter-op threads run independent ops side by side, which
        a chain-shaped CNN hardly has, each asking the intra-op pool for every core again.

        >>> KerasRuntime.configure_threads(0, 0)  # doctest: +SKIP
        (0, 0)
        """
        if intra_op < 0 or inter_op < 0:
            raise ValueError(
                f"thread counts must be >= 0 (0: TensorFlow's default), "
                f"got intra_op={intra_op}, inter_op={inter_op}"
            )
        import tensorflow as tf

        pools = tf.config.threading
        current = (
            pools.get_intra_op_parallelism_threads(),
            pools.get_inter_op_parallelism_threads(),
        )
        if current == (intra_op, inter_op):
            return current
        try:
            pools.set_intra_op_parallelism_threads(intra_op)
            pools.set_inter_op_parallelism_threads(inter_op)
        except RuntimeError as exc:
            logger.warning(
                "TensorFlow is already running with intra-op %d / inter-op %d threads (0: "
                "one per core); intra_op=%d, inter_op=%d come too late and are not applied "
                "(%s): configure threads before the first model is built",
                *current,
                intra_op,
                inter_op,
                exc,
            )
            return current
        return intra_op, inter_op

    def __init__(
        self,
        model: Any,
        preprocess_input: Callable[..., Any],
        input_size: tuple[int, int],
        buckets: list[int],
        head: Head | None = None,
    ) -> None:
        import tensorflow as tf

        super().__init__(model, input_size, buckets, head)
        intra = tf.config.threading.get_intra_op_parallelism_threads() or "default"
        inter = tf.config.threading.get_inter_op_parallelism_threads() or "default"
        self.detail = (
            f"TensorFlow {tf.__version__}, tf.function graph, "
            f"threads intra-op {intra} / inter-op {inter}"
        )
        spec = tf.TensorSpec([None, *input_size, 3], tf.uint8)
        preprocess = make_preprocess(preprocess_input, input_size)

        def forward(x: Any) -> Any:
            return model(preprocess(x), training=False)

        self._preprocess = preprocess
        # The concrete function: calling it skips tf.function's per-call signature matching.
        self._forward = tf.function(forward, input_signature=[spec]).get_concrete_function()
        self._to_tensor = tf.convert_to_tensor

    def preprocess(self, batch: np.ndarray) -> np.ndarray:
        """The exact pixels-to-input transform the graph applies (for tests and runtimes)."""
        return np.asarray(self._preprocess(batch))

    def _run(self, padded: np.ndarray) -> Any:
        return self._forward(self._to_tensor(padded))
