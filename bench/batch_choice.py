"""OpenVINO's batch choice: the start-up calibration against every fixed batch cap, 32 clients.

kerasserve learns the batch size from live traffic only on a runtime that runs one batch at
a time (Keras). OpenVINO runs a batch per stream, so its cap is chosen once, at start-up:
each bucket is timed idle and the smallest size within 95% of the best images per
CPU-second caps the batches (service/inference/loading.py, `best_batch`; runtime.py,
`calibrate`). Whether that choice is as good as the best the live load could have had is
what this measures: `kerasserve serve --runtime openvino` (MobileNetV2, random weights)
started (a) with its default calibration, then (b) with `--no-calibrate-batch` at each fixed
`--max-batch-size` in 1, 2, 4, 8, 16; every start is kept up and measured at 32 clients in
`plan.spread_rounds` interleaved rounds (the order rotating), and a start's figure is the
median of its rounds. The answer: img/s at each fixed cap, the cap calibration chose, and its
img/s as a share of the best fixed cap's. Part of `python -m bench` (target `batch-choice`);
alone:

    python -m bench.batch_choice [--sizes 1,2,4,8,16] [--clients 32] [--rounds 3] [--duration 7]
        [--out DIR]
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import images, servers

NAME = "batch-choice"
RUNTIME = "openvino"


def calibrated_target(extra: list[str]) -> servers.Target:
    target = servers.kerasserve_target(RUNTIME, extra)
    return replace(target, name=f"{NAME}-calibrated")


def fixed_target(extra: list[str], size: int) -> servers.Target:
    """Calibration off, batches capped at `size` (after `extra`: these flags win)."""
    target = servers.kerasserve_target(RUNTIME, extra)
    argv = [*target.argv, "--no-calibrate-batch", "--max-batch-size", str(size)]
    label = f"{target.label} --no-calibrate-batch --max-batch-size {size}"
    return replace(target, name=f"{NAME}-{size}", label=label, argv=argv)


def _figure(point: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    keep = ("img_s", "p50_ms", "p99_ms", "errors", "mean_batch", "other_cpu_cores", "tries")
    return {
        **{k: point.get(k) for k in keep},
        "runtime": entry.get("runtime"),
        "ready_s": entry.get("ready_s"),
        "max_batch_size": entry.get("max_batch_size"),
        "configured_max_batch_size": entry.get("configured_max_batch_size"),
        "throughput_by_batch": entry.get("throughput_by_batch"),
        "command": entry.get("command"),
    }


async def measure(plan: Any, work: Path, budget: dict[str, float]) -> dict[str, Any]:
    """The calibrated start and one start per fixed cap in `plan.batch_sizes`, all kept up,
    then measured in `plan.spread_rounds` interleaved rounds; each figure is the median of its
    rounds (one after another, minutes apart, the host's drift showed as a better or worse cap)."""
    from bench.run import _median_point, in_rounds, start_ready

    photos = images.load(plan.variant)
    clients = plan.spread_clients
    rounds = max(1, int(plan.spread_rounds))
    section: dict[str, Any] = {
        "clients": clients,
        "runtime": RUNTIME,
        "rounds": rounds,
        "fixed": [],
    }
    runs: list[tuple[int | None, servers.Target]] = [(None, calibrated_target(plan.server_args))]
    runs += [(size, fixed_target(plan.server_args, size)) for size in plan.batch_sizes]
    figures: dict[int | None, dict[str, Any]] = {}
    up: list[tuple[int | None, servers.Running, dict[str, Any]]] = []
    try:
        for size, target in runs:
            server, entry = await start_ready(target, plan, work, photos)
            if server is None:
                figures[size] = {
                    "skipped": f"{entry['status']}: {entry['reason']}",
                    "command": entry["command"],
                }
            else:
                up.append((size, server, entry))
        keyed = [(size, server) for size, server, _ in up]
        points = await in_rounds(keyed, photos, rounds, plan, budget)
    finally:
        for _, server, _ in up:
            server.stop()
    for size, _, entry in up:
        figures[size] = {
            **_figure(_median_point(points[size]), entry),
            "rounds_img_s": [p["img_s"] for p in points[size]],
        }
    for size, _ in runs:
        if size is None:
            section["calibrated"] = figures[size]
        else:
            section["fixed"].append({"size": size, **figures[size]})
    return section


def _sizes(text: str) -> list[int]:
    from bench.raw import sizes_arg

    return sizes_arg(text)


def main(argv: list[str] | None = None) -> int:
    from bench import report, standalone
    from bench.run import Plan

    p = standalone.parser(
        "python -m bench.batch_choice", __doc__, Path("bench/results/tmp/batch_choice")
    )
    p.add_argument("--sizes", type=_sizes, default=[1, 2, 4, 8, 16], help="fixed batch caps")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    plan = Plan(
        targets=[NAME],
        spread_rounds=args.rounds,
        warmup_s=args.warmup,
        measure_s=args.duration,
        spread_clients=args.clients,
        batch_sizes=args.sizes,
        server_args=args.server_arg,
    )
    section = standalone.run_section(measure, plan, args.out, "batch_choice")
    print("\n".join(report.batch_choice_lines({"batch_choice": section})))
    return 0 if "img_s" in section.get("calibrated", {}) else 1


if __name__ == "__main__":
    raise SystemExit(main())
