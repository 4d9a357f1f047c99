"""One benchmark run: the raw limits, then each server on its own, then fresh starts of the default.

Order: the raw limits first (each in a process of its own, nothing else running), then each
server target started alone, warmed, measured at every client count, and stopped (one
TensorFlow server at a time: seven side by side would not fit a small machine's memory, and
an idle neighbour is not free), then fresh starts of kerasserve's default target for the
spread (started one after another, then measured at 32 clients in interleaved rounds), then
the ceiling, the near-free model and MobileNetV2's default at 1 and 2 workers again, side by
side in interleaved passes (the front-end and worker checks compare their medians), then
`--runtime keras` and the raw Keras limit in turn (`run_keras_vs_raw`), then the two extra
measurements (`multi-photo`: 8 photos per request against 1, bench/multi_photo.py;
`batch-choice`: OpenVINO's start-up batch calibration against each fixed batch size,
bench/batch_choice.py), then, with `raw_passes=2`, the MobileNetV2 raw limits again (the
best pass is the limit). ResNet50's targets run at fewer client counts and its raw limits at
fewer batch sizes, once (`Plan.resnet50_*`), to keep the run short. The driver never
imports TensorFlow: it is also the load generator.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bench import images, machine, profile, servers
from bench.loadgen import closed_loop, multipart_request, new_loop, percentile
from bench.servers import HOST, Running, Target

# The raw limits as target names, and the module (plus flags) that measures each.
RAW_TARGETS: dict[str, list[str]] = {
    "raw-keras": ["bench.raw"],
    "raw-openvino": ["bench.raw_openvino", "--precision", "fp32"],
    "raw-int8": ["bench.raw_openvino", "--precision", "int8"],
    "raw-resnet50-keras": ["bench.raw", "--model", servers.RESNET50],
    "raw-resnet50-openvino": [
        "bench.raw_openvino",
        "--precision",
        "fp32",
        "--model",
        servers.RESNET50,
    ],
    "raw-resnet50-int8": ["bench.raw_openvino", "--precision", "int8", "--model", servers.RESNET50],
}
RESNET50_RAW = tuple(name for name in RAW_TARGETS if name.startswith("raw-resnet50-"))
# The targets the front-end and worker checks compare with each other (the near-free model
# against the ceiling; 1 worker against 2, for MobileNetV2 and the near-free model): after
# the servers, measured again side by side in interleaved passes (`run_side_by_side`), so
# that their ratios do not hold the host's drift over the minutes between their own points.
T = TypeVar("T")
K = TypeVar("K")
SIDE_BY_SIDE = ("ceiling", "nearfree", "nearfree-2w", "default", servers.DEFAULT_2W)
# Measurements of their own, after the servers (each starts the servers it needs).
MULTI_PHOTO = "multi-photo"
BATCH_CHOICE = "batch-choice"
EXTRA_TARGETS = (MULTI_PHOTO, BATCH_CHOICE)
ALL_TARGETS = (*RAW_TARGETS, *servers.SERVER_TARGETS, *EXTRA_TARGETS)
SPREAD_TARGET = "default"


@dataclass
class Plan:
    targets: list[str] = field(default_factory=lambda: list(ALL_TARGETS))
    clients: list[int] = field(default_factory=lambda: [1, 8, 32])
    variant: str = "small"
    warmup_s: float = 2.0
    measure_s: float = 7.0
    # Fresh starts of the default target, each measured at `spread_clients` in
    # `spread_rounds` interleaved rounds (see `run_spread`): the spread of the headline
    # figure. With 1, the default target's own point at `spread_clients` is the spread.
    starts: int = 5
    spread_clients: int = 32
    spread_rounds: int = 3
    # Passes in which SIDE_BY_SIDE's targets are measured at `side_by_side_clients`, each
    # pass every target at every client count (0: not at all).
    side_by_side_passes: int = 3
    side_by_side_clients: list[int] = field(default_factory=lambda: [1, 32])
    # Passes in which `--runtime keras` (kept up) and the raw Keras limit (a process of its
    # own) are measured in turn, for the check that compares them (0: not at all).
    keras_vs_raw_passes: int = 3
    raw_sizes: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    raw_seconds: float = 1.5
    raw_passes: int = 2
    # ResNet50 costs ~13x MobileNetV2 per image: its server targets run at these client
    # counts, its raw limits at these batch sizes, in one pass.
    resnet50_clients: list[int] = field(default_factory=lambda: [1, 32])
    resnet50_raw_sizes: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    # multi-photo: photos per request against one, at `spread_clients`.
    photos_per_request: int = 8
    # batch-choice: the fixed `--max-batch-size` values set against the calibrated choice.
    batch_sizes: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    server_args: list[str] = field(default_factory=list)
    profile: bool = False
    quick: bool = False
    ready_timeout_s: float = 300.0
    # A measurement during which other processes kept more than `max_noise_cores` busy is
    # taken again (up to `retries` more times, within `retry_budget_s` for the whole run);
    # the quietest one is kept, whichever target it favours.
    max_noise_cores: float = 0.3
    retries: int = 2
    retry_budget_s: float = 180.0

    def __post_init__(self) -> None:
        unknown = [t for t in self.targets if t not in ALL_TARGETS]
        if unknown:
            raise ValueError(f"unknown targets {unknown}; known: {', '.join(ALL_TARGETS)}")
        for counts in (self.clients, self.resnet50_clients, self.batch_sizes):
            if not counts or min(counts) < 1:
                raise ValueError(f"client counts and sizes must be integers >= 1, got {counts}")
        if self.photos_per_request < 1:
            raise ValueError(f"photos per request must be >= 1, got {self.photos_per_request}")
        if self.starts < 1:
            raise ValueError(f"starts must be >= 1, got {self.starts}")
        if self.side_by_side_passes < 0:
            raise ValueError(f"side-by-side passes must be >= 0, got {self.side_by_side_passes}")
        if self.keras_vs_raw_passes < 0:
            raise ValueError(f"keras-vs-raw passes must be >= 0, got {self.keras_vs_raw_passes}")
        if self.spread_rounds < 1:
            raise ValueError(f"spread rounds must be >= 1, got {self.spread_rounds}")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- raw limits ------------------------------------------------------------------------------
def run_raw(name: str, plan: Plan, work: Path, tag: str) -> dict[str, Any]:
    out = work / f"{name}-{tag}.json"
    args = [*RAW_TARGETS[name], "--out", str(out)]
    sizes = plan.resnet50_raw_sizes if name in RESNET50_RAW else plan.raw_sizes
    args += ["--sizes", ",".join(map(str, sizes)), "--seconds", str(plan.raw_seconds)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    with (work / f"{name}-{tag}.log").open("wb") as logf:
        proc = subprocess.run(
            [sys.executable, "-m", *args],
            cwd=servers.ROOT,
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            timeout=900,
            check=False,
        )
    if not out.exists():
        return {"unavailable": f"python -m {args[0]} exited with {proc.returncode}"}
    result: dict[str, Any] = json.loads(out.read_text())
    result["wall_s"] = time.perf_counter() - start
    result["command"] = "python -m " + " ".join(args).replace(str(out), "OUT.json")
    return result


def _raw_noise(result: dict[str, Any]) -> float:
    values = [r.get("other_cpu_cores") or 0.0 for r in result.get("by_batch", [])]
    return sum(values) / len(values) if values else 0.0


def raw_quietest(
    name: str, plan: Plan, work: Path, tag: str, budget: dict[str, float]
) -> dict[str, Any]:
    """A raw run; once more if other processes were busy during it (the quieter one is kept)."""
    first = run_raw(name, plan, work, tag)
    if (
        "by_batch" not in first
        or _raw_noise(first) <= plan.max_noise_cores
        or budget["retry_s"] <= 0
    ):
        return first
    log(f"{name}: other processes used {_raw_noise(first):.2f} cores; measuring again")
    began = time.perf_counter()
    second = run_raw(name, plan, work, tag + "-again")
    budget["retry_s"] -= time.perf_counter() - began
    if "by_batch" not in second:
        return first
    return min((first, second), key=_raw_noise)


def raw_line(r: dict[str, Any]) -> str:
    if "by_batch" not in r:
        return r.get("skipped") or f"unavailable ({r.get('unavailable', '?')})"
    return (
        f"best {r['best_img_s']:.1f} img/s at batch {r['best_batch']}, "
        f"batch-1 {r['batch1_latency_ms']:.1f} ms"
    )


# -- servers under load ----------------------------------------------------------------------
def _point(
    server: Running, result: Any, warm_start: dict[str, Any], end: dict[str, Any], variant: str
) -> dict[str, Any]:
    ok = result.ok
    lat = [(s.end - s.start) * 1e3 for s in ok]
    window = result.window_s
    mean_batch = None
    if warm_start.get("batches") and end.get("batches"):
        images_n = end["batches"][0] - warm_start["batches"][0]
        batches_n = end["batches"][1] - warm_start["batches"][1]
        mean_batch = images_n / batches_n if batches_n else None
    elif server.target.kind in ("classic-flask", "fastapi-plain", "fastapi-eager"):
        mean_batch = 1.0
    errors: dict[str, int] = {}
    for s in result.samples:
        if not s.ok:
            errors[s.error or "?"] = errors.get(s.error or "?", 0) + 1
    return {
        "variant": variant,
        "target": server.target.name,
        "model": server.target.model,
        "runtime": server.target.runtime,
        "concurrency": result.concurrency,
        "img_s": len(ok) / window,
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
        "requests": len(result.samples),
        "errors": result.errors,
        "error_kinds": errors,
        "mean_batch": mean_batch,
        "server_cpu_cores": (end["cpu_s"] - warm_start["cpu_s"]) / window,
        "server_peak_rss_mb": end["peak_rss_mb"],
        "generator_cpu_cores": result.generator_cpu_s / window,
        "other_cpu_cores": machine.other_cores(
            warm_start["busy_s"],
            end["busy_s"],
            end["cpu_s"] - warm_start["cpu_s"] + result.generator_cpu_s,
            window,
        ),
        "window_s": window,
        "drained": result.drained,
    }


async def measure_point(
    server: Running, requests: list[bytes], concurrency: int, plan: Plan
) -> dict[str, Any]:
    async def snapshot() -> dict[str, Any]:
        return {
            "busy_s": machine.busy_s(),
            "cpu_s": server.cpu_s(),
            "peak_rss_mb": server.peak_rss_mb(),
            "batches": await servers.batch_counters(server),
        }

    result = await closed_loop(
        HOST,
        server.port,
        requests,
        concurrency,
        plan.warmup_s,
        plan.measure_s,
        on_window_start=snapshot,
        on_window_end=snapshot,
    )
    return _point(server, result, result.hooks["start"], result.hooks["end"], plan.variant)


def _noise(point: dict[str, Any]) -> float:
    other = point.get("other_cpu_cores")
    return 0.0 if other is None else float(other)


async def quietest_point(
    server: Running,
    requests: list[bytes],
    concurrency: int,
    plan: Plan,
    budget: dict[str, float],
) -> dict[str, Any]:
    """One point, measured again while other processes were busy (the quietest try is kept)."""
    tries = [await measure_point(server, requests, concurrency, plan)]
    while _noise(tries[-1]) > plan.max_noise_cores and len(tries) <= plan.retries:
        if budget["retry_s"] <= 0:
            break
        log(
            f"c={concurrency} {server.target.name}: other processes used "
            f"{_noise(tries[-1]):.2f} cores; measuring again"
        )
        began = time.perf_counter()
        tries.append(await measure_point(server, requests, concurrency, plan))
        budget["retry_s"] -= time.perf_counter() - began
    point = min(tries, key=_noise)
    point["tries"] = len(tries)
    point["other_cpu_cores_tries"] = [t["other_cpu_cores"] for t in tries]
    return point


def _requests(server: Running, photos: list[images.Photo]) -> list[bytes]:
    path = server.target.predict_path
    return [multipart_request(HOST, server.port, path, p.filename, p.data) for p in photos]


async def start_ready(
    target: Target, plan: Plan, work: Path, photos: list[images.Photo], tag: str = ""
) -> tuple[Running | None, dict[str, Any]]:
    """Start `target` and wait until it answers; (None, entry with the reason) if it cannot."""
    log(f"starting {target.name}{tag}: {target.shown()}")
    server = servers.start(target, work / "logs", suffix=tag)
    entry: dict[str, Any] = {
        "command": target.shown(),
        "kind": target.kind,
        "label": target.label,
        "model": target.model,
        "workers": target.workers,
    }
    try:
        await servers.wait_ready(server, _requests(server, photos)[0], plan.ready_timeout_s)
    except (RuntimeError, TimeoutError) as exc:
        # A server that exits refused its flags or its model ("skipped", with its own error
        # line); one that never answers in time is "unavailable".
        entry["status"] = "unavailable" if isinstance(exc, TimeoutError) else "skipped"
        entry["reason"] = " / ".join(str(exc).split("\n"))[:500]
        log(f"{target.name} {entry['status']}: {entry['reason']}")
        server.stop()
        return None, entry
    entry.update(status="ok", ready_s=server.started_s, **await servers.describe_model(server))
    if target.kind == "kerasserve" and target.runtime not in ("auto", entry.get("runtime")):
        entry["note"] = f"asked for {target.runtime}, serves {entry.get('runtime')}"
    log(
        f"{target.name} ready in {server.started_s:.1f} s: serves {entry.get('runtime')}, "
        f"max batch {entry.get('max_batch_size')} ({entry.get('detail')})"
    )
    return server, entry


def _point_line(point: dict[str, Any]) -> str:
    return (
        f"c={point['concurrency']:<3} {point['target']:17} {point['img_s']:7.1f} img/s  "
        f"p50 {_ms(point['p50_ms'])}  p99 {_ms(point['p99_ms'])}  err {point['errors']}  "
        f"batch {point['mean_batch'] or 0:.1f}  cpu {point['server_cpu_cores']:.2f}  "
        f"other {_noise(point):.2f}"
    )


async def run_servers(
    plan: Plan, work: Path, out: dict[str, Any], budget: dict[str, float]
) -> None:
    photos = images.load(plan.variant)
    out["targets"] = {}
    out["points"] = []
    out["spread"] = {"target": SPREAD_TARGET, "clients": plan.spread_clients, "starts": []}
    names = [t for t in servers.SERVER_TARGETS if t in plan.targets]
    for name in names:
        target = servers.server_target(name, plan.server_args)
        server, entry = await start_ready(target, plan, work, photos)
        out["targets"][name] = entry
        if server is None:
            continue
        try:
            requests = _requests(server, photos)
            levels = plan.resnet50_clients if target.model == servers.RESNET50 else plan.clients
            for clients in levels:
                point = await quietest_point(server, requests, clients, plan, budget)
                out["points"].append(point)
                log(_point_line(point))
                if name == SPREAD_TARGET and clients == plan.spread_clients and plan.starts == 1:
                    out["spread"]["starts"].append(_start_figure(point, entry, 1))
            if plan.profile and target.kind in ("kerasserve", "ceiling"):
                log(f"profiling {name} (c=32) with py-spy")
                out.setdefault("profiles", {})[name] = await profile.profile_point(
                    server, requests, 32, plan.warmup_s, plan.measure_s, work
                )
        finally:
            entry["peak_rss_mb"] = server.peak_rss_mb()
            server.stop()
    if (
        SPREAD_TARGET in names
        and out["targets"][SPREAD_TARGET]["status"] == "ok"
        and plan.starts > 1
    ):
        await run_spread(plan, work, out, budget, photos)


def _start_figure(point: dict[str, Any], entry: dict[str, Any], start: int) -> dict[str, Any]:
    return {
        "start": start,
        "img_s": point["img_s"],
        "p50_ms": point["p50_ms"],
        "p99_ms": point["p99_ms"],
        "errors": point["errors"],
        "runtime": entry.get("runtime"),
        "ready_s": entry.get("ready_s"),
        # The batch cap this start's calibration chose (of `configured_max_batch_size`).
        "max_batch_size": entry.get("max_batch_size"),
        "configured_max_batch_size": entry.get("configured_max_batch_size"),
        "mean_batch": point.get("mean_batch"),
        "other_cpu_cores": point.get("other_cpu_cores"),
    }


async def run_spread(
    plan: Plan,
    work: Path,
    out: dict[str, Any],
    budget: dict[str, float],
    photos: list[images.Photo],
) -> None:
    """`plan.starts` fresh starts of the default target, measured in interleaved rounds.

    Each start is launched and calibrates on its own (the starts before it sit idle: no
    requests, so OpenVINO's threads sleep), then every start is measured at `spread_clients`
    once per round, the order rotating between rounds, and a start's figure is the median of
    its rounds. Measured one after another, the starts' figures also held the host's drift over
    the minutes between them (on this project's shared 2-core machine, starts with the same
    batch cap served 269-304 img/s); interleaved, what differs between starts is what the
    start-up itself decided. With one start the spread is the default target's own point.
    """
    target = servers.server_target(SPREAD_TARGET, plan.server_args)
    ready: list[tuple[int, Running, dict[str, Any]]] = []
    skipped: list[dict[str, Any]] = []
    try:
        for start in range(1, plan.starts + 1):
            server, entry = await start_ready(target, plan, work, photos, tag=f"-start{start}")
            if server is None:
                skipped.append({"start": start, "skipped": entry["reason"]})
            else:
                ready.append((start, server, entry))
        up = [(start, server) for start, server, _ in ready]
        rounds = await in_rounds(up, photos, plan.spread_rounds, plan, budget, "start")
    finally:
        for _, server, entry in ready:
            entry["peak_rss_mb"] = server.peak_rss_mb()
            server.stop()
    figures = [_start_figure(_median_point(rounds[s]), entry, s) for s, _, entry in ready]
    for figure, (start, _, _) in zip(figures, ready, strict=True):
        figure["rounds_img_s"] = [p["img_s"] for p in rounds[start]]
    out["spread"]["rounds"] = plan.spread_rounds
    out["spread"]["starts"] = sorted(figures + skipped, key=lambda f: int(f["start"]))


async def in_rounds(
    up: list[tuple[K, Running]],
    photos: list[images.Photo],
    rounds: int,
    plan: Plan,
    budget: dict[str, float],
    what: str = "",
) -> dict[K, list[dict[str, Any]]]:
    """Every server of `up` measured at `spread_clients` once per round, the order rotating
    between rounds: each key's points, in round order (`_median_point` makes them one).
    `what` names the key in the log ("start": "start 2, round 1: ..."); the point's own line
    names the target."""
    points: dict[K, list[dict[str, Any]]] = {key: [] for key, _ in up}
    for n in range(max(1, rounds)):
        for key, server in _rotated(up, n):
            point = await quietest_point(
                server, _requests(server, photos), plan.spread_clients, plan, budget
            )
            points[key].append(point)
            named = f"{what} {key}, round" if what else "round"
            log(f"{named} {n + 1}: {_point_line(point)}")
    return points


def _rotated(items: list[T], n: int) -> list[T]:
    """`items` starting from the n-th (cycling): pass n of an interleaved measurement."""
    shift = n % len(items) if items else 0
    return items[shift:] + items[:shift]


def _median_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    """One point from a start's rounds: the median of each figure, the errors summed."""

    def median(key: str) -> float | None:
        values = [p[key] for p in points if p.get(key) is not None]
        return statistics.median(values) if values else None

    return {
        "img_s": median("img_s"),
        "p50_ms": median("p50_ms"),
        "p99_ms": median("p99_ms"),
        "mean_batch": median("mean_batch"),
        "other_cpu_cores": median("other_cpu_cores"),
        "errors": sum(int(p["errors"]) for p in points),
    }


async def run_side_by_side(
    plan: Plan, work: Path, out: dict[str, Any], budget: dict[str, float]
) -> None:
    """SIDE_BY_SIDE's targets (those that served in the main phase), all started, then
    measured in `side_by_side_passes` interleaved passes: every pass measures each at every
    client count of `side_by_side_clients`, the order of the targets rotating from pass to
    pass. The checks that compare them take the medians of their passes (bench/analysis.py).

    In the main phase each target is measured once, minutes from the others: on this
    project's shared 2-core machine that made the near-free model 0.94x the ceiling in one
    run and 0.61x in another, where interleaved passes of the same code gave 0.77x."""
    names = [
        n
        for n in SIDE_BY_SIDE
        if n in plan.targets and out.get("targets", {}).get(n, {}).get("status") == "ok"
    ]
    if plan.side_by_side_passes < 1 or len(names) < 2:
        return
    photos = images.load(plan.variant)
    section: dict[str, Any] = {
        "passes": plan.side_by_side_passes,
        "clients": plan.side_by_side_clients,
        "targets": names,
        "points": [],
    }
    out["side_by_side"] = section
    running: list[Running] = []
    try:
        for name in names:
            target = servers.server_target(name, plan.server_args)
            server, entry = await start_ready(target, plan, work, photos, tag="-side")
            if server is None:
                section.setdefault("skipped", {})[name] = entry["reason"]
                continue
            running.append(server)
        for n in range(plan.side_by_side_passes):
            for clients in plan.side_by_side_clients:
                for server in _rotated(running, n):
                    point = await quietest_point(
                        server, _requests(server, photos), clients, plan, budget
                    )
                    point["pass"] = n + 1
                    section["points"].append(point)
                    log(f"side by side, pass {n + 1}: {_point_line(point)}")
    finally:
        for server in running:
            server.stop()


async def run_keras_vs_raw(
    plan: Plan, work: Path, out: dict[str, Any], budget: dict[str, float]
) -> None:
    """`--runtime keras` and the raw Keras limit, in turn: the server is started once and kept
    up (idle while the raw limit runs in a process of its own), then every pass runs the raw
    limit and then the server at `spread_clients`, and then at the plan's other client counts.
    The check against the raw limit takes the median of each; the check that throughput
    never falls as clients rise takes the median at each client count (bench/analysis.py).

    Otherwise the check sets the server's one point against the better of the raw passes at
    the start and the end of the run, 20 minutes apart: on this project's shared 2-core
    machine that ratio was 0.82x in one run and 0.62x in the next, on the same Keras path."""
    if (
        plan.keras_vs_raw_passes < 1
        or "raw-keras" not in plan.targets
        or out.get("targets", {}).get("keras", {}).get("status") != "ok"
    ):
        return
    photos = images.load(plan.variant)
    section: dict[str, Any] = {
        "passes": plan.keras_vs_raw_passes,
        "clients": plan.spread_clients,
        "levels": sorted({*plan.clients, plan.spread_clients}),
        "raw": [],
        "points": [],
    }
    out["keras_vs_raw"] = section
    target = servers.server_target("keras", plan.server_args)
    server, entry = await start_ready(target, plan, work, photos, tag="-vs-raw")
    if server is None:
        section["skipped"] = entry["reason"]
        return
    try:
        for n in range(plan.keras_vs_raw_passes):
            raw = await asyncio.to_thread(
                raw_quietest, "raw-keras", plan, work, f"vs-keras-{n + 1}", budget
            )
            raw["pass"] = n + 1
            section["raw"].append(raw)
            log(f"keras vs raw, pass {n + 1}: raw-keras {raw_line(raw)}")
            others = [c for c in section["levels"] if c != plan.spread_clients]
            for clients in [plan.spread_clients, *_rotated(others, n)]:
                point = await quietest_point(
                    server, _requests(server, photos), clients, plan, budget
                )
                point["pass"] = n + 1
                section["points"].append(point)
                log(f"keras vs raw, pass {n + 1}: {_point_line(point)}")
    finally:
        server.stop()


async def run_extras(plan: Plan, work: Path, out: dict[str, Any], budget: dict[str, float]) -> None:
    """`multi-photo` and `batch-choice`, each starting the servers it needs."""
    from bench import batch_choice, multi_photo

    if MULTI_PHOTO in plan.targets:
        out["multi_photo"] = await multi_photo.measure(plan, work, budget)
    if BATCH_CHOICE in plan.targets:
        out["batch_choice"] = await batch_choice.measure(plan, work, budget)


def _ms(value: float | None) -> str:
    return f"{value:7.1f} ms" if value is not None else "      - ms"


# -- the whole run ---------------------------------------------------------------------------
def describe_machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        total_kb = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
        memory = round(int(total_kb) / 2**20, 1)
    except (OSError, IndexError, ValueError):
        pass
    return {
        "cpu": model or platform.processor(),
        "cpu_flags": machine.cpu_flags(),
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_start": os.getloadavg(),
    }


def run(plan: Plan, work: Path, argv: list[str]) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    out: dict[str, Any] = {
        "date": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *argv]),
        "machine": describe_machine(),
        "plan": asdict(plan),
        "images": {plan.variant: images.describe(images.load(plan.variant))},
    }
    budget = {"retry_s": plan.retry_budget_s}
    raw_names = [t for t in RAW_TARGETS if t in plan.targets]
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in raw_names}
    out["raw"] = raw

    def raw_pass(tag: str, names: list[str]) -> None:
        for name in names:
            if raw[name] and "by_batch" not in raw[name][0]:
                continue  # skipped or unavailable: it will not work better the second time
            raw[name].append(raw_quietest(name, plan, work, tag, budget))
            log(f"{name} ({tag}): {raw_line(raw[name][-1])}")

    runner = asyncio.Runner(loop_factory=new_loop)
    try:
        if plan.quick:
            # A smoke run checks that every part works, fast: its raw limits run beside the
            # servers, so none of its figures are comparable (the full run never does this).
            with ThreadPoolExecutor(1) as pool:
                beside = pool.submit(raw_pass, "beside", raw_names)
                runner.run(run_servers(plan, work, out, budget))
                runner.run(run_side_by_side(plan, work, out, budget))
                runner.run(run_extras(plan, work, out, budget))
                beside.result()
            runner.run(run_keras_vs_raw(plan, work, out, budget))
        else:
            raw_pass("before", raw_names)
            runner.run(run_servers(plan, work, out, budget))
            runner.run(run_side_by_side(plan, work, out, budget))
            runner.run(run_keras_vs_raw(plan, work, out, budget))
            runner.run(run_extras(plan, work, out, budget))
            if plan.raw_passes > 1:
                raw_pass("after", [n for n in raw_names if n not in RESNET50_RAW])
    finally:
        runner.close()
    out["machine"]["load_avg_end"] = os.getloadavg()
    out["wall_s"] = time.perf_counter() - started
    return out
