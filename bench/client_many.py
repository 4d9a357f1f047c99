"""64 photos through the Python SDK: `predict_many` against 64 sequential `predict` calls.

    python bench/client_many.py                       # starts its own server (random weights)
    python bench/client_many.py --url http://127.0.0.1:8000 --model MobileNetV2

Each repetition runs every way once, in rotating order, against the same server; the medians
are printed as a table and, with --json, as one JSON object. Needs numpy and Pillow (to make
the photos), which the server's extra installs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kerasserve_client import AsyncClient, Client
from kerasserve_client._base import DEFAULT_CONCURRENCY, DEFAULT_PER_REQUEST

ROOT = Path(__file__).resolve().parents[1]


def photos(count: int, size: tuple[int, int] = (480, 640), seed: int = 0) -> list[bytes]:
    """Distinct JPEGs (~640 px wide) with gradients, shapes and sensor-like noise."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(count):
        base = (
            np.stack(
                [(xx * (i + 1) / w * 255), (yy * (i + 2) / h * 255), ((xx + yy) * (i % 7 + 1) / 4)],
                axis=-1,
            )
            % 256
        )
        base = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
        image = Image.fromarray(base, "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(5):
            x, y = int(rng.integers(0, w - 120)), int(rng.integers(0, h - 120))
            box = [x, y, x + int(rng.integers(30, 220)), y + int(rng.integers(30, 220))]
            draw.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=88)
        out.append(buffer.getvalue())
    return out


@contextmanager
def local_server(model: str, extra: list[str]) -> Iterator[str]:
    """`python -m kerasserve.service serve` with random weights on a free port, until the block ends."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "kerasserve.service", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--model", model, "--weights", "none", *extra]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def measure(
    url: str, model: str, images: list[bytes], reps: int, per_request: int, concurrency: int
) -> dict[str, list[float]]:
    client = Client(url, model=model, timeout=300)
    sequential_name = f"{len(images)} x predict (sequential)"

    def sequential() -> None:
        for image in images:
            client.predict(image)

    def sync_many() -> None:
        client.predict_many(images, per_request=per_request)

    async def async_many_run() -> None:
        async with AsyncClient(url, model=model, timeout=300) as aclient:
            await aclient.predict_many(images, per_request=per_request, concurrency=concurrency)

    def async_many() -> None:
        asyncio.run(async_many_run())

    ways: dict[str, Callable[[], None]] = {
        sequential_name: sequential,
        "Client.predict_many": sync_many,
        "AsyncClient.predict_many": async_many,
    }
    with client:
        client.wait_until_ready(300)
        for run in ways.values():  # warm-up: connections, thread pools, every batch bucket
            run()
        times: dict[str, list[float]] = {name: [] for name in ways}
        names = list(ways)
        for rep in range(reps):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                start = time.perf_counter()
                ways[name]()
                times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--model", default="MobileNetV2")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--per-request", type=int, default=DEFAULT_PER_REQUEST)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("server_args", nargs="*", help="extra `serve` flags, after --")
    args = parser.parse_args(argv)

    images = photos(args.images)
    if args.url:
        times = measure(args.url, args.model, images, args.reps, args.per_request, args.concurrency)
    else:
        with local_server(args.model, args.server_args) as url:
            times = measure(url, args.model, images, args.reps, args.per_request, args.concurrency)

    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = next(iter(medians.values()))  # the sequential calls
    kib = sum(map(len, images)) / len(images) / 1024
    print(
        f"{args.images} JPEGs 640x480 (~{kib:.0f} KiB each), {args.reps} reps, {args.model}, "
        f"per_request={args.per_request}, concurrency={args.concurrency} (async)"
    )
    for name, median in medians.items():
        spread = f"{min(times[name]):.2f}-{max(times[name]):.2f}"
        print(f"  {name:<28} median {median:6.2f} s  ({spread} s)  x{baseline / median:.2f}")
    if args.json:
        print(json.dumps({"medians_s": medians, "runs_s": times}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
