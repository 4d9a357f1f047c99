"""One benchmark run: raw limits, every server side by side, the same load on each.

Order, so that the machine's drift hits every target alike: the raw limits first (nothing
else running), then every server started and warmed, then for each upload variant and each
concurrency the targets one after the other, then the raw limits once more (the best of the
two is the limit). The driver never imports TensorFlow: it is also the load generator.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import images, machine, profile, servers
from bench.loadgen import closed_loop, multipart_request, new_loop, percentile
from bench.servers import HOST, Running, Target


@dataclass
class Plan:
    runtimes: list[str]
    concurrency: list[int]
    phone_concurrency: list[int]
    variants: list[str]
    warmup_s: float = 3.0
    measure_s: float = 8.0
    raw_sizes: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    raw_seconds: float = 1.5
    raw_twice: bool = True
    seed: bool = True
    server_args: list[str] = field(default_factory=list)
    profile: bool = True
    quick: bool = False
    ready_timeout_s: float = 300.0
    # A measurement during which other processes kept more than `max_noise_cores` busy is
    # taken again (up to `retries` more times, within `retry_budget_s` for the whole run);
    # the quietest one is kept, whichever target it favours.
    max_noise_cores: float = 0.3
    retries: int = 2
    retry_budget_s: float = 240.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_raw(runtime: str, plan: Plan, work: Path, tag: str, decode: bool) -> dict[str, Any]:
    out = work / f"raw-{runtime}-{tag}.json"
    cmd = [sys.executable, "-m", "bench.raw", "--runtime", runtime, "--out", str(out)]
    cmd += ["--sizes", ",".join(map(str, plan.raw_sizes)), "--seconds", str(plan.raw_seconds)]
    if decode:
        cmd.append("--decode")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    with (work / f"raw-{runtime}-{tag}.log").open("wb") as logf:
        proc = subprocess.run(
            cmd,
            cwd=servers.ROOT,
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            timeout=600,
            check=False,
        )
    if not out.exists():
        return {"runtime": runtime, "unavailable": f"bench.raw exited with {proc.returncode}"}
    result: dict[str, Any] = json.loads(out.read_text())
    result["wall_s"] = time.perf_counter() - start
    result["command"] = "python -m " + " ".join(cmd[2:]).replace(str(out), "OUT.json")
    return result


def _point(
    server: Running, variant: str, result: Any, warm_start: dict[str, Any], end: dict[str, Any]
) -> dict[str, Any]:
    ok = result.ok
    lat = [(s.end - s.start) * 1e3 for s in ok]
    window = result.window_s
    mean_batch = None
    if warm_start.get("batches") and end.get("batches"):
        images_n = end["batches"][0] - warm_start["batches"][0]
        batches_n = end["batches"][1] - warm_start["batches"][1]
        mean_batch = images_n / batches_n if batches_n else None
    elif server.target.kind == "seed-flask":
        mean_batch = 1.0
    errors: dict[str, int] = {}
    for s in result.samples:
        if not s.ok:
            errors[s.error or "?"] = errors.get(s.error or "?", 0) + 1
    return {
        "variant": variant,
        "target": server.target.name,
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
    server: Running, variant: str, requests: list[bytes], concurrency: int, plan: Plan
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
    return _point(server, variant, result, result.hooks["start"], result.hooks["end"])


def _requests(server: Running, photos: list[images.Photo]) -> list[bytes]:
    path = server.target.predict_path
    return [multipart_request(HOST, server.port, path, p.filename, p.data) for p in photos]


def _noise(point: dict[str, Any]) -> float:
    other = point.get("other_cpu_cores")
    return 0.0 if other is None else float(other)


def _noisy(point: dict[str, Any], plan: Plan) -> bool:
    return _noise(point) > plan.max_noise_cores


async def run_servers(
    plan: Plan, work: Path, out: dict[str, Any], budget: dict[str, float]
) -> None:
    photos = {v: images.load(v) for v in plan.variants}
    targets: list[Target] = [servers.seed_target()] if plan.seed else []
    targets += [servers.kerasserve_target(rt, plan.server_args) for rt in plan.runtimes]
    running: list[Running] = []
    launched: list[Running] = []
    out["targets"] = {}
    try:
        # One after the other: kerasserve calibrates its batch size at start-up by timing
        # each bucket, and a neighbour loading TensorFlow meanwhile would skew that choice.
        for target in targets:
            log(f"starting {target.name}: {target.shown()}")
            server = servers.start(target, work / "logs")
            launched.append(server)
            entry: dict[str, Any] = {"command": target.shown(), "kind": target.kind}
            out["targets"][target.name] = entry
            warm = _requests(server, photos[plan.variants[0]])[0]
            try:
                await servers.wait_ready(server, warm, plan.ready_timeout_s)
            except (RuntimeError, TimeoutError) as exc:
                entry["status"] = "unavailable"
                entry["reason"] = str(exc)[:500]
                log(f"{target.name} unavailable: {entry['reason']}")
                server.stop()
                continue
            entry.update(
                status="ok",
                ready_s=server.started_s,
                pid=server.pid,
                **await servers.describe_model(server),
            )
            if target.kind == "kerasserve" and entry.get("runtime") not in (None, target.runtime):
                entry["note"] = f"asked for {target.runtime}, serves {entry.get('runtime')}"
            log(
                f"{target.name} ready in {server.started_s:.1f} s, max batch "
                f"{entry.get('max_batch_size')} ({entry.get('detail')})"
            )
            running.append(server)
        out["points"] = []
        for variant in plan.variants:
            levels = plan.concurrency if variant == "small" else plan.phone_concurrency
            for concurrency in levels:
                for server in running:
                    requests = _requests(server, photos[variant])
                    tries = [await measure_point(server, variant, requests, concurrency, plan)]
                    while _noisy(tries[-1], plan) and len(tries) <= plan.retries:
                        began = time.perf_counter()
                        if budget["retry_s"] <= 0:
                            break
                        log(
                            f"{variant} c={concurrency} {server.target.name}: other processes used "
                            f"{tries[-1]['other_cpu_cores']:.2f} cores; measuring again"
                        )
                        tries.append(
                            await measure_point(server, variant, requests, concurrency, plan)
                        )
                        budget["retry_s"] -= time.perf_counter() - began
                    point = min(tries, key=_noise)
                    point["tries"] = len(tries)
                    point["other_cpu_cores_tries"] = [t["other_cpu_cores"] for t in tries]
                    out["points"].append(point)
                    log(
                        f"{variant:5} c={concurrency:<3} {server.target.name:20} "
                        f"{point['img_s']:7.1f} img/s  p50 {_ms(point['p50_ms'])}  p99 {_ms(point['p99_ms'])}  "
                        f"err {point['errors']}  batch {point['mean_batch'] or 0:.1f}  "
                        f"cpu {point['server_cpu_cores']:.2f}  gen {point['generator_cpu_cores']:.2f}"
                    )
        if plan.profile:
            out["profiles"] = {}
            for server in running:
                if server.target.kind != "kerasserve" or "small" not in photos:
                    continue
                log(f"profiling {server.target.name} (small, c=32) with py-spy")
                out["profiles"][server.target.name] = await profile.profile_point(
                    server,
                    _requests(server, photos["small"]),
                    32,
                    plan.warmup_s,
                    plan.measure_s,
                    work,
                )
    finally:
        for server in launched:
            if server in running:
                out["targets"][server.target.name]["peak_rss_mb"] = server.peak_rss_mb()
            server.stop()


def _ms(value: float | None) -> str:
    return f"{value:7.1f} ms" if value is not None else "      - ms"


def describe_machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_start": os.getloadavg(),
    }


def run(plan: Plan, work: Path, argv: list[str]) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    out: dict[str, Any] = {
        "date": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(argv),
        "machine": describe_machine(),
        "plan": asdict(plan),
    }
    out["images"] = {v: images.describe(images.load(v)) for v in images.VARIANTS}
    budget = {"retry_s": plan.retry_budget_s}
    log("raw limits (before)")
    raw: dict[str, list[dict[str, Any]]] = {}
    for rt in plan.runtimes:
        raw[rt] = [_raw_quietest(rt, plan, work, "before", budget)]
        log(f"raw {rt}: {_raw_line(raw[rt][-1])}")
    out["raw"] = raw
    runner = asyncio.Runner(loop_factory=new_loop)
    try:
        runner.run(run_servers(plan, work, out, budget))
    finally:
        runner.close()
    if plan.raw_twice:
        log("raw limits (after)")
        for rt in plan.runtimes:
            raw[rt].append(_raw_quietest(rt, plan, work, "after", budget))
            log(f"raw {rt}: {_raw_line(raw[rt][-1])}")
    out["machine"]["load_avg_end"] = os.getloadavg()
    out["wall_s"] = time.perf_counter() - started
    return out


def _raw_noise(result: dict[str, Any]) -> float:
    rows = [r.get("other_cpu_cores") for r in result.get("by_batch", [])]
    values = [v for v in rows if v is not None]
    return sum(values) / len(values) if values else 0.0


def _raw_quietest(
    runtime: str, plan: Plan, work: Path, tag: str, budget: dict[str, float]
) -> dict[str, Any]:
    """A raw run; once more if other processes were busy during it (the quieter one is kept)."""
    decode = runtime == plan.runtimes[0]
    first = run_raw(runtime, plan, work, tag, decode)
    if (
        "unavailable" in first
        or _raw_noise(first) <= plan.max_noise_cores
        or budget["retry_s"] <= 0
    ):
        return first
    log(f"raw {runtime}: other processes used {_raw_noise(first):.2f} cores; measuring again")
    began = time.perf_counter()
    second = run_raw(runtime, plan, work, tag + "-again", decode)
    budget["retry_s"] -= time.perf_counter() - began
    return min((first, second), key=lambda r: _raw_noise(r) if "unavailable" not in r else 99.0)


def _raw_line(r: dict[str, Any]) -> str:
    if "unavailable" in r:
        return f"unavailable ({r['unavailable']})"
    return f"best {r['best_img_s']:.1f} img/s at batch {r['best_batch']}, batch-1 {r['batch1_latency_ms']:.1f} ms"
