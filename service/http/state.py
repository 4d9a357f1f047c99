"""The typed state the lifespan yields: models, thread pools, settings and metrics."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypedDict

from fastapi import Request

from kerasserve.service.http.metrics import Metrics
from kerasserve.service.http.workers import WorkerGroup
from kerasserve.service.inference.registry import Registry
from kerasserve.service.settings import Settings


@dataclass
class AppState:
    settings: Settings
    registry: Registry
    decode_pool: ThreadPoolExecutor
    metrics: Metrics
    draining: bool = False
    drain_started: float | None = None
    # With --workers N > 1: this worker's siblings (readiness, admin broadcasts).
    workers: WorkerGroup | None = None

    def drain_left(self) -> float:
        """Seconds of the drain budget left (all of it if no drain has started)."""
        import time

        budget = self.settings.drain_timeout_s
        if self.drain_started is None:
            return budget
        return max(0.0, budget - (time.monotonic() - self.drain_started))


class LifespanState(TypedDict):
    app: AppState


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    state: AppState = request.state.app
    return state
