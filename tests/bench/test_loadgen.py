"""The load generator against a real asyncio HTTP server on 127.0.0.1 whose answers come in waves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from bench.loadgen import closed_loop, multipart_request

BODY = b'{"predictions": []}'


@contextlib.asynccontextmanager
async def slow_server(service_s: float) -> AsyncIterator[int]:
    """Answers every request `service_s` after it arrived, keep-alive: 32 clients sent at once
    come back at once, as from a server that shares its cores among every request."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                await asyncio.sleep(service_s)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
                    + BODY
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.timeout(30)
async def test_a_server_slower_than_the_warmup_is_measured_after_its_first_wave() -> None:
    # Each wave of 8 answers takes 1 s: 8 img/s. A 0.1 s warm-up and a 0.2 s window (even
    # extended 3x) would close before any answer; the window opens after the first wave and
    # grows until the next one ends.
    async with slow_server(1.0) as port:
        request = multipart_request("127.0.0.1", port, "/predict", "a.jpg", b"\xff\xd8" * 100)
        result = await closed_loop("127.0.0.1", port, [request], 8, 0.1, 0.2)
    assert result.errors == 0
    assert len(result.ok) >= 8
    assert len(result.ok) / result.window_s == pytest.approx(8.0, rel=0.25)
    assert result.drained


@pytest.mark.timeout(30)
async def test_a_fast_server_keeps_the_window_asked_for() -> None:
    async with slow_server(0.01) as port:
        request = multipart_request("127.0.0.1", port, "/predict", "a.jpg", b"\xff\xd8" * 100)
        result = await closed_loop("127.0.0.1", port, [request], 4, 0.2, 1.0)
    assert result.window_s == pytest.approx(1.0, abs=0.15)
    assert len(result.ok) > 4 * 20  # four clients, 10 ms each, one second
