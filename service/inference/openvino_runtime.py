"""OpenVINO runtime: the same Keras model exported once, cached on disk, checked against Keras.

The export (Keras' own `model.export(..., format="openvino")`) is cached under a key made
of the model's weights (hashed), input size, preprocessing and library versions, so a
restart with the same weights skips it and a changed weights file invalidates it. The
preprocessing is fused into the graph with OpenVINO's PrePostProcessor: the compiled model
takes the same uint8 pixels as the Keras runtime.

Precision: `fp32` serves the export as is and must match Keras within `tolerance`. `bf16`
compiles the same export with OpenVINO's bf16 inference precision (only where the CPU has
bf16) and `int8`
quantises the export with NNCF on calibration photos (service/inference/quantize.py), caches
the result beside the export under a key that adds the precision, the preset and a hash of
the photos, and must pass an accuracy gate against Keras on held-out photos; its
`max_abs_diff` is then informative only. bf16 passes the same gate. A gate's figures are
cached beside the model it judged (`gate-*.json`), so a second start does not measure again.
The kernels the CPU plugin chose (the compiled runtime model's primitive types, e.g.
`brgconv_avx512_I8`) are summarised in `kernels` and the detail.

Streams: by default the model is compiled with OpenVINO's THROUGHPUT hint, which splits the
cores into independent execution streams (on 2 cores: two streams of one thread). Each
stream runs its own batch, and the server keeps `parallelism` batches in flight (two per
stream: one running, one queued behind it). A stream of
one thread never waits at a barrier for a sibling thread that the OS has lent to the image
decoder; one stream over every core (`streams=1`, the LATENCY hint) answers a lone request
sooner but loses throughput once decoding competes for the cores.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import queue
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from kerasserve.schemas import RuntimeInfo
from kerasserve.service.errors import ModelLoadError
from kerasserve.service.inference import quantize
from kerasserve.service.inference.catalogue import PreprocessMode
from kerasserve.service.inference.runtime import (
    Done,
    ReferenceRuntime,
    pad_to_bucket,
)
from kerasserve.service.settings import cache_home

logger = logging.getLogger("kerasserve.openvino")

# Infer requests (batches in flight) per stream: while a stream runs one batch, the next
# one already waits inside OpenVINO, so the stream never idles while the event loop hands
# it more work (one per stream left ~7% of the cores idle at 32 clients).
REQUESTS_PER_STREAM = 2

# Serving runs a batch of n at its own size up to this many (padding 5 images to 8 made
# MobileNetV2's batch cost 1.6x the CPU: 46-50 against 27-31 ms), and past it at the next
# multiple of it: few shapes, little padding. A shape the plugin has not run yet costs ~40 ms
# once (MobileNetV2, 2 cores), so `serve` runs every one first.
EXACT_UP_TO = 8


def serving_size(n: int, largest: int) -> int:
    """The batch size a batch of `n` images runs at (`largest`: the largest bucket)."""
    if n <= EXACT_UP_TO:
        return n
    return min(-(-n // EXACT_UP_TO) * EXACT_UP_TO, largest)


def serving_sizes(largest: int) -> list[int]:
    """Every size `serving_size` gives for batches of 1 to `largest`."""
    return sorted({serving_size(n, largest) for n in range(1, largest + 1)})


# Largest difference in any served probability from the Keras reference on the probe batch.
DEFAULT_TOLERANCE = 1e-4

# (mean, scale) per channel, in the channel order after an optional reversal: the affine
# form of Keras' preprocessing modes, applied inside the compiled graph.
_AFFINE: dict[PreprocessMode, tuple[bool, list[float] | None, list[float] | None]] = {
    "none": (False, None, None),
    "tf": (False, [127.5] * 3, [127.5] * 3),
    "torch": (False, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]),
    "caffe": (True, [103.939, 116.779, 123.68], None),
}


PRECISIONS = ("fp32", "bf16", "int8")


def cache_root() -> Path:
    return cache_home() / "openvino"


def cache_limit() -> int:
    """Most exported (or quantised) models kept in the cache: every start with new weights
    (`--weights none` draws new ones) adds one, tens of MB each."""
    return max(1, int(os.environ.get("KERASSERVE_CACHE_MAX_ENTRIES", "16")))


def prune_cache(in_use: list[Path], limit: int | None = None) -> list[Path]:
    """Mark `in_use` as just used, then remove the least recently used entries past `limit`
    (and compiled blobs past 2x `limit`). Returns what was removed."""
    limit = cache_limit() if limit is None else limit
    root = cache_root()
    now = time.time()
    for path in in_use:
        if path.exists():
            os.utime(path, (now, now))
    removed: list[Path] = []
    entries = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    entries = [p for p in entries if p.name != "compiled"]
    for path in sorted(entries, key=lambda p: p.stat().st_mtime, reverse=True)[limit:]:
        if path in in_use:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    compiled = root / "compiled"
    if compiled.is_dir():
        blobs = sorted(compiled.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in blobs[2 * limit :]:
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        logger.info("OpenVINO cache: removed %d least recently used entries", len(removed))
    return removed


# Bumped when `_export` makes the graph another way (Keras' export options, what is saved
# beside it): the export cache key includes it, as it includes the Keras and OpenVINO versions.
EXPORT_VERSION = 1


def cache_key(model: Any, input_size: tuple[int, int], mode: PreprocessMode) -> str:
    """Hash of everything the exported graph depends on, weights included (by value), and
    the version of the code that exports it."""
    import keras
    import openvino

    digest = hashlib.sha256()
    header = {
        "export_version": EXPORT_VERSION,
        "name": model.name,
        "input_size": list(input_size),
        "preprocess": mode,
        "keras": keras.__version__,
        "openvino": openvino.__version__,
        "outputs": [list(map(str, model.output_shape))],
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for weight in model.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(weight.path.encode() if hasattr(weight, "path") else b"")
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:32]


def int8_cache_key(fp32_key: str, photos: quantize.PhotoSet, preset: str) -> str:
    """The FP32 export's key plus everything quantisation adds: preset, photos, NNCF."""
    # NNCF ships no type information: imported by name, it is Any to mypy.
    nncf: Any = importlib.import_module("nncf")

    header = {
        "export": fp32_key,
        "precision": "int8",
        "preset": preset,
        "calibration": photos.digest,
        "views": quantize.VIEWS_VERSION,
        "quantize_version": quantize.QUANTIZE_VERSION,
        "nncf": nncf.__version__,
    }
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()[:32]


def model_input(pixels: np.ndarray, mode: PreprocessMode) -> np.ndarray:
    """uint8 pixels to the exported graph's float input: what `_fuse_preprocessing` computes."""
    reverse, mean, scale = _AFFINE[mode]
    x: np.ndarray = pixels.astype(np.float32)
    if reverse:
        x = x[..., ::-1]
    if mean is not None:
        x = np.subtract(x, np.asarray(mean, dtype=np.float32), dtype=np.float32)
    if scale is not None:
        x = np.divide(x, np.asarray(scale, dtype=np.float32), dtype=np.float32)
    return np.ascontiguousarray(x)


class OpenVINORuntime:
    """`precision` "fp32", "bf16" or "int8"; for int8, `calibration_dir` (None: the built-in
    photos; its `holdout/` subfolder, when present, holds the gate's photos), `gate` (the
    accuracy thresholds) and `preset` (NNCF's) apply; bf16 uses the gate and its photos too.

    The gate's figures stay on the runtime for `GET /v1/models/{m}`: `precision`,
    `top1_agreement`, `top5_overlap`, `gate_images`, `calibration` (None for fp32).
    """

    name = "openvino"

    def __init__(
        self,
        model: Any,
        mode: PreprocessMode,
        input_size: tuple[int, int],
        buckets: list[int],
        reference: ReferenceRuntime,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        streams: int = 0,
        precision: str = "fp32",
        calibration_dir: Path | None = None,
        gate: quantize.Gate | None = None,
        preset: str = quantize.DEFAULT_PRESET,
    ) -> None:
        import openvino as ov

        if precision not in PRECISIONS:
            raise ModelLoadError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
            )
        self.buckets = buckets
        self.input_size = input_size
        self.tolerance = tolerance
        self.precision = precision
        self.top1_agreement: float | None = None
        self.top5_overlap: float | None = None
        self.gate_images: int | None = None
        self.calibration: str | None = None
        self.max_prob_diff: float | None = None
        self.gate_cached = False
        self.kernels: dict[str, int] = {}
        start = time.perf_counter()
        key = cache_key(model, input_size, mode)
        export_dir = cache_root() / key
        if not (export_dir / "model.xml").is_file():
            self._export(model, export_dir)
            export_hit = False
        else:
            export_hit = True
        core = ov.Core()
        core.set_property({"CACHE_DIR": str(cache_root() / "compiled")})
        held_out: quantize.PhotoSet | None = None
        if precision == "bf16" and "BF16" not in core.get_property(
            "CPU", "OPTIMIZATION_CAPABILITIES"
        ):
            raise ModelLoadError(
                "--precision bf16: this CPU has no bf16 support (OpenVINO's CPU plugin lists "
                f"{core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')}); use fp32, int8 or auto"
            )
        if precision == "int8":
            photos = quantize.photo_set(calibration_dir)
            # Before quantising: calibration photos that leave no gate photo fail at once.
            held_out = quantize.holdout_set(photos, calibration_dir)
            self.calibration = photos.description
            key = int8_cache_key(key, photos, preset)
            directory = cache_root() / key
            self.cache_hit = (directory / "model.xml").is_file()
            if self.cache_hit:
                logger.info("INT8 cache hit for %s (%s): not re-quantising", model.name, key)
            else:
                self._quantize(core, export_dir, directory, photos, mode, preset)
            what = f"int8 (NNCF {preset}, calibration {photos.description})"
        elif precision == "bf16":
            held_out = quantize.holdout_set(quantize.photo_set(calibration_dir), calibration_dir)
            directory = export_dir
            self.cache_hit = export_hit
            what = "bf16"
        else:
            directory = export_dir
            self.cache_hit = export_hit
            what = "fp32"
        ov_model = core.read_model(directory / "model.xml")
        prune_cache([export_dir, directory])
        ov_model = _fuse_preprocessing(ov, ov_model, mode)
        # f32, not the CPU's default bf16 where it has AMX: the fp32 check holds Keras' numbers,
        # and in an INT8 graph the layers left unquantised stay as exact as in the export;
        # bf16 only when asked, behind its gate.
        hint = "bf16" if precision == "bf16" else "f32"
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint}
        if streams == 1:
            config["PERFORMANCE_HINT"] = "LATENCY"
        elif streams > 1:
            config["NUM_STREAMS"] = streams
        else:
            config["PERFORMANCE_HINT"] = "THROUGHPUT"
        # --runtime-threads, or this worker's share of the cores with --workers N (the CLI
        # sets it before any worker starts; see service/http/workers.py).
        if int(os.environ.get("KERASSERVE_RUNTIME_THREADS") or 0) > 0:
            config["INFERENCE_NUM_THREADS"] = int(os.environ["KERASSERVE_RUNTIME_THREADS"])
        self._compiled = core.compile_model(ov_model, "CPU", config)
        self.streams = max(1, int(self._compiled.get_property("NUM_STREAMS")))
        # predict() may run on this many threads at once, each with its own infer request.
        self.parallelism = self.streams * REQUESTS_PER_STREAM
        threads = int(self._compiled.get_property("INFERENCE_NUM_THREADS"))
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._all_requests = [
            self._compiled.create_infer_request() for _ in range(self.parallelism)
        ]
        for request in self._all_requests:
            self._requests.put(request)
        # Serving's async jobs, made by `serve` once this runtime is the one that serves.
        self._jobs: list[_Job] | None = None
        self._idle: collections.deque[_Job] = collections.deque()
        self.kernels = kernels(self._compiled)
        self.detail: str | None = (
            f"OpenVINO {ov.__version__}, CPU, {what}, {self.streams} stream(s) "
            f"over {threads} thread(s), cache {'hit' if self.cache_hit else 'miss'} ({key}), "
            f"ready in {time.perf_counter() - start:.1f} s; kernels: {kernel_summary(self.kernels)}"
        )
        self._directory = directory
        # The reference's head: the check and the gate compare what serving would answer.
        self.head = reference.head
        self.selection: dict[str, float] | None = None
        self.measured: dict[int, float] | None = None
        self.measured_cpu: dict[int, float] | None = None
        try:
            self.max_abs_diff: float | None = self._check(reference, strict=held_out is None)
            if held_out is not None:
                self._gate(reference, held_out, gate or quantize.Gate())
        except BaseException:
            # Release the compiled model and its infer requests here, on the loading thread,
            # not whenever a garbage collection reaches this half-built runtime on whatever
            # thread is running then (serving threads included).
            self.release()
            raise

    def release(self) -> None:
        """Drop the infer requests and the compiled model; the runtime cannot predict after."""
        jobs = getattr(self, "_jobs", None)
        if jobs is not None:
            self._idle = collections.deque()  # no new batch starts
            for job in jobs:
                job.request.wait()
                job.request = None  # the request holds its last userdata: this job
            self._jobs = None
        self._all_requests.clear()
        self._requests = queue.SimpleQueue()
        self._compiled = None

    @staticmethod
    def _quantize(
        core: Any,
        export_dir: Path,
        directory: Path,
        photos: quantize.PhotoSet,
        mode: PreprocessMode,
        preset: str,
    ) -> None:
        """Quantise the cached export on the calibration photos, save it under `directory`."""
        import openvino as ov

        started = time.perf_counter()
        fp32 = core.read_model(export_dir / "model.xml")
        shape = fp32.inputs[0].get_partial_shape()
        size = (shape[1].get_length(), shape[2].get_length())
        samples = quantize.load_views(photos, size)
        int8 = quantize.quantize(fp32, samples, lambda x: model_input(x, mode), preset)
        directory.parent.mkdir(parents=True, exist_ok=True)
        # Saved into a temporary sibling and renamed, as the export: no half-written cache.
        tmp = Path(tempfile.mkdtemp(prefix=".int8-", dir=directory.parent))
        try:
            ov.save_model(int8, str(tmp / "model.xml"), compress_to_fp16=False)
            (tmp / "calibration.json").write_text(
                json.dumps(
                    {"preset": preset, "calibration": photos.description, "samples": len(samples)}
                )
            )
            try:
                tmp.rename(directory)
            except OSError:  # another process quantised the same key first
                if not (directory / "model.xml").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info(
            "quantised %s to INT8 (NNCF %s, %d calibration samples) in %.1f s",
            export_dir.name,
            preset,
            len(samples),
            time.perf_counter() - started,
        )

    def _gate(
        self, reference: ReferenceRuntime, held_out: quantize.PhotoSet, gate: quantize.Gate
    ) -> None:
        """Top-1 agreement and top-5 overlap with Keras on held-out photos, through the serving
        head; refuse past `gate`. The figures are cached beside the model they judged."""
        name = hashlib.sha256(
            json.dumps(
                [
                    self.precision,
                    held_out.digest,
                    quantize.VIEWS_VERSION,
                    repr(self.head),
                    quantize.GATE_VERSION,
                ]
            ).encode()
        ).hexdigest()[:16]
        cached = self._directory / f"gate-{name}.json"
        measured: quantize.Agreement | None = None
        if cached.is_file():
            try:
                measured = quantize.Agreement(**json.loads(cached.read_text()))
                self.gate_cached = True
            except (ValueError, TypeError):
                measured = None
        if measured is None:
            pixels = quantize.load_views(held_out, self.input_size)
            expected = quantize.predict_all(reference.predict, pixels, reference.buckets[-1])
            got = quantize.predict_all(self.predict, pixels, self.buckets[-1])
            measured = quantize.agreement(expected, got)
            _write_atomic(cached, json.dumps(dataclasses.asdict(measured)))
        self.top1_agreement = measured.top1_agreement
        self.top5_overlap = measured.top5_overlap
        self.max_prob_diff = measured.max_prob_diff
        self.gate_images = measured.images
        figures = (
            f"gate: top-1 agreement {measured.top1_agreement:.1%}, top-5 overlap "
            f"{measured.top5_overlap:.3f}, max prob diff {measured.max_prob_diff:.3g}, FP32 "
            f"decides {measured.decided:.0%}, on "
            f"{measured.images} {held_out.description.split(':')[0]} images"
            f"{' (cached)' if self.gate_cached else ''}"
        )
        logger.info("%s %s", self.precision.upper(), figures)
        self.detail = f"{self.detail}; {figures}"
        gate.check(measured, self.precision)

    @staticmethod
    def _export(model: Any, directory: Path) -> None:
        directory.parent.mkdir(parents=True, exist_ok=True)
        # Export into a temporary sibling and rename: a crash mid-export leaves no half cache.
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=directory.parent))
        try:
            started = time.perf_counter()
            model.export(str(tmp / "model.xml"), format="openvino", verbose=False)
            try:
                tmp.rename(directory)
            except OSError:  # another process exported the same key first
                if not (directory / "model.xml").is_file():
                    raise
            logger.info(
                "exported %s to OpenVINO in %.1f s", model.name, time.perf_counter() - started
            )
        except Exception as exc:
            raise ModelLoadError(f"OpenVINO export of {model.name} failed: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _check(self, reference: ReferenceRuntime, strict: bool = True) -> float:
        """Compare with the Keras runtime on a probe batch; refuse to serve past tolerance
        (`strict`; INT8 is judged by its accuracy gate, the difference is only reported)."""
        h, w = self.input_size
        rng = np.random.default_rng(1234)
        # Smooth gradients plus noise: activations that resemble photos more than pure noise.
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], axis=-1)
        size = min(4, self.buckets[-1])
        probe = np.clip(base + rng.normal(0, 40, (size, h, w, 3)), 0, 255).astype(np.uint8)
        expected = reference.predict(probe)
        got = self.predict(probe)
        diff = float(np.abs(expected - got).max())
        if not np.isfinite(diff) or (strict and diff > self.tolerance):
            raise ModelLoadError(
                f"OpenVINO output differs from Keras by {diff:.3g} on the probe batch "
                f"(tolerance {self.tolerance:g}); refusing to serve it"
            )
        return diff

    def raw(self, batch: np.ndarray) -> np.ndarray:
        """Model outputs for an unpadded batch, as the compiled graph computes them.

        Thread-safe: each call borrows an idle infer request (one per stream).
        """
        n = batch.shape[0]
        padded = pad_to_bucket(batch, self.buckets)
        request = self._requests.get()
        try:
            # The output tensor belongs to the request: copy the rows out before returning it.
            return np.array(request.infer({0: padded})[0][:n], dtype=np.float32)
        finally:
            self._requests.put(request)

    def serve(self) -> None:
        """Make the jobs serving's batches run on (`start`): started from the event loop,
        finished by OpenVINO's own threads, two per batch in flight so that one whose
        callback is finishing never holds back the next. No executor thread between the loop
        and the stream. Only the runtime that serves has them (a candidate that lost never
        made any), made on the loading thread.

        Plain infer requests with a free list of our own, not `AsyncInferQueue`: its
        `is_ready`, `get_idle_request_id` and input dispatch each release the GIL on the event
        loop (and queue it behind the decode threads to get it back); here a batch costs the
        loop one copy into the job's own input tensor and one `start_async`."""
        if self._jobs is not None or self._compiled is None:
            return
        jobs = [_Job(self._compiled.create_infer_request()) for _ in range(2 * self.parallelism)]
        # A shape any request has run is cheap on every other (the plugin keeps its kernels
        # per compiled model): every serving size once, then one lone image each.
        h, w = self.input_size
        for size in serving_sizes(self.buckets[-1]):
            if size not in self.buckets:  # `warm` ran those
                jobs[0].request.infer({0: np.zeros((size, h, w, 3), dtype=np.uint8)})
        one = np.zeros((1, h, w, 3), dtype=np.uint8)
        for job in jobs:
            job.request.infer({0: one})
            job.request.set_callback(_finished, None)
        self._idle = collections.deque(jobs)
        self._jobs = jobs

    def start(self, images: list[np.ndarray], done: Done) -> bool:
        """Start `raw` of `images` on an idle job; `done` gets the outputs on OpenVINO's
        thread. False when every job is busy (the caller runs `raw` instead)."""
        try:
            job = self._idle.pop()
        except IndexError:  # every job busy, or not serving
            return False
        n = len(images)
        size = serving_size(n, self.buckets[-1])
        h, w = self.input_size
        # Written straight into the job's own input tensor (no Python object's lifetime is
        # left to OpenVINO's threads but the job's).
        tensor = job.request.get_input_tensor(0)
        if tensor.shape[0] != size:
            tensor.shape = [size, h, w, 3]
        pixels = tensor.data
        np.stack(images, out=pixels[:n])
        if size > n:
            pixels[n:] = 0
        job.rows = n
        job.done = done
        job.idle = self._idle
        try:
            job.request.start_async(None, job)
        except Exception:  # e.g. still busy finishing its callback: `raw` runs the batch
            logger.debug("an OpenVINO job did not start; the batch runs on `raw`", exc_info=True)
            job.done = None
            self._idle.appendleft(job)
            return False
        return True

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.head(self.raw(batch))

    def info(self) -> RuntimeInfo:
        return RuntimeInfo(
            name=self.name,
            detail=self.detail,
            max_abs_diff=self.max_abs_diff,
            precision=self.precision,
            top1_agreement=self.top1_agreement,
            top5_overlap=self.top5_overlap,
            gate_images=self.gate_images,
            calibration=self.calibration,
            selection=self.selection,
            max_prob_diff=self.max_prob_diff,
            kernels=self.kernels or None,
            precision_selection=getattr(self, "precision_selection", None),
        )

    def warm(self) -> None:
        """Run every bucket through every infer request: each keeps its own shape state."""
        h, w = self.input_size
        for size in self.buckets:
            zeros = np.zeros((size, h, w, 3), dtype=np.uint8)
            for request in self._all_requests:
                request.infer({0: zeros})


def kernels(compiled: Any) -> dict[str, int]:
    """How many compute layers (convolutions, matrix products) run on each kernel the CPU
    plugin chose, e.g. {"brgconv_avx512_I8": 35, "jit_avx512_dw_I8": 17}: the compiled runtime
    model's primitive types with their runtime precision."""
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = info["layerType"].astype(str) if "layerType" in info else ""
        if layer not in _COMPUTE_LAYERS:
            continue
        primitive = info["primitiveType"].astype(str) if "primitiveType" in info else "?"
        precision = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else "?"
        name = (
            primitive
            if primitive.upper().endswith(precision.upper())
            else f"{primitive} {precision}"
        )
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


_COMPUTE_LAYERS = frozenset(
    {"Convolution", "GroupConvolution", "FullyConnected", "MatMul", "Deconvolution"}
)


class _Job:
    """One infer request of serving's and the batch it runs: `rows` images for `done`."""

    __slots__ = ("done", "idle", "request", "rows")

    def __init__(self, request: Any) -> None:
        self.request = request
        self.rows = 0
        self.done: Done | None = None
        self.idle: collections.deque[_Job] | None = None


def _finished(job: _Job | None) -> None:
    """A job's callback, on OpenVINO's thread: the rows out of the job's own output tensor,
    to whoever started it; then the job is free again. It must never raise into OpenVINO."""
    if job is None or job.done is None:  # a warm-up run
        return
    done, job.done = job.done, None
    request = job.request  # None once the runtime is released
    try:
        result: np.ndarray | BaseException = np.array(
            request.get_output_tensor(0).data[: job.rows], dtype=np.float32
        )
    except BaseException as exc:
        result = exc
    if job.idle is not None:
        job.idle.append(job)
    try:
        done(result)
    except BaseException:  # e.g. the event loop closed during shutdown
        logger.debug("an OpenVINO result had no one to go to", exc_info=True)


def kernel_summary(counts: dict[str, int], top: int = 4) -> str:
    """`kernels()` in one short line: the most used first."""
    if not counts:
        return "none reported"
    shown = [f"{name} x{n}" for name, n in list(counts.items())[:top]]
    rest = sum(list(counts.values())[top:])
    return ", ".join(shown) + (f", +{rest} other" if rest else "")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _fuse_preprocessing(ov: Any, model: Any, mode: PreprocessMode) -> Any:
    reverse, mean, scale = _AFFINE[mode]
    ppp = ov.preprocess.PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NHWC"))
    steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
    if reverse:
        steps = steps.reverse_channels()
    if mean is not None:
        steps = steps.mean(mean)
    if scale is not None:
        steps = steps.scale(scale)
    return ppp.build()
