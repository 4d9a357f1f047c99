"""The servers under test as subprocesses: start, wait until they answer, watch, stop.

CPU and peak RSS are read from /proc through psutil (`VmHWM` is the kernel's own high-water
mark of the resident set, so a peak between two samples is not missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.loadgen import http_get

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
MODEL = "MobileNetV2"
RESNET50 = "ResNet50"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    """One server configuration to measure."""

    name: str  # e.g. "keras": the `--targets` name
    label: str  # e.g. "kerasserve --runtime keras": how tables show it
    kind: str  # "kerasserve" | "classic-flask" | "fastapi-plain" | "fastapi-eager" | "ceiling"
    runtime: str
    argv: list[str]  # after `python -m`
    predict_path: str
    # The network it serves: MobileNetV2, ResNet50, "nearfree" (bench/nearfree.py) or "none".
    model: str = MODEL
    # Server processes behind the port (kerasserve `--workers`): CPU and RSS add theirs up.
    workers: int = 1

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", *self.argv, "--port", str(port)]

    def shown(self) -> str:
        return "python -m " + " ".join(self.argv)

    @property
    def has_readyz(self) -> bool:
        return self.kind in ("kerasserve", "ceiling")


# kerasserve's runtimes as the benchmark's target names: the flags each one adds.
KERASSERVE_RUNTIMES: dict[str, list[str]] = {
    "default": [],
    "keras": ["--runtime", "keras"],
    "openvino": ["--runtime", "openvino"],
    # Random weights cannot pass the default accuracy gate (their top-5 is noise, see
    # docs/benchmark.md): the served INT8 figure measures its speed with the gate opened.
    "int8": [
        "--runtime",
        "openvino",
        "--precision",
        "int8",
        "--int8-min-top1",
        "0",
        "--int8-min-top5",
        "0",
    ],
}
# `fastapi` calls a model compiled once (the fair baseline); `fastapi-eager` the eager call per
# request, an extra row only: no headline ratio is taken against it.
OTHER_SERVERS = ("ceiling", "fastapi", "fastapi-eager", "flask")
# The same four for ResNet50 (about 13x MobileNetV2's arithmetic per image).
RESNET50_TARGETS: dict[str, str] = {f"resnet50-{name}": name for name in KERASSERVE_RUNTIMES}
# kerasserve serving a model that costs nothing (bench/nearfree.py): its own front end, in
# one worker process and in two (`--workers 2`, uvicorn's supervisor).
NEARFREE = "nearfree"
NEARFREE_2W = "nearfree-2w"
NEARFREE_WORKERS = {NEARFREE: 1, NEARFREE_2W: 2}
# kerasserve's default flags in two worker processes: what `--workers auto` (1 below 4 cores)
# is set against for a model that costs something.
DEFAULT_2W = "default-2w"
KERASSERVE_WORKERS = {DEFAULT_2W: 2}
SERVER_TARGETS = (
    *OTHER_SERVERS,
    *NEARFREE_WORKERS,
    *KERASSERVE_RUNTIMES,
    *KERASSERVE_WORKERS,
    *RESNET50_TARGETS,
)


def kerasserve_target(name: str, extra: list[str]) -> Target:
    """`default`, `keras`, `openvino`, `int8` (MobileNetV2), the same with `resnet50-`, or
    `default-2w` (the default flags with `--workers 2`)."""
    model = RESNET50 if name in RESNET50_TARGETS else MODEL
    workers = KERASSERVE_WORKERS.get(name, 1)
    flags = KERASSERVE_RUNTIMES["default" if workers > 1 else RESNET50_TARGETS.get(name, name)]
    argv = ["kerasserve.service", "serve", "--host", HOST, "--model", model, "--weights", "none"]
    argv += [*flags, *(["--workers", str(workers)] if workers > 1 else []), *extra]
    label = "kerasserve " + (" ".join(flags) if flags else "(default flags)")
    if workers > 1:
        label += f", --workers {workers}"
    runtime = flags[1] if flags else "auto"
    path = f"/v1/models/{model}/predict"
    return Target(name, label, "kerasserve", runtime, argv, path, model=model, workers=workers)


def classic_flask_target() -> Target:
    argv = ["bench.seed_flask", "--host", HOST]
    return Target("flask", "the classic Flask app", "classic-flask", "keras", argv, "/predict")


def fastapi_plain_target() -> Target:
    argv = ["bench.fastapi_plain", "--host", HOST, "--mode", "compiled"]
    label = "plain FastAPI, compiled model, no batching"
    return Target("fastapi", label, "fastapi-plain", "keras", argv, "/predict")


def fastapi_eager_target() -> Target:
    argv = ["bench.fastapi_plain", "--host", HOST, "--mode", "eager"]
    label = "plain FastAPI, eager model(x) (extra row, not a baseline)"
    return Target("fastapi-eager", label, "fastapi-eager", "keras", argv, "/predict")


def ceiling_target() -> Target:
    argv = ["bench.ceiling", "--host", HOST]
    path = f"/v1/models/{MODEL}/predict"
    label = "front-end ceiling (no model)"
    return Target("ceiling", label, "ceiling", "none", argv, path, model="none")


def nearfree_target(extra: list[str], workers: int = 1) -> Target:
    """The near-free model in `workers` worker processes (1: `nearfree`, 2: `nearfree-2w`)."""
    argv = ["bench.nearfree", "--host", HOST, "--workers", str(workers), *extra]
    label = f"kerasserve, near-free model, --preprocess none, --workers {workers}"
    name = next(n for n, w in NEARFREE_WORKERS.items() if w == workers)
    path = "/v1/models/nearfree/predict"
    return Target(name, label, "kerasserve", "auto", argv, path, model="nearfree", workers=workers)


def server_target(name: str, extra: list[str]) -> Target:
    """The target called `name` (one of SERVER_TARGETS); `extra` goes to kerasserve only."""
    if name in KERASSERVE_RUNTIMES or name in RESNET50_TARGETS or name in KERASSERVE_WORKERS:
        return kerasserve_target(name, extra)
    if name in NEARFREE_WORKERS:
        return nearfree_target(extra, NEARFREE_WORKERS[name])
    makers = {
        "ceiling": ceiling_target,
        "fastapi": fastapi_plain_target,
        "fastapi-eager": fastapi_eager_target,
        "flask": classic_flask_target,
    }
    if name not in makers:
        raise ValueError(f"unknown server target {name!r}; known: {', '.join(SERVER_TARGETS)}")
    return makers[name]()


@dataclass
class Running:
    target: Target
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    launched_at: float = field(default_factory=time.perf_counter)
    started_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def failure_reason(self) -> str:
        """The most telling line of a failed start-up log."""
        text = self.log_path.read_text(errors="replace")
        found: list[str] = re.findall(
            r"(?m)^.*(?:ModelLoadError|Error|error:|invalid)[^\n]*$", text
        )
        if found:
            return found[-1].strip()[:400]
        return self.log_tail(3)[:400] or f"exited with {self.process.returncode}"

    def _pids(self) -> list[int]:
        """The server's process and every process under it (`--workers auto` starts several
        on a machine of 4 cores or more, whatever the target's own count)."""
        with contextlib.suppress(psutil.Error):
            return [self.pid, *(c.pid for c in psutil.Process(self.pid).children(recursive=True))]
        return [self.pid]

    def cpu_s(self) -> float:
        total = 0.0
        for pid in self._pids():
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                total += float(times.user + times.system)
        return total

    def peak_rss_mb(self) -> float | None:
        """VmHWM (summed over the workers: each peaked on its own, so an upper bound)."""
        peaks = [peak for pid in self._pids() if (peak := _vm_hwm_mb(pid)) is not None]
        return sum(peaks) if peaks else None

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _vm_hwm_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def start(
    target: Target, log_dir: Path, suffix: str = "", env: dict[str, str] | None = None
) -> Running:
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{target.name}{suffix}.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **(env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            target.command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return Running(target, port, proc, log_path)


async def wait_ready(server: Running, warm_request: bytes, timeout: float) -> None:
    """Until the server answers a real prediction (kerasserve: `/readyz` first)."""
    from bench.loadgen import Client

    deadline = time.perf_counter() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"exited with {server.process.returncode}: {server.failure_reason()}"
            )
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not ready after {timeout:.0f} s: {server.failure_reason()}")
        try:
            if server.target.has_readyz:
                status, _ = await http_get(HOST, server.port, "/readyz", timeout=5)
                if status != 200:
                    raise ConnectionError(f"readyz {status}")
            else:
                with socket.create_connection((HOST, server.port), timeout=2):
                    pass
            break
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            await asyncio.sleep(0.3)
    server.started_s = time.perf_counter() - server.launched_at
    client = Client(HOST, server.port, [warm_request], 0)
    try:
        for _ in range(3):  # the classic app's first `predict` builds its predict function
            sample = await client.one(timeout=120)
            if not sample.ok:
                raise RuntimeError(f"warm-up request failed ({sample.error}): {server.log_tail(5)}")
    finally:
        client.close()


async def describe_model(server: Running) -> dict[str, Any]:
    """The runtime a kerasserve server actually serves with (name, detail, parity)."""
    import json

    if server.target.kind != "kerasserve":
        return {"runtime": server.target.runtime, "detail": BASELINE_DETAIL[server.target.kind]}
    model = server.target.predict_path.removesuffix("/predict")
    status, body = await http_get(HOST, server.port, model)
    if status != 200:
        return {}
    info = json.loads(body)
    runtime, batching = info.get("runtime", {}), info.get("batching", {})
    return {
        "version": info.get("version"),
        "runtime": runtime.get("name"),
        "detail": runtime.get("detail"),
        "max_abs_diff": runtime.get("max_abs_diff"),
        "precision": runtime.get("precision"),
        # The kernels OpenVINO's CPU plugin chose: {primitive type: compute layers}.
        "kernels": runtime.get("kernels"),
        "buckets": batching.get("buckets"),
        "max_batch_size": batching.get("max_batch_size"),
        "configured_max_batch_size": batching.get("configured_max_batch_size"),
        "throughput_by_batch": batching.get("throughput_by_batch"),
    }


BASELINE_DETAIL = {
    "classic-flask": "model.predict per request (Keras), Flask's threaded server",
    "fastapi-plain": "a tf.function-compiled model call per request (Keras) in Starlette's thread pool",
    "fastapi-eager": "eager model(x) per request (Keras) in Starlette's thread pool",
    "ceiling": "decode_image + a constant top-5, no model",
}

_HIST = re.compile(rb'^kerasserve_batch_size_(sum|count)\{model="([^"]*)"\} (\S+)$', re.M)


async def batch_counters(server: Running) -> tuple[float, float] | None:
    """(images, batches) so far, from kerasserve's Prometheus histogram of batch sizes."""
    if server.target.kind != "kerasserve":
        return None
    try:
        status, body = await http_get(HOST, server.port, "/metrics")
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    if status != 200:
        return None
    values = {kind: float(v) for kind, _, v in _HIST.findall(body)}
    return values.get(b"sum", 0.0), values.get(b"count", 0.0)
