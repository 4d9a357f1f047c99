"""8 photos per request against 1: kerasserve's default MobileNetV2, one start, 32 clients.

The Python SDK sends several photos as one multipart request, a part named `image` per photo
(`Client.predict_many(..., per_request=8)`; the server reads every `image` part). This
starts `kerasserve serve --model MobileNetV2 --weights none` once and drives it with the
bench's closed-loop generator at 32 clients for a fixed time, (a) one photo per request and
(b) 8 photos per request, in `plan.spread_rounds` interleaved rounds (the order alternating),
and reports, as the medians of the rounds, images/s, requests/s and p50/p99 latency per request
for both, and the ratio of their images/s. Part of `python -m bench` (target `multi-photo`);
alone:

    python -m bench.multi_photo [--clients 32] [--per-request 8] [--rounds 3] [--duration 7]
        [--out DIR]
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import images, servers
from bench.loadgen import multipart_request_many, read_response

NAME = "multi-photo"


def requests_for(
    server: servers.Running, photos: list[images.Photo], per_request: int
) -> list[bytes]:
    """One request per photo, each carrying `per_request` photos from it on (cycling)."""
    out = []
    for first in range(len(photos)):
        chosen = [photos[(first + i) % len(photos)] for i in range(per_request)]
        files = [(p.filename, p.data) for p in chosen]
        out.append(
            multipart_request_many(servers.HOST, server.port, server.target.predict_path, files)
        )
    return out


async def results_per_request(server: servers.Running, request: bytes) -> int:
    """How many results the server answers one request with (each photo should have one)."""
    reader, writer = await asyncio.open_connection(servers.HOST, server.port)
    try:
        writer.write(request)
        status, body, _ = await asyncio.wait_for(read_response(reader), 120)
    finally:
        writer.close()
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    return len(json.loads(body)["results"])


def per_request_point(point: dict[str, Any], per_request: int) -> dict[str, Any]:
    """A measured point whose "img_s" counted requests, as images/s and requests/s."""
    return {
        **point,
        "photos_per_request": per_request,
        "req_s": point["img_s"],
        "img_s": point["img_s"] * per_request,
    }


async def measure(plan: Any, work: Path, budget: dict[str, float]) -> dict[str, Any]:
    """Start the default target once; 1 photo per request, then `plan.photos_per_request`."""
    from bench.run import _median_point, _rotated, log, quietest_point, start_ready

    photos = images.load(plan.variant)
    target = replace(servers.kerasserve_target("default", plan.server_args), name=NAME)
    clients = plan.spread_clients
    section: dict[str, Any] = {"clients": clients, "per_request": plan.photos_per_request}
    server, entry = await start_ready(target, plan, work, photos)
    section["server"] = entry
    if server is None:
        return section
    counts = list(dict.fromkeys((1, plan.photos_per_request)))
    rounds = max(1, int(plan.spread_rounds))
    section["rounds"] = rounds
    measured: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    try:
        requests = {n: requests_for(server, photos, n) for n in counts}
        for n in counts:
            section.setdefault("results_per_request", {})[n] = await results_per_request(
                server, requests[n][0]
            )
        for r in range(rounds):
            for n in _rotated(counts, r):
                point = await quietest_point(server, requests[n], clients, plan, budget)
                measured[n].append(point)
                shown = per_request_point(point, n)
                log(
                    f"{NAME} c={clients} {n} photo(s)/request, round {r + 1}: "
                    f"{shown['img_s']:.1f} img/s, {shown['req_s']:.1f} req/s, "
                    f"p50 {point['p50_ms'] or 0:.1f} ms, errors {point['errors']}"
                )
    finally:
        entry["peak_rss_mb"] = server.peak_rss_mb()
        server.stop()
    section["points"] = [
        {
            **per_request_point(_median_point(measured[n]), n),
            "rounds_img_s": [p["img_s"] * n for p in measured[n]],
        }
        for n in counts
        if measured[n]
    ]
    return section


def main(argv: list[str] | None = None) -> int:
    from bench import report, standalone
    from bench.run import Plan

    p = standalone.parser(
        "python -m bench.multi_photo", __doc__, Path("bench/results/tmp/multi_photo")
    )
    p.add_argument("--per-request", type=int, default=8, help="photos per request (default 8)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    plan = Plan(
        targets=[NAME],
        spread_rounds=args.rounds,
        warmup_s=args.warmup,
        measure_s=args.duration,
        spread_clients=args.clients,
        photos_per_request=args.per_request,
        server_args=args.server_arg,
    )
    section = standalone.run_section(measure, plan, args.out, "multi_photo")
    print("\n".join(report.multi_photo_lines({"multi_photo": section})))
    return 0 if section.get("points") else 1


if __name__ == "__main__":
    raise SystemExit(main())
