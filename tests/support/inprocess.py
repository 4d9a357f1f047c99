"""A real uvicorn server on 127.0.0.1 running in a thread of the test process (httpx's pattern),
so a test can reach the served Keras models themselves."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from kerasserve.service.http.app import create_app
from kerasserve.service.http.state import AppState
from kerasserve.service.settings import Settings
from tests.support.live_server import free_port


class ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # signals belong to the main thread
        pass


@contextlib.contextmanager
def inprocess_server(
    settings: Settings, timeout: float = 300
) -> Iterator[tuple[str, AppState, FastAPI]]:
    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    app = create_app(settings)
    server = ThreadedServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("in-process server failed to start")
        if time.monotonic() > deadline:
            raise TimeoutError("in-process server not ready")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}", app.state.kerasserve, app
    finally:
        server.should_exit = True
        thread.join(60)
