"""INT8 (and bf16 where the CPU has it) against FP32 OpenVINO in one process: images per second at
each batch size, the ratio to FP32 at each one's best batch, and the kernels the CPU plugin chose.

Both runtimes are built as the server builds them (THROUGHPUT hint, two infer requests per
stream, buckets 1..max), then timed in interleaved rounds: every round visits every batch
size, each size times FP32 and INT8 back to back (in alternating order), so drift on a shared
machine hits both alike; each figure is the median over rounds.

    python -m bench.int8 --model MobileNetV2 --rounds 7

Weights are random (`weights=None`): speed does not depend on their values, and the accuracy
gates are measured and reported but not enforced (random weights have no accuracy to keep).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench import machine


def throughput(runtime: Any, batch: np.ndarray, pool: ThreadPoolExecutor, min_s: float) -> float:
    """Images per second with `runtime.parallelism` batches in flight, over at least `min_s`."""
    parallel = runtime.parallelism
    done, start = 0, time.perf_counter()
    while True:
        list(pool.map(runtime.predict, [batch] * parallel))
        done += parallel * batch.shape[0]
        elapsed = time.perf_counter() - start
        if elapsed >= min_s:
            return float(done / elapsed)


def measure(
    runtimes: dict[str, Any],
    input_size: tuple[int, int],
    sizes: list[int],
    rounds: int,
    min_s: float,
) -> dict[str, dict[int, list[float]]]:
    h, w = input_size
    rng = np.random.default_rng(0)
    batches = {n: rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8) for n in sizes}
    rates: dict[str, dict[int, list[float]]] = {name: {n: [] for n in sizes} for name in runtimes}
    parallel = max(r.parallelism for r in runtimes.values())
    order = list(runtimes)
    with ThreadPoolExecutor(parallel, thread_name_prefix="bench-int8") as pool:
        for _ in range(rounds):
            for n in sizes:
                for name in order:
                    rates[name][n].append(throughput(runtimes[name], batches[n], pool, min_s))
                order.reverse()
            sizes = sizes[::-1]
    return rates


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.int8", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model", default="MobileNetV2", help="catalogue name (default MobileNetV2)"
    )
    parser.add_argument("--max-batch", type=int, default=32, help="largest batch size timed")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--min-s", type=float, default=0.5, help="seconds per timed point")
    parser.add_argument("--calibration-images", type=Path, default=None)
    parser.add_argument("--preset", default="performance", help="NNCF preset: performance, mixed")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    import openvino

    from kerasserve.service.inference import catalogue
    from kerasserve.service.inference.openvino_runtime import OpenVINORuntime, kernel_summary
    from kerasserve.service.inference.precision import cpu_capabilities
    from kerasserve.service.inference.quantize import Gate
    from kerasserve.service.inference.runtime import KerasRuntime, buckets_for

    spec = catalogue.spec(args.model)
    model = spec.constructor(weights=None)
    buckets = buckets_for(args.max_batch)
    reference = KerasRuntime(model, spec.preprocess_input, spec.input_size, buckets)
    common = (model, spec.preprocess_mode, spec.input_size, buckets, reference)
    started = time.perf_counter()
    fp32 = OpenVINORuntime(*common, precision="fp32")
    opened = Gate(top1_min=0.0, top5_min=0.0)
    int8 = OpenVINORuntime(
        *common,
        precision="int8",
        calibration_dir=args.calibration_images,
        preset=args.preset,
        gate=opened,
    )
    runtimes = {"fp32": fp32, "int8": int8}
    if "BF16" in cpu_capabilities():
        runtimes["bf16"] = OpenVINORuntime(
            *common, precision="bf16", calibration_dir=args.calibration_images, gate=opened
        )
    load_s = time.perf_counter() - started
    for runtime in runtimes.values():
        runtime.warm()
    rates = measure(runtimes, spec.input_size, buckets, args.rounds, args.min_s)
    medians = {name: {n: statistics.median(v) for n, v in by.items()} for name, by in rates.items()}
    best = {name: max(by, key=by.__getitem__) for name, by in medians.items()}
    speedup = medians["int8"][best["int8"]] / medians["fp32"][best["fp32"]]
    ratios = {
        name: round(medians[name][best[name]] / medians["fp32"][best["fp32"]], 3)
        for name in runtimes
    }

    print(
        f"{args.model}, OpenVINO {openvino.__version__}, {os.cpu_count()} CPUs, "
        f"{fp32.streams} stream(s) x 2 requests, median of {args.rounds} rounds"
    )
    names = list(runtimes)
    print(f"{'batch':>5} " + " ".join(f"{name + ' img/s':>11}" for name in names))
    for n in buckets:
        print(f"{n:>5} " + " ".join(f"{medians[name][n]:>11.1f}" for name in names))
    for name in names:
        print(
            f"best {name}: {medians[name][best[name]]:.1f} img/s at {best[name]} "
            f"({ratios[name]:.2f}x fp32); kernels: {kernel_summary(runtimes[name].kernels)}"
        )
    result = {
        "model": args.model,
        "preset": args.preset,
        "openvino": openvino.__version__,
        "cpus": os.cpu_count(),
        "cpu": machine.cpu_model(),
        "streams": fp32.streams,
        "parallelism": fp32.parallelism,
        "rounds": args.rounds,
        "median_img_s": {
            k: {str(n): round(v, 1) for n, v in by.items()} for k, by in medians.items()
        },
        "best_batch": best,
        "speedup_at_best": round(speedup, 3),
        "ratio_to_fp32_at_best": ratios,
        "kernels": {name: runtime.kernels for name, runtime in runtimes.items()},
        "gate": {
            name: {
                "top1_agreement": runtime.top1_agreement,
                "top5_overlap": runtime.top5_overlap,
                "max_prob_diff": runtime.max_prob_diff,
                "images": runtime.gate_images,
                "calibration": runtime.calibration,
            }
            for name, runtime in runtimes.items()
            if name != "fp32"
        },
        "load_s": round(load_s, 1),
    }
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
