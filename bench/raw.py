"""The raw limit: the served model in-process through a runtime's compiled path, no HTTP.

Runs in its own process (`python -m bench.raw --runtime keras --out raw.json`) so the
benchmark's driver, which is also the load generator, never imports TensorFlow. The runtime
is built exactly as the server builds it (`ServedModel.load`, so `--runtime openvino` gets
the same export, parity check and buckets) and is fed pre-decoded uint8 batches on the
model's own thread. With `--decode` it also times `decode_image` (the server's decoder,
scaled JPEG decoding included) on each upload variant, one thread, and phone photos decoded
at full size by Pillow then resized (what scaling saves).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench import images, machine  # noqa: E402

MODEL = "MobileNetV2"
MAX_PIXELS = 50_000_000


def _time_calls(fn: Any, seconds: float, min_calls: int = 1, parallel: int = 1) -> dict[str, float]:
    """`parallel` threads (1: this one) call `fn` for about `seconds`, together at least
    `min_calls` times, after one warm-up call each: wall and CPU per call."""
    walls: list[float] = []

    def worker(deadline: float) -> None:
        while time.perf_counter() < deadline or len(walls) < min_calls:
            t = time.perf_counter()
            fn()
            walls.append(time.perf_counter() - t)

    with ThreadPoolExecutor(parallel) as pool:
        # Warm-up: one call per thread, so each of OpenVINO's infer requests has run once.
        if parallel == 1:
            fn()
        else:
            list(pool.map(lambda _: fn(), range(parallel)))
        busy0 = machine.busy_s()
        cpu0, start = time.process_time(), time.perf_counter()
        if parallel == 1:
            worker(start + seconds)  # on the caller's thread: the model's own
        else:
            list(pool.map(worker, [start + seconds] * parallel))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    other = machine.other_cores(busy0, machine.busy_s(), cpu, elapsed)
    return {
        "other_cores": other,
        "calls": len(walls),
        "mean_s": elapsed / len(walls),
        "median_s": statistics.median(walls),
        "cpu_s": cpu / len(walls),
    }


def measure_runtime(
    runtime: Any, pixels: np.ndarray, sizes: list[int], seconds: float
) -> dict[str, Any]:
    """Throughput at each batch size, with as many calls in flight as the runtime runs
    side by side (`parallelism`: OpenVINO's streams, two requests each), as the server
    runs it; the batch-1 latency is that of a lone call."""
    parallel = max(1, getattr(runtime, "parallelism", 1))
    rows = []
    for size in sizes:
        batch = np.ascontiguousarray(pixels[np.arange(size) % len(pixels)])
        t = _time_calls(lambda b=batch: runtime.predict(b), seconds, min_calls=3, parallel=parallel)
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
    best = max(rows, key=lambda r: r["img_s"])
    one = pixels[:1]
    lone = _time_calls(lambda: runtime.predict(one), min(seconds, 1.0), min_calls=10)
    return {
        "by_batch": rows,
        "best_batch": best["batch"],
        "best_img_s": best["img_s"],
        "infer_ms_per_img": 1e3 / best["img_s"],
        "batch1_latency_ms": lone["median_s"] * 1e3,
        "parallelism": parallel,
    }


def measure_decode(seconds: float) -> dict[str, Any]:
    from service.inference.imaging import decode_image

    out: dict[str, Any] = {}
    for variant in images.VARIANTS:
        photos = images.load(variant)
        datas = [p.data for p in photos]

        def decode_all(datas: list[bytes] = datas) -> None:
            for data in datas:
                decode_image(data, (224, 224), MAX_PIXELS)

        t = _time_calls(decode_all, seconds, min_calls=2)
        out[variant] = {
            "ms_per_img": t["mean_s"] / len(datas) * 1e3,
            "cpu_ms_per_img": t["cpu_s"] / len(datas) * 1e3,
            "images": len(datas),
        }
    phone = images.load("phone", limit=2)
    t = _time_calls(lambda: [_decode_without_draft(p.data) for p in phone], 0, min_calls=2)
    out["phone_no_draft"] = {"ms_per_img": t["mean_s"] / len(phone) * 1e3}
    out["draft_speedup"] = out["phone_no_draft"]["ms_per_img"] / out["phone"]["ms_per_img"]
    return out


def _decode_without_draft(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")
    return np.asarray(img.resize((224, 224), Image.Resampling.BILINEAR, reducing_gap=3.0))


async def _run(runtime_name: str, sizes: list[int], seconds: float) -> dict[str, Any]:
    from batching import BatchPolicy
    from service.inference.imaging import decode_image
    from service.inference.models import ModelSource, ServedModel

    served = ServedModel(
        source=ModelSource(name=MODEL, weights="none", runtime=runtime_name),
        policy=BatchPolicy(max_batch_size=max(sizes)),
        timeout_s=60,
    )
    start = time.perf_counter()
    await served.load()
    load_s = time.perf_counter() - start
    try:
        runtime = served.runtime
        assert runtime is not None
        pixels = np.stack(
            [decode_image(p.data, served.input_size, MAX_PIXELS) for p in images.load("small")]
        )
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(
            served.thread, measure_runtime, runtime, pixels, sizes, seconds
        )
    finally:
        await served.aclose()
    result.update(
        runtime=runtime.name,
        detail=runtime.detail,
        max_abs_diff=runtime.max_abs_diff,
        load_s=load_s,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="raw in-process limit of one runtime")
    p.add_argument("--runtime", default="keras")
    p.add_argument("--sizes", default="1,2,4,8,16,32", help="batch sizes (the server's buckets)")
    p.add_argument("--seconds", type=float, default=1.5, help="timed seconds per batch size")
    p.add_argument("--decode", action="store_true", help="also time image decoding")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    result: dict[str, Any] = {"runtime": args.runtime}
    try:
        result.update(asyncio.run(_run(args.runtime, sizes, args.seconds)))
    except Exception as exc:  # the runtime is unavailable: say why, and move on
        result["unavailable"] = f"{type(exc).__name__}: {exc}"[:500]
    if args.decode:
        result["decode"] = measure_decode(max(args.seconds, 1.0))
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return 0 if "unavailable" not in result else 3


if __name__ == "__main__":
    sys.exit(main())
