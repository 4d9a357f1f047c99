"""Graceful shutdown: SIGTERM to a real `kerasserve serve` under load.

Every client uses `Expect: 100-continue`: the server says `100 Continue` only once the app
reads the body, so when all of them have it, every request is accepted, beyond doubt. Then
SIGTERM: each accepted request must get its 200, new connections must be refused, and the
process must exit 0 within the drain timeout.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field

import pytest

from tests.hardening import support
from tests.hardening.support import PREDICT
from tests.support.live_server import live_server

# A drain deadline: run alone, after the parallel run (Makefile).
pytestmark = pytest.mark.serial

CLIENTS = 24
DRAIN_S = 30


@dataclass
class Run:
    accepted: int = 0
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused_new_connection: bool | None = None
    alive_when_refused: bool = False
    pending_when_refused: int = 0
    exit_code: int | None = None
    exit_s: float = 0.0
    log: str = ""


async def _client(port: int, i: int, accepted: asyncio.Queue, run: Run) -> None:
    body, headers = support.multipart(support.file_part(support.jpeg((320, 240))))
    head = support.request_head(
        "POST",
        PREDICT,
        {
            **headers,
            "Content-Length": str(len(body)),
            "Expect": "100-continue",
            "X-Request-ID": f"drain-{i}",
        },
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        writer.write(body)
        await writer.drain()
        await accepted.put(i)
        response_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
        parsed = support.parse_response(response_head)
        length = int(parsed.headers.get("content-length", "0"))
        await asyncio.wait_for(reader.readexactly(length), 30)
        run.statuses.append(parsed.status)
        writer.close()
    except (OSError, asyncio.IncompleteReadError, TimeoutError, AssertionError) as exc:
        run.errors.append(f"client {i}: {exc!r}")


async def _scenario(server, run: Run) -> None:
    accepted: asyncio.Queue[int] = asyncio.Queue()
    clients = [asyncio.create_task(_client(server.port, i, accepted, run)) for i in range(CLIENTS)]
    for _ in range(CLIENTS):
        await asyncio.wait_for(accepted.get(), 120)
        run.accepted += 1
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)

    # Once uvicorn says it is shutting down, a new connection must find no listener.
    while "Shutting down" not in server.log():
        assert time.monotonic() - sent < 30, "the server never began shutting down"
        await asyncio.sleep(0.02)
    # uvicorn logs the line just before it closes its listener: allow it a moment.
    run.refused_new_connection = False
    seen = time.monotonic()
    while time.monotonic() - seen < 1.0:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        except ConnectionRefusedError:
            run.refused_new_connection = True
            run.alive_when_refused = server.process.poll() is None
            break
        writer.close()
        await asyncio.sleep(0.05)
    run.pending_when_refused = sum(not c.done() for c in clients)

    await asyncio.gather(*clients)
    while server.process.poll() is None and time.monotonic() - sent < DRAIN_S + 30:
        await asyncio.sleep(0.05)
    run.exit_s = time.monotonic() - sent
    run.exit_code = server.process.poll()


@pytest.fixture(scope="module")
def run() -> Run:
    result = Run()
    with live_server(
        "--model", "MobileNetV2", "--weights", "none",
        "--max-batch-size", "1", "--drain-timeout-s", str(DRAIN_S),
    ) as server:  # fmt: skip
        asyncio.run(_scenario(server, result))
        result.log = server.log()
    print(
        f"\nshutdown: {result.accepted} accepted, {result.statuses.count(200)} answered 200, "
        f"other {[s for s in result.statuses if s != 200]}, errors {len(result.errors)}; "
        f"{result.pending_when_refused} still in flight when a new connection was refused; "
        f"exit code {result.exit_code} after {result.exit_s:.1f} s"
    )
    return result


def test_every_accepted_request_is_answered(run):
    assert run.accepted == CLIENTS
    assert run.errors == []
    assert run.statuses == [200] * CLIENTS


def test_new_connections_are_refused_once_shutdown_begins(run):
    assert run.refused_new_connection is True
    assert run.alive_when_refused  # refused while draining, not because the process was gone


def test_process_exits_within_the_drain_timeout_after_draining(run):
    assert run.exit_code is not None, "still running after the drain timeout"
    assert run.exit_s < DRAIN_S
    assert "Application shutdown complete" in run.log
    assert "timeout graceful shutdown exceeded" not in run.log


def test_exit_code_is_zero(run):
    """Regression: plain uvicorn re-raised SIGTERM after draining, so the exit was -15."""
    assert run.exit_code == 0
