"""`python -m bench`: the command line of the benchmark."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import machine, report
from bench.run import Plan, log, run

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parents[1] / "README.md"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Raw model limit vs the seed's Flask server vs kerasserve (each runtime), one run.",
    )
    p.add_argument(
        "--runtimes",
        type=_names,
        default=["keras", "openvino"],
        help="kerasserve runtimes to measure; one the server refuses is reported unavailable (default keras,openvino)",
    )
    p.add_argument(
        "--concurrency",
        type=_ints,
        default=[1, 8, 32, 64],
        help="clients, small photos (default 1,8,32,64)",
    )
    p.add_argument(
        "--phone-concurrency",
        type=_ints,
        default=[1, 8, 32, 64],
        help="clients, phone photos (default 1,8,32,64)",
    )
    p.add_argument(
        "--variants",
        type=_names,
        default=["small", "phone"],
        help="upload sets (default small,phone)",
    )
    p.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of load before each measured window"
    )
    p.add_argument("--duration", type=float, default=8.0, help="measured seconds per point")
    p.add_argument("--no-seed", action="store_true", help="skip the seed Flask baseline")
    p.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the py-spy profile of each kerasserve runtime",
    )
    p.add_argument(
        "--once", action="store_true", help="raw limits only before the load, not after too"
    )
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra flag for every kerasserve server, e.g. --server-arg=--max-wait-ms=2",
    )
    p.add_argument(
        "--max-noise",
        type=float,
        default=0.3,
        metavar="CORES",
        help="measure a point again when other processes kept more than CORES busy (default 0.3)",
    )
    p.add_argument(
        "--retries", type=int, default=2, help="most extra tries of a noisy point (default 2)"
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the machine to be idle (other work skews every number)",
    )
    p.add_argument(
        "--out", type=Path, default=RESULTS, help="results folder (default bench/results)"
    )
    p.add_argument(
        "--no-readme", action="store_true", help="do not rewrite the README's bench section"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: keras only, small photos, 8 clients, 1+2 s per point, no profile, results in "
        "--out (default bench/results/tmp/quick), README untouched",
    )
    return p


def plan_from(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(
            runtimes=["keras"],
            concurrency=[8],
            phone_concurrency=[],
            variants=["small"],
            warmup_s=1.0,
            measure_s=2.0,
            raw_sizes=[1, 8],
            raw_seconds=0.3,
            raw_twice=False,
            seed=not args.no_seed,
            server_args=args.server_arg,
            profile=False,
            quick=True,
            retries=0,
            retry_budget_s=0,
        )
    return Plan(
        runtimes=args.runtimes,
        concurrency=args.concurrency,
        phone_concurrency=args.phone_concurrency,
        variants=args.variants,
        warmup_s=args.warmup,
        measure_s=args.duration,
        raw_twice=not args.once,
        seed=not args.no_seed,
        server_args=args.server_arg,
        profile=not args.no_profile,
        max_noise_cores=args.max_noise,
        retries=args.retries,
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    plan = plan_from(args)
    if args.wait_idle > 0:
        log(f"waiting up to {args.wait_idle:.0f} s for an idle machine")
        busy = machine.wait_idle(args.wait_idle)
        log(f"machine busy: {busy if busy is None else round(busy, 2)} cores besides us")
    out_dir: Path = args.out
    if args.quick and args.out == RESULTS:
        out_dir = RESULTS / "tmp" / "quick"
    result = run(plan, out_dir / "tmp" if out_dir == RESULTS else out_dir / "work", argv)
    result["checks"] = report.checks(result)
    paths = report.write(result, out_dir)
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    if not (args.quick or args.no_readme):
        image = (
            paths["png"].relative_to(README.parent)
            if paths["png"].is_relative_to(README.parent)
            else paths["png"]
        )
        if report.update_readme(README, report.markdown(result), str(image)):
            log(f"updated the bench section of {README}")
        else:
            log(
                f"{README} has no {report.README_START} ... {report.README_END} markers: left alone"
            )
    print(paths["md"].read_text())
    return 0
