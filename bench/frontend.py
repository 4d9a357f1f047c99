"""The front end's own cost: kerasserve with a near-free model against the front-end ceiling.

`bench/ceiling.py` decodes and answers with no model and no batching; `bench/nearfree.py`
serves a model that costs nothing through all of kerasserve (upload, decode, batcher, model
thread, answer). On a shared machine one pass means little, so the servers are measured in
interleaved passes (every server at every client count, then again) and the table gives
medians and the ratios of medians. `--before SRC` adds the near-free model served by another
checkout's packages (its `src/`, e.g. a `git worktree` of an older commit), measured in the
same passes; `--flame DIR` records a py-spy flame graph of each near-free server at the
largest client count.

    python -m bench.frontend --passes 5 --clients 1,32 --before /tmp/before/src --flame bench/results
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import images, machine
from bench.loadgen import closed_loop, multipart_request, new_loop, percentile
from bench.servers import HOST, Running, Target, ceiling_target, nearfree_target, start, wait_ready


def _targets(before: Path | None) -> list[tuple[Target, dict[str, str]]]:
    after = nearfree_target([])
    targets: list[tuple[Target, dict[str, str]]] = [
        (ceiling_target(), {}),
        (replace(after, name="nearfree-after"), {}),
    ]
    if before is not None:
        # The old checkout's packages first on the path; the launcher stays this checkout's.
        env = {"PYTHONPATH": f"{before}{os.pathsep}{Path(__file__).resolve().parents[1]}"}
        targets.append((replace(after, name="nearfree-before"), env))
    return targets


async def _point(server: Running, requests: list[bytes], clients: int, args: Any) -> dict[str, Any]:
    cpu: list[float] = []

    async def mark() -> None:
        cpu.append(server.cpu_s())

    result = await closed_loop(
        HOST,
        server.port,
        requests,
        clients,
        args.warmup,
        args.duration,
        on_window_start=mark,
        on_window_end=mark,
    )
    latencies = [(s.end - s.start) * 1e3 for s in result.ok]
    # The server's CPU (every thread) per request answered in the window: less at the mercy
    # of other load on a shared machine than requests per second.
    answered = len(result.ok)
    return {
        "req_s": answered / result.window_s,
        "p50_ms": percentile(latencies, 50),
        "cpu_ms_per_req": (cpu[1] - cpu[0]) / answered * 1e3
        if answered and len(cpu) == 2
        else None,
        "errors": result.errors,
    }


async def _flame(server: Running, requests: list[bytes], clients: int, args: Any) -> str:
    exe = shutil.which("py-spy")
    if exe is None:
        return "py-spy is not installed"
    out = args.flame / f"flame-{server.target.name.removeprefix('nearfree-')}.svg"
    state: dict[str, Any] = {}

    async def begin() -> None:
        state["proc"] = await asyncio.create_subprocess_exec(
            *(exe, "record", "--pid", str(server.pid), "--rate", "100", "--nonblocking"),
            *("--duration", str(int(args.duration)), "--output", str(out)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def end() -> None:
        stdout, _ = await asyncio.wait_for(state["proc"].communicate(), 120)
        state["log"] = stdout.decode(errors="replace")[-300:]

    await closed_loop(
        HOST,
        server.port,
        requests,
        clients,
        args.warmup,
        float(int(args.duration)),
        on_window_start=begin,
        on_window_end=end,
    )
    return str(out) if out.exists() else f"py-spy wrote nothing: {state.get('log', '')}"


async def run(args: Any) -> dict[str, Any]:
    photos = images.load("small", limit=8)
    running: list[Running] = []
    try:
        for target, env in _targets(args.before):
            server = start(target, args.work / "logs", env=env)
            running.append(server)
            first = multipart_request(
                HOST, server.port, target.predict_path, "a.jpg", photos[0].data
            )
            await wait_ready(server, first, 600)
        requests = {
            s.target.name: [
                multipart_request(HOST, s.port, s.target.predict_path, p.filename, p.data)
                for p in photos
            ]
            for s in running
        }
        points: dict[str, dict[int, list[dict[str, Any]]]] = {s.target.name: {} for s in running}
        for n in range(args.passes):
            for clients in args.clients:
                for server in running:
                    point = await _point(server, requests[server.target.name], clients, args)
                    points[server.target.name].setdefault(clients, []).append(point)
                    print(
                        f"pass {n + 1} c={clients} {server.target.name}: "
                        f"{point['req_s']:.1f} req/s, p50 {point['p50_ms']:.2f} ms, "
                        f"CPU {point['cpu_ms_per_req'] or 0:.3f} ms/request",
                        flush=True,
                    )
        flames = {}
        if args.flame is not None:
            args.flame.mkdir(parents=True, exist_ok=True)
            for server in running[1:]:
                name = server.target.name
                flames[name] = await _flame(server, requests[name], max(args.clients), args)
    finally:
        for server in running:
            server.stop()
    return {"points": points, "summary": summarize(points), "flames": flames}


def summarize(points: dict[str, dict[int, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Medians per server and client count, and each near-free server's ratios to the ceiling."""
    medians: dict[str, dict[int, dict[str, float]]] = {}
    for name, by_clients in points.items():
        medians[name] = {
            c: {
                "req_s": statistics.median(p["req_s"] for p in pts),
                "p50_ms": statistics.median(p["p50_ms"] or 0.0 for p in pts),
                "cpu_ms_per_req": statistics.median(p.get("cpu_ms_per_req") or 0.0 for p in pts),
                "passes": len(pts),
            }
            for c, pts in by_clients.items()
        }
    ceiling = medians.get("ceiling", {})
    ratios = {
        name: {
            c: {
                "req_s_ratio": round(m["req_s"] / ceiling[c]["req_s"], 3),
                "p50_extra_ms": round(m["p50_ms"] - ceiling[c]["p50_ms"], 2),
                "cpu_ratio": round(m["cpu_ms_per_req"] / ceiling[c]["cpu_ms_per_req"], 3)
                if ceiling[c]["cpu_ms_per_req"]
                else None,
            }
            for c, m in by_clients.items()
            if c in ceiling
        }
        for name, by_clients in medians.items()
        if name != "ceiling"
    }
    return {"medians": medians, "vs_ceiling": ratios}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--passes", type=int, default=5)
    p.add_argument("--clients", type=lambda t: [int(x) for x in t.split(",")], default=[1, 32])
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--before", type=Path, default=None, help="another checkout's src/ folder")
    p.add_argument("--flame", type=Path, default=None, help="folder for flame-*.svg")
    p.add_argument("--work", type=Path, default=Path("bench/results/tmp/frontend"))
    p.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    began = time.time()
    loop = new_loop()
    try:
        result = loop.run_until_complete(run(args))
    finally:
        loop.close()
    result["machine"] = {
        "cpu": machine.cpu_model(),
        "flags": machine.cpu_flags(),
        "cores": os.cpu_count(),
    }
    result["python"] = platform.python_version()
    result["command"] = "python -m bench.frontend " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    result["git"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result["wall_s"] = round(time.time() - began, 1)
    text = json.dumps(result, indent=1, default=str)
    if args.out is not None:
        args.out.write_text(text)
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
