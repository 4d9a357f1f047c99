"""A lean closed-loop HTTP/1.1 load generator: asyncio streams and pre-built request bytes.

Each of `concurrency` clients keeps one keep-alive connection and sends its next request
as soon as the previous answer is read in full. Requests are built once (headers and
multipart body in one `bytes`), so a send is one `write`; a response is parsed just far
enough to know its status and length. The generator's own CPU (getrusage of this process)
is measured over the same window as the server's, and reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import resource
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

OK_MARKER = b'"predictions"'


def multipart_request(host: str, port: int, path: str, filename: str, data: bytes) -> bytes:
    """One POST with `data` in the multipart field `image`, as raw bytes."""
    return multipart_request_many(host, port, path, [(filename, data)])


def multipart_request_many(
    host: str, port: int, path: str, files: list[tuple[str, bytes]]
) -> bytes:
    """One POST with every (filename, data) in a multipart part named `image` of its own: the
    form the Python SDK sends for several photos (the server reads every `image` part)."""
    boundary = uuid.uuid4().hex
    parts = []
    for filename, data in files:
        parts += [
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="image"; filename="{filename}"\r\n'.encode(),
            b"Content-Type: image/jpeg\r\n\r\n",
            data,
            b"\r\n",
        ]
    body = b"".join([*parts, f"--{boundary}--\r\n".encode()])
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "User-Agent: kerasserve-bench\r\n"
        "Accept: application/json\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep_alive) of one HTTP/1.x response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    version, status = lines[0].split(b" ", 2)[:2]
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            key, value = line.split(b":", 1)
            headers[key.strip().lower()] = value.strip().lower()
    connection = headers.get(b"connection", b"")
    keep_alive = connection != b"close" and (version != b"HTTP/1.0" or connection == b"keep-alive")
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding") == b"chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        body = b"".join(chunks)
    else:
        body, keep_alive = await reader.read(), False
    return int(status), body, keep_alive


async def http_get(host: str, port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    """A one-off GET on its own connection (readiness, metrics)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        status, body, _ = await asyncio.wait_for(read_response(reader), timeout)
        return status, body
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@dataclass
class Sample:
    start: float
    end: float
    ok: bool
    error: str | None = None


@dataclass
class LoadResult:
    concurrency: int
    window_s: float
    samples: list[Sample]  # those that ended inside the measurement window
    generator_cpu_s: float
    total_requests: int
    drained: bool
    hooks: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def errors(self) -> int:
        return sum(not s.ok for s in self.samples)


class Client:
    def __init__(self, host: str, port: int, requests: list[bytes], offset: int) -> None:
        self.host, self.port, self.requests, self.next = host, port, requests, offset
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def one(self, timeout: float) -> Sample:
        payload = self.requests[self.next % len(self.requests)]
        self.next += 1
        start = time.perf_counter()
        try:
            if self.writer is None:
                await self._connect()
            assert self.reader is not None
            assert self.writer is not None
            self.writer.write(payload)
            status, body, keep_alive = await asyncio.wait_for(read_response(self.reader), timeout)
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
        ) as exc:
            self.close()
            return Sample(start, time.perf_counter(), False, type(exc).__name__)
        end = time.perf_counter()
        if not keep_alive:
            self.close()
        ok = status == 200 and OK_MARKER in body
        return Sample(start, end, ok, None if ok else f"HTTP {status}")


async def closed_loop(
    host: str,
    port: int,
    requests: list[bytes],
    concurrency: int,
    warmup_s: float,
    measure_s: float,
    *,
    on_window_start: Callable[[], Awaitable[Any]] | None = None,
    on_window_end: Callable[[], Awaitable[Any]] | None = None,
    request_timeout_s: float = 120,
    drain_timeout_s: float = 60,
    max_measure_s: float | None = None,
) -> LoadResult:
    """Run `concurrency` clients; measure the requests that end in [warmup, warmup + measure].

    The warm-up lasts at least until as many requests as clients have completed (at most
    `request_timeout_s` longer). The window is extended (up to `max_measure_s`, default 3x
    `measure_s`, or twice the warm-up when that was longer) until as many requests as
    clients have completed in it.

    After the window no client starts a new request; in-flight ones are awaited (up to
    `drain_timeout_s`) so that no abandoned work leaks into the next measurement.
    """
    max_measure_s = max(measure_s, max_measure_s if max_measure_s is not None else 3 * measure_s)
    clients = [Client(host, port, requests, i) for i in range(concurrency)]
    all_samples: list[Sample] = []
    t0 = time.perf_counter()
    window = (t0 + warmup_s, t0 + warmup_s + measure_s)
    stop = asyncio.Event()

    async def run(client: Client) -> None:
        while not stop.is_set():
            sample = await client.one(request_timeout_s)
            all_samples.append(sample)
            if not sample.ok and sample.error and not sample.error.startswith("HTTP"):
                await asyncio.sleep(0.05)  # a refused connection must not spin

    tasks = [asyncio.create_task(run(c)) for c in clients]
    hooks: dict[str, Any] = {}
    await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
    # Warm-up lasts until as many requests as clients have completed: a server that shares
    # its cores among every request in flight answers the first wave of 32 only after 32
    # service times, and a window that opens before it would count nothing.
    longest_warmup = window[0] + request_timeout_s  # by then every first request has ended
    while time.perf_counter() < longest_warmup and len(all_samples) < concurrency:
        await asyncio.sleep(0.1)
    now = time.perf_counter()
    window = (now, now + measure_s)
    # ... and the window may grow to twice the warm-up, for the next wave to end inside it.
    max_measure_s = max(max_measure_s, 2 * (now - t0))
    cpu_start = _cpu()
    if on_window_start is not None:
        hooks["start"] = await on_window_start()
    await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
    # A slow target completes few requests per window: extend it until every client has
    # finished about one request in it, so that its throughput is not a handful of samples.
    longest = window[0] + max_measure_s
    while (
        time.perf_counter() < longest and sum(s.end >= window[0] for s in all_samples) < concurrency
    ):
        await asyncio.sleep(0.2)
    window = (window[0], max(window[1], time.perf_counter()))
    cpu = _cpu() - cpu_start
    if on_window_end is not None:
        hooks["end"] = await on_window_end()
    stop.set()
    done, pending = await asyncio.wait(tasks, timeout=drain_timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in clients:
        client.close()
    inside = [s for s in all_samples if window[0] <= s.end <= window[1]]
    return LoadResult(
        concurrency=concurrency,
        window_s=window[1] - window[0],
        samples=inside,
        generator_cpu_s=cpu,
        total_requests=len(all_samples),
        drained=not pending,
        hooks=hooks,
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (cheaper per request), else asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
