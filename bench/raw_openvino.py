"""OpenVINO's own in-process figure: the exported model, THROUGHPUT hint, two requests per stream.

`python -m bench.raw_openvino --out raw.json [--precision int8] [--model ResNet50]` exports
`keras.applications.MobileNetV2(weights=None)` (or `--model`'s network) with Keras' own
`model.export(..., format="openvino")`, fuses its preprocessing (MobileNetV2: `tf`,
ResNet50: `caffe`) into the graph with OpenVINO's
PrePostProcessor (uint8 NHWC in, as a server feeds it), and for each batch size reshapes
the model to that static shape, compiles it for the CPU with the THROUGHPUT hint and FP32
inference precision, and keeps an `AsyncInferQueue` of two infer requests per stream full
for `--seconds` (what OpenVINO's `benchmark_app` does). `--precision int8` first quantizes
the exported model with `kerasserve.service.inference.quantize` (imported lazily: without it the figure
is skipped with a note). The pixels are the small photos resized by Pillow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench import machine  # noqa: E402
from bench.raw import MODEL, MODELS, SIZE, pixels, sizes_arg, summarize  # noqa: E402

REQUESTS_PER_STREAM = 2
# keras.applications' preprocessing modes as (reverse channels, mean, scale), as kerasserve
# fuses them (service/inference/openvino_runtime.py `_AFFINE`).
AFFINE: dict[str, tuple[bool, list[float] | None, list[float] | None]] = {
    "tf": (False, [127.5] * 3, [127.5] * 3),
    "caffe": (True, [103.939, 116.779, 123.68], None),
}
QUANTIZE_MODULE = "kerasserve.service.inference.quantize"


class Skipped(Exception):
    """The figure cannot be taken here (e.g. INT8 without the quantizer); the message says why."""


def export(directory: Path, name: str = MODEL) -> tuple[Any, Path]:
    """The Keras model and its OpenVINO IR, exported by Keras itself."""
    import keras

    model = getattr(keras.applications, name)(weights=None)
    xml = directory / "model.xml"
    model.export(str(xml), format="openvino", verbose=False)
    return model, xml


def with_uint8_input(ov: Any, ov_model: Any, mode: str = "tf") -> Any:
    """The model's preprocessing inside the graph (`tf`, MobileNetV2's: (x - 127.5) / 127.5;
    `caffe`, ResNet50's: RGB to BGR, minus the ImageNet mean); uint8 NHWC in."""
    reverse, mean, scale = AFFINE[mode]
    ppp = ov.preprocess.PrePostProcessor(ov_model)
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


def preprocess_numpy(batch: np.ndarray, mode: str = "tf") -> np.ndarray:
    """`with_uint8_input`'s preprocessing in numpy (what the quantizer calibrates on)."""
    reverse, mean, scale = AFFINE[mode]
    x = np.asarray(batch, np.float32)
    if reverse:
        x = x[..., ::-1]
    if mean is not None:
        x = np.subtract(x, np.asarray(mean, np.float32), dtype=np.float32)
    if scale is not None:
        x = np.divide(x, np.asarray(scale, np.float32), dtype=np.float32)
    return np.ascontiguousarray(x)


def quantized(ov_model: Any, mode: str = "tf") -> tuple[Any, str]:
    """The INT8 model as kerasserve makes it: NNCF, calibrated on its built-in photo views."""
    import importlib

    try:
        quantize = importlib.import_module(QUANTIZE_MODULE)
    except ModuleNotFoundError as exc:
        raise Skipped(f"{QUANTIZE_MODULE} is not there yet ({exc}); no INT8 figure") from exc
    needed = ("quantize", "load_views", "photo_set")
    missing = [name for name in needed if not hasattr(quantize, name)]
    if missing:
        raise Skipped(f"{QUANTIZE_MODULE} has no {', '.join(missing)}; no INT8 figure")
    samples = quantize.load_views(quantize.photo_set(None), SIZE)

    def preprocess(batch: np.ndarray) -> np.ndarray:
        # The model's mode, as keras.applications' preprocess_input.
        return preprocess_numpy(batch, mode)

    model = quantize.quantize(ov_model, samples, preprocess)
    return model, f"{QUANTIZE_MODULE}.quantize (NNCF, {len(samples)} built-in calibration views)"


def time_queue(compiled: Any, batch: np.ndarray, seconds: float) -> dict[str, float]:
    """Keep an AsyncInferQueue of two requests per stream full for about `seconds`."""
    import openvino as ov

    streams = max(1, int(compiled.get_property("NUM_STREAMS")))
    jobs = streams * REQUESTS_PER_STREAM
    queue = ov.AsyncInferQueue(compiled, jobs)
    latencies: list[float] = []

    def done(_request: Any, started: float) -> None:
        latencies.append(time.perf_counter() - started)

    queue.set_callback(done)
    for _ in range(jobs):  # warm-up: every request runs once
        queue.start_async({0: batch}, time.perf_counter())
    queue.wait_all()
    latencies.clear()
    busy0 = machine.busy_s()
    cpu0, start = time.process_time(), time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline or len(latencies) < jobs:
        queue.start_async({0: batch}, time.perf_counter())  # blocks while every request runs
    queue.wait_all()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    calls = len(latencies)
    return {
        "calls": calls,
        "streams": streams,
        "requests": jobs,
        "img_s": calls * batch.shape[0] / elapsed,
        "latency_ms": statistics.median(latencies) * 1e3,
        "cpu_ms_per_img": cpu / (calls * batch.shape[0]) * 1e3,
        "other_cpu_cores": machine.other_cores(busy0, machine.busy_s(), cpu, elapsed) or 0.0,
    }


def lone_latency_ms(compiled: Any, batch: np.ndarray, calls: int = 20) -> float:
    request = compiled.create_infer_request()
    request.infer({0: batch})
    walls = []
    for _ in range(calls):
        t = time.perf_counter()
        request.infer({0: batch})
        walls.append(time.perf_counter() - t)
    return statistics.median(walls) * 1e3


def measure(
    sizes: list[int], seconds: float, precision: str, work: Path, name: str = MODEL
) -> dict[str, Any]:
    import openvino as ov

    mode = MODELS[name][1]
    started = time.perf_counter()
    _, xml = export(work, name)
    core = ov.Core()
    data = pixels(max(sizes))
    base = core.read_model(xml)
    source = f"{name}, Keras model.export(format='openvino')"
    if precision == "int8":
        base, how = quantized(base, mode)
        source += f", then {how}"
    load_s = time.perf_counter() - started
    config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": "f32"}
    rows = []
    batch1_latency_ms = 0.0
    for size in sizes:
        model = base.clone()
        model.reshape([size, *data.shape[1:]])
        compiled = core.compile_model(with_uint8_input(ov, model, mode), "CPU", config)
        batch = np.ascontiguousarray(data[:size])
        row = time_queue(compiled, batch, seconds)
        rows.append({"batch": size, **row})
        if size == 1:
            batch1_latency_ms = lone_latency_ms(compiled, batch)
        del compiled
    result = summarize(rows, batch1_latency_ms)
    streams = rows[0]["streams"]
    result.update(
        engine=f"openvino-{precision}",
        model=name,
        detail=f"OpenVINO {ov.__version__}, CPU, THROUGHPUT hint, {streams} stream(s), "
        f"{REQUESTS_PER_STREAM} infer requests per stream, FP32 inference precision, "
        f"static batch shapes; model: {source}",
        load_s=load_s,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=sizes_arg, default=[1, 2, 4, 8, 16, 32], help="batch sizes")
    p.add_argument("--seconds", type=float, default=1.5, help="timed seconds per batch size")
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
    p.add_argument("--model", choices=sorted(MODELS), default=MODEL, help=f"default {MODEL}")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    result: dict[str, Any] = {"engine": f"openvino-{args.precision}", "model": args.model}
    with tempfile.TemporaryDirectory(prefix="bench-openvino-") as work:
        try:
            result.update(measure(args.sizes, args.seconds, args.precision, Path(work), args.model))
        except Skipped as exc:
            result["skipped"] = str(exc)
        except Exception as exc:  # say why, and let the run go on with the other targets
            result["unavailable"] = f"{type(exc).__name__}: {exc}"[:500]
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0 if "unavailable" not in result else 3


if __name__ == "__main__":
    sys.exit(main())
