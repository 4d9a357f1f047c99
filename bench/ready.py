"""Time to ready: fresh `kerasserve serve` starts, seconds from launch until `/readyz` answers 200.

    python -m bench.ready --starts 5 -- --weights none          # OpenVINO export cached
    python -m bench.ready --starts 2 --cold -- --weights none   # an empty cache each start

Nothing inherited from the environment pins the runtime or precision (`KERASSERVE_*` are
dropped): each start takes the default path. Prints one line per start (ready, of it loading,
runtime, machine load) and the median and spread.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_once(serve_args: list[str], log: Path, *, cold: bool) -> dict[str, Any]:
    """One fresh start: launch, poll /readyz, read the model's description, stop."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASSERVE_")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    cache = tempfile.mkdtemp(prefix="kerasserve-cold-") if cold else None
    if cache:
        env["XDG_CACHE_HOME"] = cache
    executable = shutil.which("kerasserve")
    argv = [executable] if executable else [sys.executable, "-m", "kerasserve.service"]
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [*argv, "serve", "--host", "127.0.0.1", "--port", str(port), *serve_args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}; see {log}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        ready_s = time.monotonic() - started
        model = httpx.get(f"{base}/v1/models", timeout=10).json()["models"][0]
    finally:
        proc.terminate()
        proc.wait(60)
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    loading = re.search(r"loaded and warmed in ([0-9.]+) s", log.read_text(errors="replace"))
    return {
        "ready_s": round(ready_s, 1),
        "loading_s": float(loading.group(1)) if loading else None,
        "runtime": f"{model['runtime']['name']} {model['runtime'].get('precision', '')}".strip(),
        "load1": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ready", description=__doc__)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="an empty OpenVINO cache each start")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("serve_args", nargs="*", help="after --: arguments of kerasserve serve")
    args = parser.parse_args(argv)
    runs = []
    for i in range(args.starts):
        run = start_once(args.serve_args, args.logs / f"ready-{i + 1}.log", cold=args.cold)
        runs.append(run)
        print(json.dumps({"start": i + 1, **run}), flush=True)
    ready = [r["ready_s"] for r in runs]
    summary = {"median": statistics.median(ready), "min": min(ready), "max": max(ready)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
