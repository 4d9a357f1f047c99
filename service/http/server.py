"""uvicorn's server with draining built in: SIGTERM is the normal way to stop."""

from __future__ import annotations

import signal
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI


class DrainingServer(uvicorn.Server):
    """On SIGTERM or SIGINT `/readyz` turns 503 at once (load balancers stop sending), the
    accepted requests finish, and the process exits 0: plain uvicorn re-raises SIGTERM after
    a graceful shutdown, which makes the exit status 143."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state = getattr(self._app.state, "kerasserve", None)
        if state is not None and not state.draining:
            state.draining = True
            state.drain_started = time.monotonic()
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:
            self._captured_signals = [s for s in self._captured_signals if s != sig]
