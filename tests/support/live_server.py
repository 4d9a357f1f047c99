"""Start a real `kerasserve serve` subprocess on 127.0.0.1 and wait until it is ready."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@contextlib.contextmanager
def live_server(
    *args: str,
    env: dict[str, str] | None = None,
    ready_timeout: float = 240,
    wait_ready: bool = True,
    ready_path: str = "/readyz",
) -> Iterator[LiveServer]:
    """Run `kerasserve serve --host 127.0.0.1 --port <free> *args` until the block ends.

    Default args serve MobileNetV2 with random weights. Waits for `ready_path` to answer 200
    (`/healthz` for a server with no model yet, which is up but not ready).
    """
    port = free_port()
    if not args:
        args = ("--model", "MobileNetV2", "--weights", "none")
    cmd = [
        sys.executable,
        "-m",
        "kerasserve.service",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **(env or {})}
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the server's life
        prefix=f"kerasserve-{port}-", suffix=".log", delete=False
    )
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", port, proc, Path(log_file.name))
    try:
        if wait_ready:
            block_until_ready(server, ready_timeout, ready_path)
        yield server
    finally:
        server.stop()
        log_file.close()


def block_until_ready(server: LiveServer, timeout: float, path: str = "/readyz") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{path} not 200 after {timeout}s:\n{server.log()}")


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `python -m kerasserve.service *args` to completion (e.g. a `serve` expected to fail at start-up)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kerasserve.service", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
