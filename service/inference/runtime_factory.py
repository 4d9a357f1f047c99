"""Which runtime serves a model: Keras, OpenVINO (FP32 or INT8), or the fastest that passed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kerasserve.service.errors import ModelLoadError
from kerasserve.service.inference.catalogue import PreprocessMode
from kerasserve.service.inference.heads import Head
from kerasserve.service.inference.runtime import KerasRuntime, ReferenceRuntime, Runtime, calibrate

logger = logging.getLogger("kerasserve.runtime")

RUNTIMES = ("auto", "keras", "openvino")
PRECISIONS = ("auto", "fp32", "bf16", "int8")


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
    precision: str = "fp32",
    calibration_dir: Path | None = None,
    gate: tuple[float, float] = (0.99, 0.95),
    head: Head | None = None,
    untrained: str | None = None,
) -> Runtime:
    """Build the runtime `name`.

    `auto` builds every candidate that passes its check (Keras always; OpenVINO when installed
    and within tolerance; its INT8 model when asked for and past the accuracy gate), times each
    as the server runs it, and serves the fastest. A candidate that fails is logged loudly and
    named in the served runtime's detail. An explicit runtime that fails refuses to load.
    `head`: the transform serving applies to raw outputs (default: read from the model); every
    runtime's check goes through it. The runtime auto picks comes back warmed, with the
    timings that picked it in `measured` (loading calibrates from them, not again).
    `untrained`: why the weights cannot earn a reduced precision (random weights): `auto`
    precision then tries fp32 only and names the reason for the others.
    """
    if name not in RUNTIMES:
        raise ModelLoadError(f"unknown runtime {name!r}; expected one of {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise ModelLoadError(
            f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}"
        )
    if precision in ("int8", "bf16") and name == "keras":
        raise ModelLoadError(
            f"--precision {precision} needs the OpenVINO runtime (--runtime openvino or auto)"
        )
    keras_runtime = _keras_runtime(model, preprocess, input_size, buckets, head)
    if name == "keras":
        return keras_runtime
    try:
        from kerasserve.service.inference.openvino_runtime import OpenVINORuntime
    except ImportError as exc:
        if name == "openvino":
            raise ModelLoadError(
                f"--runtime openvino needs the openvino package: pip install 'kerasserve[server]' ({exc})"
            ) from exc
        logger.warning("runtime auto: OpenVINO is not installed (%s); FALLING BACK to keras", exc)
        _note(keras_runtime, f"OpenVINO not installed: {exc}")
        return keras_runtime

    def openvino(prec: str) -> Runtime:
        extra: dict[str, Any] = {}
        if prec != "fp32":
            from kerasserve.service.inference.quantize import Gate

            extra = {
                "precision": prec,
                "calibration_dir": calibration_dir,
                "gate": Gate(top1_min=gate[0], top5_min=gate[1]),
            }
        runtime: Runtime = OpenVINORuntime(
            model,
            mode,
            input_size,
            buckets,
            keras_runtime,
            tolerance=tolerance,
            streams=streams,
            **extra,
        )
        return runtime

    def earned() -> Runtime:
        """`--precision auto`: service/inference/precision.py picks (and caches) it."""
        from kerasserve.service.inference import precision as chooser
        from kerasserve.service.inference.quantize import Gate

        capabilities = chooser.cpu_capabilities()
        path = chooser.choice_path(
            model,
            mode,
            input_size,
            calibration_dir=calibration_dir,
            gate=Gate(top1_min=gate[0], top5_min=gate[1]),
            streams=streams,
            buckets=buckets,
            capabilities=capabilities,
        )
        return chooser.choose(openvino, path, input_size, capabilities, untrained=untrained)

    if name == "openvino":
        return earned() if precision == "auto" else openvino(precision)
    candidates: list[Runtime] = [keras_runtime]
    rejected: list[str] = []
    tries = ("auto",) if precision == "auto" else tuple(dict.fromkeys(("fp32", precision)))
    for prec in tries:
        try:
            candidates.append(earned() if prec == "auto" else openvino(prec))
        except ModelLoadError as exc:
            logger.warning("runtime auto: OpenVINO %s rejected (%s); FALLING BACK", prec, exc)
            rejected.append(f"OpenVINO {prec} rejected: {exc}")
    chosen = _fastest(candidates, input_size)
    for reason in rejected:
        _note(chosen, reason)
    return chosen


def _keras_runtime(
    model: Any, preprocess: Any, input_size: tuple[int, int], buckets: list[int], head: Head | None
) -> ReferenceRuntime:
    """Keras on its backend: a `tf.function` on TensorFlow, a `jax.jit` on JAX (e.g. a GPU
    machine without TensorFlow, `KERAS_BACKEND=jax`)."""
    import keras

    if keras.backend.backend() == "jax":
        from kerasserve.service.inference.jax_runtime import JaxRuntime

        jax_runtime: ReferenceRuntime = JaxRuntime(model, preprocess, input_size, buckets, head)
        return jax_runtime
    return KerasRuntime(model, preprocess, input_size, buckets, head)


def _note(runtime: Runtime, text: str) -> None:
    runtime.detail = f"{runtime.detail}; {text}" if runtime.detail else text


def label(runtime: Runtime) -> str:
    precision = runtime.info().precision
    return f"{runtime.name} {precision}" if precision != "fp32" else runtime.name


def _fastest(candidates: list[Runtime], input_size: tuple[int, int]) -> Runtime:
    """`--runtime auto`: of the runtimes that passed their checks, the one that serves the most
    images per second here (each at its best bucket up to 8, timed as the server runs it)."""
    if len(candidates) == 1:
        return candidates[0]
    rates: dict[str, float] = {}
    by_size: dict[str, dict[int, float]] = {}
    cpus: dict[str, dict[int, float] | None] = {}
    for runtime in candidates:
        # No warm-up of every bucket first: calibration keeps each size's fastest run, so its
        # first pass (the one that compiles) never counts, and only the winner needs the
        # large buckets warmed (for Keras on 2 cores, 16 and 32 cost seconds at start-up).
        # A runtime `--precision auto` just measured (an OpenVINO precision chosen now, not
        # read from the cache) keeps those figures: the same sizes, the same passes.
        small = [size for size in runtime.buckets if size <= 8]
        if runtime.measured:
            by_size[label(runtime)] = runtime.measured
            cpus[label(runtime)] = getattr(runtime, "measured_cpu", None)
        else:
            cpu: dict[int, float] = {}
            by_size[label(runtime)] = calibrate(runtime, input_size, sizes=small, cpu=cpu)
            cpus[label(runtime)] = cpu
        rates[label(runtime)] = max(by_size[label(runtime)].values())
    chosen = max(candidates, key=lambda r: rates[label(r)])
    chosen.warm()
    best = rates[label(chosen)]
    others = ", ".join(
        f"{name} {rate:.0f} img/s ({best / rate:.2f}x)"
        for name, rate in rates.items()
        if name != label(chosen)
    )
    measured = f"runtime auto: {label(chosen)} {best:.0f} img/s vs {others} at start-up"
    logger.info("%s; serving %s", measured, label(chosen))
    _note(chosen, measured)
    chosen.selection = {name: round(rate, 1) for name, rate in rates.items()}
    chosen.measured = by_size[label(chosen)]
    chosen.measured_cpu = cpus[label(chosen)]
    return chosen
