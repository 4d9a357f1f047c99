"""Several worker processes behind one port: uvicorn's supervisor, thread budgets, shared state.

`kerasserve serve --workers N` binds the port once and hands it to uvicorn's own supervisor
(`uvicorn.supervisors.Multiprocess`), which spawns N workers, restarts one that dies, and
passes SIGTERM on. Each worker is a whole server (every model, its own batchers), built by
`worker_app()` from the parent's validated settings with the cores divided among the workers.

The workers agree through one folder the parent makes (and removes):

    <run dir>/metrics/     PROMETHEUS_MULTIPROC_DIR: every worker's metric files, summed by a scrape
    <run dir>/workers/     <pid>.json per worker: loading, ready or draining (`/readyz` reads all)
    <run dir>/commands/    admin loads and unloads, broadcast to every worker, with their acks
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe
from types import FrameType
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from uvicorn.supervisors import Multiprocess

if TYPE_CHECKING:
    from fastapi import FastAPI

    from kerasserve.service.http.state import AppState
    from kerasserve.service.settings import Settings

logger = logging.getLogger("kerasserve.workers")

WORKER_DIR_ENV = "KERASSERVE_WORKER_DIR"
SETTINGS_ENV = "KERASSERVE_WORKER_SETTINGS"
RUNTIME_THREADS_ENV = "KERASSERVE_RUNTIME_THREADS"
TOKEN_SECRET_ENV = "KERASSERVE_TOKEN_SECRET"
# How often a worker publishes its state and reads the commands of the others.
FOLLOW_EVERY_S = 0.2
# How long an admin load waits for the other workers to apply it before answering anyway.
BROADCAST_TIMEOUT_S = 600.0


def available_cores(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may use: its affinity mask (a cpuset), capped by a cgroup v2 CPU
    quota (`docker run --cpus 2` sets a quota, not a cpuset, and leaves every core visible)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    return cores


def auto_workers(cores: int) -> int:
    """`--workers auto`: one worker below 4 cores, else one per two cores.

    Measured on 2 cores (docs/deploy.md, 3 interleaved passes in each of two benchmark runs):
    MobileNetV2 served 1.17x and 1.27x as much with one worker as with two at 32 clients (one
    process keeps 1.94 cores busy; two halve each one's inference threads and batches); only a
    model that costs almost nothing served more with two. Above that, each worker gets two
    cores (one for its event loop and decoding, one or more for its model), which keeps a
    worker's threads off its neighbours'.
    """
    return 1 if cores < 4 else cores // 2


def worker_count(settings: Settings, cores: int | None = None) -> int:
    if settings.workers == "auto":
        return auto_workers(available_cores() if cores is None else cores)
    return int(settings.workers)


def worker_settings(settings: Settings, workers: int, cores: int) -> Settings:
    """The settings each of `workers` workers runs with: thread pools that a user left at
    their defaults sized to its share of the cores, so N workers never oversubscribe them."""
    share = max(1, cores // workers)
    update: dict[str, Any] = {"workers": workers}
    if settings.tf_intra_op_threads == 0:
        update["tf_intra_op_threads"] = share
    if settings.tf_inter_op_threads == 0:
        update["tf_inter_op_threads"] = share
    if settings.runtime_threads == 0:
        update["runtime_threads"] = share
    if "decode_workers" not in settings.model_fields_set:
        update["decode_workers"] = share
    return settings.model_copy(update=update)


def worker_env(run_dir: Path, settings: Settings, workers: int) -> dict[str, str]:
    """Environment the workers start with (spawned processes read it before any import)."""
    # Secrets stay out of the settings' JSON (it would hold "**********"): they come from the
    # environment only, and each worker reads them there as the parent did.
    secrets = {name for name, value in settings if isinstance(value, SecretStr)}
    env = {
        WORKER_DIR_ENV: str(run_dir),
        SETTINGS_ENV: settings.model_dump_json(exclude=secrets),
        "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "metrics"),
        # Every worker shares one GPU: grow memory as needed instead of taking it all.
        "TF_FORCE_GPU_ALLOW_GROWTH": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH", "true"),
        "XLA_PYTHON_CLIENT_PREALLOCATE": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "false"),
        "XLA_PYTHON_CLIENT_MEM_FRACTION": os.environ.get(
            "XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / workers:.3f}"
        ),
        # Libraries with OpenMP pools of their own (OpenCV, BLAS) take the worker's share too.
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(settings.tf_intra_op_threads)),
    }
    if settings.runtime_threads:
        env[RUNTIME_THREADS_ENV] = str(settings.runtime_threads)
    if "token_secret" in type(settings).model_fields and not os.environ.get(TOKEN_SECRET_ENV):
        # One key for every worker: a login token one worker signed, another accepts.
        env[TOKEN_SECRET_ENV] = token_urlsafe(32)
    return env


def serve_workers(settings: Settings, workers: int) -> int:
    """Run `workers` worker processes on one port under uvicorn's supervisor until SIGTERM."""
    import shutil

    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    cores = available_cores()
    per_worker = worker_settings(settings, workers, cores)
    run_dir = Path(tempfile.mkdtemp(prefix="kerasserve-workers-"))
    for sub in ("metrics", "workers", "commands"):
        (run_dir / sub).mkdir()
    os.environ.update(worker_env(run_dir, per_worker, workers))
    logger.info(
        "%d workers on %d cores: %d TensorFlow/OpenVINO and %d decode threads each",
        workers,
        cores,
        per_worker.tf_intra_op_threads,
        per_worker.decode_workers,
    )
    config = uvicorn.Config(
        f"{__name__}:worker_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
        lifespan="on",
        # A worker loading a model holds the GIL for seconds on a busy machine: a short
        # health-check timeout would have the supervisor kill it as hung.
        timeout_worker_healthcheck=60,
    )
    sock = config.bind_socket()
    supervisor = Supervisor(config, sockets=[sock])
    try:
        supervisor.run()
    finally:
        sock.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return 1 if failed else 0


class Supervisor(Multiprocess):
    """uvicorn's supervisor; on SIGTERM or SIGINT it first closes its own copy of the
    listening socket, so that once every worker has closed its copy too (when it starts
    draining) a new connection is refused instead of waiting in a backlog nobody reads."""

    def _close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()

    def handle_term(self) -> None:
        self._close_sockets()
        super().handle_term()

    def handle_int(self) -> None:
        self._close_sockets()
        super().handle_int()


def worker_app() -> FastAPI:
    """The app factory each worker process calls (uvicorn `factory=True`)."""
    from kerasserve.service.cli import configure_logging
    from kerasserve.service.http.app import create_app
    from kerasserve.service.settings import Settings

    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    configure_logging(settings.log_level, workers=True)
    return create_app(settings)


@dataclass
class WorkerStatus:
    pid: int
    ready: bool
    draining: bool
    models: dict[str, str] = field(default_factory=dict)


class WorkerGroup:
    """This worker's view of its siblings, through the shared folder.

    Each worker writes its own `workers/<pid>.json` (atomically: write, then rename) and reads
    the others'; a file whose process is gone counts for nothing (and its live gauges are
    dropped from the metrics), so a worker the supervisor restarts is waited for again.
    """

    def __init__(self, root: Path, size: int) -> None:
        self.root = root
        self.size = size
        self.pid = os.getpid()
        self._seen: set[str] = set()
        self._state: AppState | None = None
        self._task: asyncio.Task[None] | None = None
        self._commands: asyncio.Task[None] | None = None

    @classmethod
    def from_env(cls, settings: Settings) -> WorkerGroup | None:
        """The group this process is a worker of (None: a single-process server)."""
        root = os.environ.get(WORKER_DIR_ENV)
        if not root or settings.workers == "auto":
            return None
        return cls(Path(root), int(settings.workers))

    # -- membership ----------------------------------------------------------------------------
    def join(self, state: AppState) -> None:
        """At the start of the lifespan: say "loading", ignore commands older than this
        worker (what it loads from the repository already includes them), and turn draining
        on at SIGTERM, as the single-process server does."""
        self._state = state
        self._seen = {p.stem for p in self._command_files()}
        self.publish()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._drain_then(signal.getsignal(sig)))

    def _drain_then(self, chained: Any) -> Any:
        """A signal handler that turns draining on, then calls uvicorn's own."""

        def on_exit(sig: int, frame: FrameType | None) -> None:
            state = self._state
            if state is not None and not state.draining:
                state.draining = True
                state.drain_started = time.monotonic()
                self.publish()
            if callable(chained):
                chained(sig, frame)

        return on_exit

    def start(self) -> None:
        """Once loaded: publish state and follow the others' commands until `leave`."""
        self.publish()
        self._task = asyncio.create_task(self._follow())

    async def leave(self) -> None:
        for task in (self._task, self._commands):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(OSError):
            (self.root / "workers" / f"{self.pid}.json").unlink()
        _mark_dead(self.root, self.pid)

    # -- readiness ------------------------------------------------------------------------------
    def publish(self) -> None:
        state = self._state
        if state is None:
            return
        status = WorkerStatus(
            self.pid,
            ready=state.registry.ready and not state.draining,
            draining=state.draining,
            models={e.name: e.state.value for e in state.registry.entries},
        )
        _write_json(self.root / "workers" / f"{self.pid}.json", status.__dict__)

    def statuses(self) -> list[WorkerStatus]:
        """Every live worker's last published status (files of dead workers are removed)."""
        found = []
        for path in (self.root / "workers").glob("*.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced this instant, or gone: the next read sees it
            if not _alive(int(data["pid"])):
                with contextlib.suppress(OSError):
                    path.unlink()
                _mark_dead(self.root, int(data["pid"]))
                continue
            found.append(WorkerStatus(**data))
        return found

    def all_ready(self) -> tuple[bool, str | None]:
        """(every one of the N workers ready, why not)."""
        statuses = self.statuses()
        if any(s.draining for s in statuses):
            return False, "draining"
        ready = sum(s.ready for s in statuses)
        if ready < self.size:
            return False, f"loading: {ready} of {self.size} workers ready"
        return True, None

    # -- broadcast ------------------------------------------------------------------------------
    async def broadcast(self, action: str, model: str) -> dict[int, str]:
        """Have every other worker do what this one just did (`load` or `unload` of `model`);
        returns {pid: error} of the workers that failed, after all answered (or the timeout)."""
        command = f"{time.time_ns():020d}-{self.pid}"
        self._seen.add(command)
        waiting = {s.pid for s in self.statuses() if s.pid != self.pid}
        _write_json(
            self.root / "commands" / f"{command}.json",
            {"action": action, "model": model, "from": self.pid},
        )
        failed: dict[int, str] = {}
        deadline = time.monotonic() + BROADCAST_TIMEOUT_S
        while waiting and time.monotonic() < deadline:
            for pid in list(waiting):
                ack = self.root / "commands" / f"{command}.ack-{pid}"
                if ack.exists():
                    error = ack.read_text()
                    if error:
                        failed[pid] = error
                    waiting.discard(pid)
                elif not _alive(pid):
                    waiting.discard(pid)  # restarted: it loads the repository as it is now
            await asyncio.sleep(FOLLOW_EVERY_S / 2)
        for pid in waiting:
            failed[pid] = f"no answer after {BROADCAST_TIMEOUT_S:.0f} s"
        if failed:
            logger.warning("%s %s: not applied by every worker: %s", action, model, failed)
        return failed

    async def _follow(self) -> None:
        while True:
            try:
                self.publish()
                if self._commands is None or self._commands.done():
                    pending = [p for p in self._command_files() if p.stem not in self._seen]
                    if pending:
                        self._seen.update(p.stem for p in pending)
                        self._commands = asyncio.create_task(self._apply(pending))
                if self._state is not None:
                    refresh_gauges(self._state)
            except OSError:
                logger.exception("worker %d could not reach %s", self.pid, self.root)
            await asyncio.sleep(FOLLOW_EVERY_S)

    async def _apply(self, paths: list[Path]) -> None:
        assert self._state is not None
        registry = self._state.registry
        for path in sorted(paths):
            error = ""
            try:
                command = json.loads(path.read_text())
                if command["action"] == "load":
                    await registry.load(command["model"])
                elif command["action"] == "unload":
                    await registry.unload(command["model"])
                logger.info("%s %s: applied (from worker %s)", *command.values())
            except Exception as exc:  # reported to the worker that asked; this one goes on
                error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                logger.error("%s failed: %s", path.name, error)
            (self.root / "commands" / f"{path.stem}.ack-{self.pid}").write_text(error)
            self.publish()

    def _command_files(self) -> list[Path]:
        return sorted((self.root / "commands").glob("*.json"))


def refresh_gauges(state: AppState) -> None:
    """Queue depth and model state of this worker (a scrape sums the live workers')."""
    metrics = state.metrics
    for entry in state.registry.entries:
        depth = sum(m.batcher.queue_depth for m in entry.versions.values())
        metrics.queue_depth.labels(entry.name).set(depth)
        metrics.set_model_state(entry.name, entry.state.value)


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mark_dead(root: Path, pid: int) -> None:
    from prometheus_client import multiprocess

    metrics = root / "metrics"
    if metrics.is_dir():
        multiprocess.mark_process_dead(pid, str(metrics))  # type: ignore[no-untyped-call]
