"""Throughput of /features next to /predict on the same model and server, same run.

    python -m bench.features_vs_predict [--concurrency 32] [--rounds 2] [--measure-s 10]

Starts one kerasserve server (MobileNetV2, random weights), then alternates closed-loop
load on `/predict` and on `/features` (default layer, avg pooling) with small photos, so
the machine's drift hits both alike; prints medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import images, loadgen
from bench.servers import HOST, free_port

MODEL = "MobileNetV2"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup-s", type=float, default=3)
    parser.add_argument("--measure-s", type=float, default=10)
    args = parser.parse_args(argv)

    photos = images.load("small")
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="features-bench-", suffix=".log", delete=False)  # noqa: SIM115
    cmd = [sys.executable, "-m", "kerasserve.service", "serve", "--host", HOST, "--port", str(port),
           "--model", MODEL, "--weights", "none"]  # fmt: skip
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    # Both answers carry "results"; the default marker only knows predictions.
    loadgen.OK_MARKER = b'"results"'
    paths = {
        "predict": f"/v1/models/{MODEL}/predict",
        "features": f"/v1/models/{MODEL}/features",
    }
    requests = {
        name: [loadgen.multipart_request(HOST, port, path, p.name + ".jpg", p.data) for p in photos]
        for name, path in paths.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in paths}
    p50: dict[str, list[float]] = {name: [] for name in paths}
    try:
        loop = loadgen.new_loop()
        deadline = time.monotonic() + 300
        while True:
            try:
                status, _ = loop.run_until_complete(loadgen.http_get(HOST, port, "/readyz"))
                if status == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start; see {log.name}")
            time.sleep(0.5)
        for _ in range(args.rounds):
            for name in paths:
                result = loop.run_until_complete(
                    loadgen.closed_loop(
                        HOST, port, requests[name], args.concurrency, args.warmup_s, args.measure_s
                    )
                )
                ok = result.ok
                rates[name].append(len(ok) / result.window_s)
                p50[name].append(statistics.median(s.end - s.start for s in ok) * 1e3)
                print(
                    f"{name:9s} {rates[name][-1]:7.1f} img/s  p50 {p50[name][-1]:6.1f} ms  errors {result.errors}"
                )
    finally:
        server.terminate()
        server.wait(60)
    summary: dict[str, Any] = {
        name: {"img_per_s": statistics.median(rates[name]), "p50_ms": statistics.median(p50[name])}
        for name in paths
    }
    summary["ratio_features_to_predict"] = round(
        summary["features"]["img_per_s"] / summary["predict"]["img_per_s"], 3
    )
    print(json.dumps({"concurrency": args.concurrency, "rounds": args.rounds, **summary}, indent=2))
    out = Path(__file__).parent / "results" / "features_vs_predict.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
