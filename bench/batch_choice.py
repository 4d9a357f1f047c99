"""OpenVINO's batch choice: the start-up calibration against every fixed batch cap, 32 clients.

kerasserve learns the batch size from live traffic only on a runtime that runs one batch at
a time (Keras). OpenVINO runs a batch per stream, so its cap is chosen once, at start-up:
each bucket is timed idle and the smallest size within 90% of the best throughput caps the
batches (service/inference/loading.py, `best_batch`). Whether that choice is as good as the
best the live load could have had is what this measures: `kerasserve serve --runtime
openvino` (MobileNetV2, random weights) started (a) with its default calibration, then
(b) with `--no-calibrate-batch` at each fixed `--max-batch-size` in 1, 2, 4, 8, 16, each
start measured at 32 clients. The answer: img/s at each fixed cap, the cap calibration chose,
and its img/s as a share of the best fixed cap's. Part of `python -m bench` (target
`batch-choice`); alone:

    python -m bench.batch_choice [--sizes 1,2,4,8,16] [--clients 32] [--duration 7] [--out DIR]
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
    """The calibrated start, then one start per fixed cap in `plan.batch_sizes`."""
    from bench.run import _requests, log, quietest_point, start_ready

    photos = images.load(plan.variant)
    clients = plan.spread_clients
    section: dict[str, Any] = {"clients": clients, "runtime": RUNTIME, "fixed": []}
    runs: list[tuple[int | None, servers.Target]] = [(None, calibrated_target(plan.server_args))]
    runs += [(size, fixed_target(plan.server_args, size)) for size in plan.batch_sizes]
    for size, target in runs:
        server, entry = await start_ready(target, plan, work, photos)
        if server is None:
            figure = {
                "skipped": f"{entry['status']}: {entry['reason']}",
                "command": entry["command"],
            }
        else:
            try:
                point = await quietest_point(
                    server, _requests(server, photos), clients, plan, budget
                )
            finally:
                server.stop()
            figure = _figure(point, entry)
            log(
                f"{target.name}: {point['img_s']:.1f} img/s at {clients} clients, "
                f"batch cap {entry.get('max_batch_size')}, mean batch {point['mean_batch'] or 0:.1f}"
            )
        if size is None:
            section["calibrated"] = figure
        else:
            section["fixed"].append({"size": size, **figure})
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
