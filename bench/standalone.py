"""What `python -m bench.multi_photo` and `python -m bench.batch_choice` share: their common
flags, and one section of the benchmark run on its own into a folder of its own."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.loadgen import new_loop

Measure = Callable[[Any, Path, dict[str, float]], Awaitable[dict[str, Any]]]


def parser(prog: str, doc: str | None, out: Path) -> argparse.ArgumentParser:
    """The flags every standalone section takes; a section adds its own."""
    p = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each window")
    p.add_argument("--duration", type=float, default=7.0, help="measured seconds per point")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds; each figure is the median of its rounds (default 3)",
    )
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG")
    p.add_argument("--out", type=Path, default=out)
    return p


def run_section(measure: Measure, plan: Any, out: Path, name: str) -> dict[str, Any]:
    """Measure the section on a fresh event loop, write `out/<name>.json`, return it."""
    budget = {"retry_s": plan.retry_budget_s}
    runner = asyncio.Runner(loop_factory=new_loop)
    try:
        section = runner.run(measure(plan, out, budget))
    finally:
        runner.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(section, indent=2, default=str) + "\n")
    return section
