"""The GPU benchmark: kerasserve on Keras' JAX backend, under load, and the jitted model alone.

`python -m bench.gpu --out DIR` does everything in one go, for a lent GPU machine:

1. starts `kerasserve serve --model MobileNetV2 --weights none --max-batch-size 64` with
   `KERAS_BACKEND=jax` and the default runtime (`auto`), and keeps its log;
2. reads `GET /v1/models/MobileNetV2` and checks that auto serves `keras` on the GPU;
3. runs closed-loop load (bench/loadgen.py) at each client count with the small photos;
4. stops the server, then times the raw limit in a process of its own: `JaxRuntime`
   (preprocessing and forward pass in one `jax.jit`) alone at every batch size, both as the
   server calls it (uint8 pixels in, probabilities back on the host) and on the device only;
5. writes `gpu-<card>.json` and `gpu-<card>.md` (the card read from JAX) under DIR.

The server is the ordinary CLI (`python -m bench.gpu serve ...` runs it in this process, with
the carried packages on its path); on Keras' JAX backend `service/inference/runtime_factory.py`
builds `JaxRuntime` by itself.

On a CPU (`JAX_PLATFORMS=cpu`) the same script runs end to end; `--expect-platform cpu`
and short windows make it a quick check before the GPU run.

The GPU machine has JAX but none of the server's own packages and no network:
`python -m bench.gpu wheels` downloads them (cp312, the versions installed here) into
`.whl/`, OpenVINO without its GPU/NPU plugins and unused frontends so that it fits the
machine's 64 MiB carry limit. On the machine:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site JAX_COMPILATION_CACHE_DIR=/tmp/jax python3 -m bench.gpu --out $OUT

Without TensorFlow, OpenVINO cannot export a model from Keras' JAX backend (Keras goes
through jax2tf), so `auto` logs OpenVINO as rejected and serves Keras alone.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import loadgen

MODEL = "MobileNetV2"
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_CLIENTS = [1, 8, 32, 64]
DEFAULT_SIZES = [1, 2, 4, 8, 16, 32, 64]
# Log lines worth keeping: what auto measured and chose, calibration, the ready line.
STARTUP_LINE = re.compile(r"runtime auto|rejected|FALLING BACK|calibrated|ready:|exported")


def _serve(argv: list[str]) -> int:
    """The ordinary CLI in this process (the factory builds JaxRuntime when Keras runs on JAX)."""
    from kerasserve.service.cli import main

    return main(["serve", *argv])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_env() -> dict[str, str]:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    # The default runtime is the point of the run: nothing inherited may pin another.
    for name in ("KERASSERVE_RUNTIME", "KERASSERVE_PRECISION"):
        env.pop(name, None)
    # The server and the raw run take turns on the device; neither may grab all its memory.
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.45")
    return env


def start_server(
    port: int, max_batch: int, weights: str, log_path: Path, extra: list[str]
) -> subprocess.Popen[bytes]:
    argv = [
        "--model",
        MODEL,
        "--weights",
        weights,
        "--max-batch-size",
        str(max_batch),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "info",
        *extra,
    ]
    log = log_path.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "bench.gpu", "serve", *argv],
        cwd=ROOT,
        env=server_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout_s: float) -> dict[str, Any]:
    """The model's description once it is ready; raises if the server dies or times out."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            status, body = asyncio.run(
                loadgen.http_get("127.0.0.1", port, f"/v1/models/{MODEL}", timeout=5)
            )
        except OSError as exc:
            last = type(exc).__name__
        else:
            last = f"HTTP {status}"
            if status == 200:
                info: dict[str, Any] = json.loads(body)
                if info.get("state") == "ready":
                    return info
                if info.get("state") == "failed":
                    raise RuntimeError(f"{MODEL} failed to load: {info.get('error')}")
        time.sleep(1)
    raise RuntimeError(f"{MODEL} not ready after {timeout_s:.0f} s ({last})")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_runtime(info: dict[str, Any], platform_name: str) -> tuple[bool, str]:
    """(ok, why): auto must serve `keras`, and its detail must name the expected platform."""
    runtime = info.get("runtime") or {}
    name, detail = runtime.get("name"), runtime.get("detail") or ""
    if name != "keras":
        return False, f"auto serves {name!r}, not keras ({detail})"
    if f"{platform_name}:" not in detail:
        return False, f"keras does not run on {platform_name}: {detail}"
    return True, f"auto serves keras on {platform_name}: {detail}"


def load_rows(
    port: int, clients: list[int], warmup_s: float, measure_s: float
) -> list[dict[str, Any]]:
    from bench import images

    photos = images.load("small")
    path = f"/v1/models/{MODEL}/predict"
    requests = [
        loadgen.multipart_request("127.0.0.1", port, path, p.filename, p.data) for p in photos
    ]
    rows = []
    for count in clients:
        loop = loadgen.new_loop()
        try:
            result = loop.run_until_complete(
                loadgen.closed_loop("127.0.0.1", port, requests, count, warmup_s, measure_s)
            )
        finally:
            loop.close()
        latencies = [(s.end - s.start) * 1e3 for s in result.ok]
        rows.append(
            {
                "clients": count,
                "img_s": len(result.ok) / result.window_s,
                "p50_ms": loadgen.percentile(latencies, 50),
                "p95_ms": loadgen.percentile(latencies, 95),
                "p99_ms": loadgen.percentile(latencies, 99),
                "ok": len(result.ok),
                "errors": result.errors,
                "window_s": result.window_s,
                "drained": result.drained,
            }
        )
        print(f"load {count:>3} clients: {rows[-1]['img_s']:.0f} img/s", flush=True)
    return rows


def _raw(sizes: list[int], seconds: float, out: Path) -> int:
    """The jitted model alone, in this process: host-to-host, and device only."""
    import jax
    import keras

    from bench.raw import pixels, time_calls
    from kerasserve.service.inference import catalogue
    from kerasserve.service.inference.jax_runtime import JaxRuntime, describe_device

    spec = catalogue.spec(MODEL)
    model = spec.constructor(weights=None)
    runtime = JaxRuntime(model, spec.preprocess_input, spec.input_size, sizes)
    started = time.perf_counter()
    runtime.warm()
    warm_s = time.perf_counter() - started
    source = pixels(max(sizes))
    rows = []
    for size in sizes:
        batch = source[:size]
        host = time_calls(functools.partial(runtime.predict, batch), seconds)
        on_device = jax.device_put(batch, runtime.device)

        def device_only(x: Any = on_device) -> Any:
            return runtime.forward_on_device(x).block_until_ready()

        device = time_calls(device_only, seconds)
        rows.append(
            {
                "batch": size,
                "img_s": size / host["median_s"],
                "median_ms": host["median_s"] * 1e3,
                "device_img_s": size / device["median_s"],
                "device_median_ms": device["median_s"] * 1e3,
                "calls": host["calls"],
            }
        )
        print(f"raw batch {size:>3}: {rows[-1]['img_s']:.0f} img/s", flush=True)
    report = {
        "device": describe_device(),
        "keras": keras.__version__,
        "jax": jax.__version__,
        "detail": runtime.detail,
        "warm_s": warm_s,
        "by_batch": rows,
    }
    out.write_text(json.dumps(report, indent=2))
    return 0


def raw_limit(sizes: list[int], seconds: float, out_dir: Path) -> dict[str, Any]:
    path = out_dir / "raw.json"
    cmd = [sys.executable, "-m", "bench.gpu", "raw", "--sizes", ",".join(map(str, sizes))]
    cmd += ["--seconds", str(seconds), "--out", str(path)]
    subprocess.run(cmd, cwd=ROOT, env=server_env(), check=True, timeout=900)
    report: dict[str, Any] = json.loads(path.read_text())
    path.unlink()
    return report


def card_slug(device: str) -> str:
    """`cuda:0 NVIDIA H100 80GB HBM3` -> `h100-80gb-hbm3`; `cpu:0` -> `cpu`."""
    kind = device.split(" ", 1)[1] if " " in device else device.split(":")[0]
    kind = re.sub(r"^nvidia\s+", "", kind.strip(), flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-") or "unknown"


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    runtime = report["model"].get("runtime") or {}
    batching = report["model"].get("batching") or {}
    lines = [
        f"# kerasserve on {report['device']} (Keras on JAX)",
        "",
        f"Command: `{report['command']}`",
        "",
        f"- Served runtime: **{runtime.get('name')}**, {runtime.get('detail')}",
        f"- Check: {report['check']}",
        f"- `--runtime auto` start-up timing (img/s): {runtime.get('selection') or 'one candidate'}",
        f"- Buckets {batching.get('buckets')}, max batch {batching.get('max_batch_size')} "
        f"(configured {batching.get('configured_max_batch_size')})",
        f"- Ready in {report['startup_s']:.1f} s after launch",
        f"- Machine: {report['machine']}",
        "",
        "## Under load (closed loop, small photos, one image per request)",
        "",
        "| clients | img/s | p50 ms | p95 ms | p99 ms | errors |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["load"]:
        lines.append(
            f"| {row['clients']} | {_fmt(row['img_s'])} | {_fmt(row['p50_ms'], 1)} | "
            f"{_fmt(row['p95_ms'], 1)} | {_fmt(row['p99_ms'], 1)} | {row['errors']} |"
        )
    raw = report["raw"]
    lines += [
        "",
        "## Raw limit: the jitted model alone (`JaxRuntime`, one caller)",
        "",
        "Host: uint8 pixels in, probabilities on the host (as the server calls it). "
        "Device: input already on the GPU, forward pass only.",
        "",
        "| batch | host img/s | host ms | device img/s | device ms |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in raw["by_batch"]:
        lines.append(
            f"| {row['batch']} | {_fmt(row['img_s'])} | {_fmt(row['median_ms'], 2)} | "
            f"{_fmt(row['device_img_s'])} | {_fmt(row['device_median_ms'], 2)} |"
        )
    lines += ["", "## Start-up log", "", "```", *report["startup_log"], "```", ""]
    return "\n".join(lines)


# What the server and this script import that the GPU machine's image lacks.
WHEELS = [
    "keras",
    "namex",
    "optree",
    "fastapi",
    "opentelemetry-api",  # fastapi >= 0.16x imports it at start-up
    "starlette",
    "pydantic",
    "pydantic_core",
    "annotated-types",
    "typing-inspection",
    "typing_extensions",
    "pydantic-settings",
    "python-dotenv",
    "uvicorn",
    "h11",
    "httptools",
    "python-multipart",
    "simplejpeg",
    "fastapi_offline",
    "openvino",
    "openvino-telemetry",
]
# Parts of the OpenVINO wheel a CPU runtime reading IR files never loads.
OPENVINO_UNUSED = re.compile(
    r"openvino/libs/(libopenvino_intel_(gpu|npu)_plugin\.so|cache\.json|"
    r"libopenvino_(onnx|tensorflow|tensorflow_lite|pytorch|paddle|gguf)_frontend\.so.*)$"
)
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64"]
PLATFORMS += ["manylinux2014_x86_64", "manylinux1_x86_64"]


def download_wheels(dest: Path) -> int:
    """cp312 x86-64 wheels of WHEELS at the versions installed here, OpenVINO slimmed."""
    import zipfile
    from importlib import metadata

    dest.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={metadata.version(name)}" for name in WHEELS]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--python-version", "3.12", "--implementation", "cp", "-d", str(dest)]
    for tag in PLATFORMS:
        cmd += ["--platform", tag]
    subprocess.run([*cmd, *pins], check=True)
    for wheel in dest.glob("openvino-*.whl"):
        slim = wheel.with_suffix(".slim")
        with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as out:
            for item in src.infolist():
                if not OPENVINO_UNUSED.match(item.filename):
                    out.writestr(item, src.read(item), compresslevel=9)
        slim.replace(wheel)
    total = sum(f.stat().st_size for f in dest.glob("*.whl"))
    print(f"{len(list(dest.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB in {dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        return _serve(args[1:])
    if args[:1] == ["wheels"]:
        return download_wheels(Path(args[1]) if len(args) > 1 else ROOT / ".whl")
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["run", "raw"], default="run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--clients", default=",".join(map(str, DEFAULT_CLIENTS)))
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--weights", default="none")
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--measure-s", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=2.0, help="raw: time per batch size")
    parser.add_argument("--startup-timeout-s", type=float, default=300.0)
    parser.add_argument("--expect-platform", default="cuda", help="cuda (default) | cpu")
    parser.add_argument("--server-arg", action="append", default=[], help="extra serve flag")
    opts = parser.parse_args(args)
    sizes = [int(s) for s in opts.sizes.split(",")]
    if opts.mode == "raw":
        return _raw(sizes, opts.seconds, opts.out)

    out: Path = opts.out
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = out / "server.log"
    extra = list(opts.server_arg)
    command = (
        f"KERAS_BACKEND=jax kerasserve serve --model {MODEL} --weights {opts.weights} "
        f"--max-batch-size {opts.max_batch_size} {' '.join(extra)}".strip()
    )
    print(command, flush=True)
    started = time.perf_counter()
    proc = start_server(port, opts.max_batch_size, opts.weights, log_path, extra)
    try:
        info = wait_ready(proc, port, opts.startup_timeout_s)
        startup_s = time.perf_counter() - started
        ok, why = check_runtime(info, opts.expect_platform)
        print(("OK " if ok else "CHECK FAILED ") + why, flush=True)
        clients = [int(c) for c in opts.clients.split(",")]
        rows = load_rows(port, clients, opts.warmup_s, opts.measure_s)
    finally:
        stop_server(proc)
    log = log_path.read_text(errors="replace").splitlines()
    raw = raw_limit(sizes, opts.seconds, out)
    report = {
        "command": command,
        "device": raw["device"],
        "machine": f"{platform.node()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, Keras {raw['keras']}, JAX {raw['jax']}",
        "check": why,
        "check_ok": ok,
        "startup_s": startup_s,
        "startup_log": [line for line in log if STARTUP_LINE.search(line)],
        "model": info,
        "load": rows,
        "raw": raw,
        "raw_best_img_s": max(r["img_s"] for r in raw["by_batch"]),
    }
    stem = f"gpu-{card_slug(raw['device'])}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
