"""The raw Keras limit: a plain `tf.function` of the model, in a process of its own.

`python -m bench.raw --out raw.json [--model ResNet50]` builds
`keras.applications.MobileNetV2(weights=None)` (or `--model`'s network, one of `MODELS`),
wraps `model(preprocess_input(x), training=False)` in one `tf.function` (the cast to float
and Keras' own `preprocess_input` inside the graph, as any server must do them), and times
it on pre-decoded uint8 batches of every size in `--sizes`, one caller thread (TensorFlow's
own pool spreads each call over the cores). Nothing of kerasserve is imported: the pixels
are the small photos resized by Pillow. The limit is the best batch size's img/s; the batch-1
latency is the median of lone calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench import images, machine  # noqa: E402

MODEL = "MobileNetV2"
SIZE = (224, 224)
# The networks a raw limit can take: their keras.applications module (whose
# `preprocess_input` the Keras limit calls) and that preprocessing's mode.
MODELS: dict[str, tuple[str, str]] = {
    "MobileNetV2": ("mobilenet_v2", "tf"),
    "ResNet50": ("resnet50", "caffe"),
}


def pixels(count: int = 32) -> np.ndarray:
    """`count` uint8 (224, 224, 3) images from the small photos, resized by Pillow alone."""
    import io

    from PIL import Image

    decoded = [
        np.asarray(Image.open(io.BytesIO(p.data)).convert("RGB").resize(SIZE), dtype=np.uint8)
        for p in images.load("small")
    ]
    return np.stack([decoded[i % len(decoded)] for i in range(count)])


def time_calls(fn: Callable[[], Any], seconds: float, min_calls: int = 3) -> dict[str, float]:
    """Call `fn` for about `seconds` (at least `min_calls` times) after one warm-up call."""
    fn()
    walls: list[float] = []
    busy0 = machine.busy_s()
    cpu0, start = time.process_time(), time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline or len(walls) < min_calls:
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return {
        "calls": len(walls),
        "mean_s": elapsed / len(walls),
        "median_s": statistics.median(walls),
        "cpu_s": cpu / len(walls),
        "other_cores": machine.other_cores(busy0, machine.busy_s(), cpu, elapsed) or 0.0,
    }


def summarize(rows: list[dict[str, Any]], batch1_latency_ms: float) -> dict[str, Any]:
    """The limit of a sweep: its best batch size, and the lone-call latency."""
    best = max(rows, key=lambda r: r["img_s"])
    return {
        "by_batch": rows,
        "best_batch": best["batch"],
        "best_img_s": best["img_s"],
        "infer_ms_per_img": 1e3 / best["img_s"],
        "batch1_latency_ms": batch1_latency_ms,
    }


def measure(sizes: list[int], seconds: float, name: str = MODEL) -> dict[str, Any]:
    import importlib

    import keras
    import tensorflow as tf

    module = importlib.import_module(f"keras.applications.{MODELS[name][0]}")
    preprocess_input = module.preprocess_input
    started = time.perf_counter()
    model = getattr(keras.applications, name)(weights=None)

    def call(x: Any) -> Any:
        return model(preprocess_input(tf.cast(x, tf.float32)), training=False)

    forward: Callable[[Any], Any] = tf.function(call)

    load_s = time.perf_counter() - started
    data = pixels(max(sizes))
    rows = []
    for size in sizes:
        batch = tf.constant(data[:size])
        t = time_calls(lambda b=batch: forward(b).numpy(), seconds)  # type: ignore[misc]
        rows.append(
            {
                "batch": size,
                "img_s": size / t["mean_s"],
                "latency_ms": t["median_s"] * 1e3,
                "cpu_ms_per_img": t["cpu_s"] / size * 1e3,
                "calls": t["calls"],
                "other_cpu_cores": t["other_cores"],
            }
        )
    one = tf.constant(data[:1])
    lone = time_calls(lambda: forward(one).numpy(), min(seconds, 1.0), min_calls=10)
    result = summarize(rows, lone["median_s"] * 1e3)
    result.update(
        engine="keras",
        model=name,
        detail=f"tf.function(model(preprocess_input(x), training=False)) of {name}, TensorFlow "
        f"{tf.__version__}, Keras {keras.__version__}",
        load_s=load_s,
    )
    return result


def sizes_arg(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"batch sizes must be integers >= 1, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=sizes_arg, default=[1, 2, 4, 8, 16, 32], help="batch sizes")
    p.add_argument("--seconds", type=float, default=1.5, help="timed seconds per batch size")
    p.add_argument("--model", choices=sorted(MODELS), default=MODEL, help=f"default {MODEL}")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    result: dict[str, Any] = {"engine": "keras", "model": args.model}
    try:
        result.update(measure(args.sizes, args.seconds, args.model))
    except Exception as exc:  # say why, and let the run go on with the other targets
        result["unavailable"] = f"{type(exc).__name__}: {exc}"[:500]
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0 if "unavailable" not in result else 3


if __name__ == "__main__":
    sys.exit(main())
