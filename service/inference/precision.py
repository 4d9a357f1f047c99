"""`--precision auto`: the fastest OpenVINO precision whose accuracy gate passes, chosen once.

    candidates (int8, bf16 where the CPU has it, fp32)
        ──build──▶ each checked: fp32 within tolerance of Keras, bf16/int8 past the gate
        ──time───▶ images per second as the server runs it (best bucket up to 8)
        ──pick───▶ the fastest that passed; written to the export's cache folder

The choice and every candidate's figures are cached beside the FP32 export
(`precision-*.json`), keyed by the calibration and gate photos, the gate's thresholds, the
streams, the buckets and the CPU: a second start builds only the chosen precision (its INT8
model and gate figures come from their own caches) and measures nothing again. When no
reduced precision passes (random weights never do), fp32 serves and a WARNING says why, on
every start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kerasserve.service.errors import ModelLoadError
from kerasserve.service.inference import quantize
from kerasserve.service.inference.catalogue import PreprocessMode
from kerasserve.service.inference.runtime import Runtime, calibrate

logger = logging.getLogger("kerasserve.precision")

# Fastest first where each is available: the order only breaks exact ties.
CANDIDATES = ("int8", "bf16", "fp32")
# Bumped when what is stored or how it is measured changes.
CHOICE_VERSION = 1


def cpu_capabilities() -> list[str]:
    """What OpenVINO's CPU plugin can run here, e.g. ['BF16', 'FP32', 'INT8', ...]."""
    import openvino as ov

    return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


def candidates(capabilities: list[str]) -> list[str]:
    """The precisions worth trying on a CPU with `capabilities` (bf16 only where it has it)."""
    return [p for p in CANDIDATES if p != "bf16" or "BF16" in capabilities]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def choice_path(
    model: Any,
    mode: PreprocessMode,
    input_size: tuple[int, int],
    *,
    calibration_dir: Path | None,
    gate: quantize.Gate,
    streams: int,
    buckets: list[int],
    capabilities: list[str],
) -> Path:
    """Where the choice for this model, photos, gate and machine is cached."""
    from kerasserve.service.inference.openvino_runtime import cache_key, cache_root

    photos = quantize.photo_set(calibration_dir)
    held_out = quantize.holdout_set(photos, calibration_dir)
    header = {
        "version": CHOICE_VERSION,
        "calibration": photos.digest,
        "holdout": held_out.digest,
        "views": quantize.VIEWS_VERSION,
        "gate": [gate.top1_min, gate.top5_min],
        "streams": streams,
        "buckets": buckets,
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "capabilities": sorted(capabilities),
    }
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root() / cache_key(model, input_size, mode) / f"precision-{digest}.json"


def choose(
    build: Callable[[str], Runtime],
    path: Path,
    input_size: tuple[int, int],
    capabilities: list[str],
    *,
    untrained: str | None = None,
) -> Runtime:
    """The fastest precision that passes its check, built by `build(precision)`; the choice is
    read from `path` when cached there, else measured and written there.

    `untrained`: why these weights cannot earn a reduced precision (random weights have no
    ranking for a gate to keep: it fails them every time, after a quantisation that costs most
    of a first start). Only fp32 is built; the others are listed as refused with that reason.

    Raises ModelLoadError only when no precision passes (the caller falls back to Keras).
    """
    cached = _read(path)
    if cached is not None:
        try:
            runtime = build(cached["chosen"])
        except ModelLoadError as exc:
            logger.warning(
                "precision auto: the cached choice %s no longer loads (%s); measuring again",
                cached["chosen"],
                exc,
            )
        else:
            _announce(runtime, cached["chosen"], cached["candidates"], cached=True)
            return runtime
    figures: dict[str, dict[str, Any]] = {}
    built: dict[str, Runtime] = {}
    rates: dict[str, float] = {}
    for precision in candidates(capabilities):
        if untrained is not None and precision != "fp32":
            figures[precision] = {"passed": False, "reason": untrained}
            continue
        try:
            runtime = build(precision)
        except ModelLoadError as exc:
            logger.warning("precision auto: %s rejected: %s", precision, exc)
            figures[precision] = {"passed": False, "reason": str(exc)}
            continue
        runtime.warm()
        small = [size for size in runtime.buckets if size <= 8]
        cpu: dict[int, float] = {}
        by_size = calibrate(runtime, input_size, sizes=small, cpu=cpu)
        rates[precision] = max(by_size.values())
        runtime.measured = by_size
        runtime.measured_cpu = cpu
        built[precision] = runtime
        figures[precision] = {"passed": True, "img_s": round(rates[precision], 1), **_gate(runtime)}
    if not built:
        reasons = "; ".join(f"{p}: {f['reason']}" for p, f in figures.items())
        raise ModelLoadError(f"no OpenVINO precision passed its check ({reasons})")
    chosen = max(built, key=lambda p: rates[p])
    for precision, f in figures.items():
        if precision in built and precision != chosen:
            f["slower"] = True
            # The slower candidates' compiled models go now, on this thread (see
            # OpenVINORuntime.release), not at a garbage collection on a serving thread.
            built[precision].release()
    _write(path, {"chosen": chosen, "candidates": figures})
    _announce(built[chosen], chosen, figures, cached=False)
    return built[chosen]


def _gate(runtime: Runtime) -> dict[str, Any]:
    names = ("top1_agreement", "top5_overlap", "max_prob_diff", "gate_images")
    values = {name: getattr(runtime, name, None) for name in names}
    return {name: value for name, value in values.items() if value is not None}


def _announce(
    runtime: Runtime, chosen: str, figures: dict[str, dict[str, Any]], *, cached: bool
) -> None:
    """Log the choice (a WARNING when a reduced precision was refused and fp32 serves) and
    keep it on the runtime for the model description."""
    rejected = {p: f["reason"] for p, f in figures.items() if not f.get("passed")}
    rates = ", ".join(f"{p} {f['img_s']:.0f} img/s" for p, f in figures.items() if f.get("passed"))
    source = "cached choice" if cached else "measured at start-up"
    summary = f"precision auto: {chosen} serves ({source}: {rates or 'no timing'})"
    if rejected:
        summary += "; rejected: " + "; ".join(f"{p}: {r}" for p, r in rejected.items())
    if chosen == "fp32" and rejected:
        logger.warning(
            "precision auto: serving FP32, no reduced precision passed its check (%s)",
            "; ".join(f"{p}: {r}" for p, r in rejected.items()),
        )
    else:
        logger.info("%s", summary)
    runtime.detail = f"{runtime.detail}; {summary}" if runtime.detail else summary
    runtime.precision_selection = {  # type: ignore[attr-defined]
        "chosen": chosen,
        "cached": cached,
        "candidates": figures,
    }


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("chosen") not in CANDIDATES:
        return None
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)
