"""`python -m bench`: the command line of the benchmark."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import analysis, machine, report, servers
from bench.run import ALL_TARGETS, EXTRA_TARGETS, RAW_TARGETS, RESNET50_RAW, Plan, log, run

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
DOCS = ROOT / "docs" / "benchmark.md"
QUICK_TARGETS = ["raw-keras", "ceiling", "keras"]


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,8,32, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1 like 1,8,32, got {text!r}")
    return values


def _targets(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in ALL_TARGETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown target(s) {unknown or text!r}; pick from {','.join(ALL_TARGETS)}"
        )
    return names


def targets_epilog() -> str:
    """Every target name, grouped, in the order a run measures them."""
    groups = {
        "raw limits, MobileNetV2": [n for n in RAW_TARGETS if n not in RESNET50_RAW],
        "raw limits, ResNet50": list(RESNET50_RAW),
        "other servers": [*servers.OTHER_SERVERS, *servers.NEARFREE_WORKERS],
        "kerasserve, MobileNetV2": [*servers.KERASSERVE_RUNTIMES, *servers.KERASSERVE_WORKERS],
        "kerasserve, ResNet50": list(servers.RESNET50_TARGETS),
        "measurements": list(EXTRA_TARGETS),
    }
    width = max(map(len, groups)) + 2
    lines = ["targets (--targets; the default is every one, measured in this order):"]
    lines += [f"  {name:<{width}}{', '.join(names)}" for name, names in groups.items()]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The raw limits, the front-end ceiling, plain FastAPI, the classic Flask\n"
        "app, the near-free model in 1 and 2 workers, and kerasserve on each runtime for\n"
        "MobileNetV2 (and its default in 2 workers) and ResNet50: one run, the same load on each; then 8 photos per\n"
        "request against 1 (multi-photo) and OpenVINO's start-up batch choice against\n"
        "fixed caps (batch-choice).",
        epilog=targets_epilog(),
    )
    p.add_argument(
        "--targets",
        type=_targets,
        default=None,
        help="a subset, comma-separated (default: every target, listed below)",
    )
    p.add_argument(
        "--clients", type=_ints, default=[1, 8, 32], help="concurrent clients (default 1,8,32)"
    )
    p.add_argument(
        "--resnet50-clients",
        type=_ints,
        default=[1, 32],
        help="concurrent clients for the resnet50-* targets (default 1,32)",
    )
    p.add_argument(
        "--batch-sizes",
        type=_ints,
        default=[1, 2, 4, 8, 16],
        help="batch-choice: the fixed --max-batch-size values (default 1,2,4,8,16)",
    )
    p.add_argument(
        "--photos-per-request",
        type=int,
        default=8,
        help="multi-photo: photos per request, set against 1 (default 8)",
    )
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each window")
    p.add_argument("--duration", type=float, default=7.0, help="measured seconds per point")
    p.add_argument(
        "--starts",
        type=int,
        default=None,
        help="fresh starts of the default target at 32 clients, for the spread (default 5; "
        "--quick: 1)",
    )
    p.add_argument(
        "--spread-rounds",
        type=int,
        default=None,
        help="rounds in which every fresh start is measured, interleaved (default 3; "
        "--quick: 1); a start's figure is the median of its rounds",
    )
    p.add_argument(
        "--side-by-side-passes",
        type=int,
        default=None,
        help="interleaved passes of the ceiling, the near-free model at 1 and 2 workers and "
        "MobileNetV2's default at 1 and 2 workers, at 1 and 32 clients, whose medians the front-end and worker checks compare "
        "(default 3; --quick: 1; 0: none)",
    )
    p.add_argument(
        "--keras-vs-raw-passes",
        type=int,
        default=None,
        help="passes of the raw Keras limit and `--runtime keras` in turn, whose medians the "
        "check between them compares (default 3; --quick: 1; 0: none)",
    )
    p.add_argument(
        "--raw-passes",
        type=int,
        choices=[1, 2],
        default=2,
        help="raw limits before the servers only (1) or before and after (2, the default)",
    )
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra flag for every kerasserve server, e.g. --server-arg=--max-wait-ms=2",
    )
    p.add_argument(
        "--profile", action="store_true", help="also profile each kerasserve target with py-spy"
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
        "--no-docs",
        action="store_true",
        help="do not rewrite docs/benchmark.md's tables and the README's bench section",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {','.join(QUICK_TARGETS)} (or --targets), 8 clients, 0.5+1.5 s per "
        "point, one start, batches up to 8; results in --out (default bench/results/tmp/quick), "
        "docs untouched",
    )
    return p


def plan_from(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(
            targets=args.targets or QUICK_TARGETS,
            clients=[8],
            warmup_s=0.5,
            measure_s=1.5,
            starts=args.starts or 1,
            spread_clients=8,
            spread_rounds=args.spread_rounds or 1,
            side_by_side_passes=(
                1 if args.side_by_side_passes is None else args.side_by_side_passes
            ),
            side_by_side_clients=[8],
            keras_vs_raw_passes=(
                1 if args.keras_vs_raw_passes is None else args.keras_vs_raw_passes
            ),
            raw_sizes=[1, 8],
            raw_seconds=0.3,
            raw_passes=1,
            resnet50_clients=[8],
            resnet50_raw_sizes=[1, 8],
            photos_per_request=args.photos_per_request,
            batch_sizes=[1, 8],
            server_args=["--max-batch-size", "8", *args.server_arg],
            profile=False,
            quick=True,
            retries=0,
            retry_budget_s=0,
        )
    return Plan(
        targets=args.targets or list(ALL_TARGETS),
        clients=args.clients,
        resnet50_clients=args.resnet50_clients,
        photos_per_request=args.photos_per_request,
        batch_sizes=args.batch_sizes,
        warmup_s=args.warmup,
        measure_s=args.duration,
        starts=5 if args.starts is None else args.starts,
        spread_clients=analysis.HEADLINE_CLIENTS,
        spread_rounds=3 if args.spread_rounds is None else args.spread_rounds,
        side_by_side_passes=3 if args.side_by_side_passes is None else args.side_by_side_passes,
        side_by_side_clients=sorted({1, analysis.HEADLINE_CLIENTS}),
        keras_vs_raw_passes=3 if args.keras_vs_raw_passes is None else args.keras_vs_raw_passes,
        raw_passes=args.raw_passes,
        server_args=args.server_arg,
        profile=args.profile,
        max_noise_cores=args.max_noise,
        retries=args.retries,
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    try:
        plan = plan_from(args)
    except ValueError as exc:
        parser().error(str(exc))
    if args.wait_idle > 0:
        log(f"waiting up to {args.wait_idle:.0f} s for an idle machine")
        busy = machine.wait_idle(args.wait_idle)
        log(f"machine busy: {busy if busy is None else round(busy, 2)} cores besides us")
    out_dir: Path = args.out
    if args.quick and args.out == RESULTS:
        out_dir = RESULTS / "tmp" / "quick"
    work = out_dir / "tmp" if out_dir == RESULTS else out_dir / "work"
    result = run(plan, work, argv)
    result["checks"] = analysis.checks(result)
    paths = report.write(result, out_dir)
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    if not (args.quick or args.no_docs):
        image = (
            paths["png"].relative_to(ROOT) if paths["png"].is_relative_to(ROOT) else paths["png"]
        )
        readme = report.short_markdown(result) + f"\n![benchmark]({image})\n"
        for path, body in ((DOCS, report.markdown(result)), (README, readme)):
            if report.replace_section(path, body):
                log(f"updated the bench section of {path}")
            else:
                log(f"{path} has no {report.START} ... {report.END} markers: left alone")
    print(paths["md"].read_text())
    return 0
