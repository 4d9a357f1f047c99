"""The front end's cost per request with no sockets: an ASGI driver inside the server's own process.

`bench/frontend.py` measures over sockets, where uvicorn's parsing and the load generator's
share of the two cores blur what each server costs. This drives the app itself (uvloop, as
uvicorn runs it; the lifespan state handed to every request's scope, as uvicorn does) with
CLIENTS closed-loop clients sending the small photos as the load generator uploads them
(`bench.loadgen`), and reports, over SECONDS after 2 s of warm-up:

- requests per second, and the process CPU per request;
- that CPU split by thread: the decode pool (`decode_*` threads), the event loop (the main
  thread) and every other thread (`native`: OpenVINO's streams and its callbacks);
- the decoder's own CPU per image (`time.thread_time` around `decode_image`).

The decode is the same work in both apps, so the decoder's CPU per image is the unit to
compare the rest against when the host's speed drifts between runs.

Run: `python -m bench.inprocess nearfree 32 5` (or `ceiling`); interleave the two, one process
each, and compare medians.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from bench import images
from bench.loadgen import multipart_request

_decode_ns = [0, 0]  # CPU ns in decode_image, calls


def _timed_decode(module: Any) -> None:
    """Count `module.decode_image`'s CPU time (its caller's thread) into `_decode_ns`."""
    decode: Callable[..., Any] = module.decode_image

    def timed(*args: Any) -> Any:
        start = time.thread_time_ns()
        try:
            return decode(*args)
        finally:
            _decode_ns[0] += time.thread_time_ns() - start
            _decode_ns[1] += 1

    module.decode_image = timed


def build(target: str) -> tuple[Any, str]:
    """The app and the path its predict route answers on."""
    if target == "ceiling":
        import bench.ceiling as ceiling

        _timed_decode(ceiling)
        return ceiling.create_app(), f"/v1/models/{ceiling.MODEL}/predict"
    import kerasserve.service.inference.loaded as loaded
    from bench.nearfree import NAME, model_path
    from kerasserve.service.http.app import create_app
    from kerasserve.service.settings import Settings

    _timed_decode(loaded)
    settings = Settings(model_file=str(model_path()), preprocess="none")
    return create_app(settings), f"/v1/models/{NAME}/predict"


def thread_cpu() -> dict[tuple[int, str], float]:
    """CPU seconds of every thread of this process, by (native id, kind)."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[tuple[int, str], float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        native = int(tid)
        if native == os.getpid():
            kind = "loop"
        elif names.get(native, "").startswith("decode"):
            kind = "decode"
        else:
            kind = "native"
        out[(native, kind)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def upload(path: str, data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The load generator's own request for `data` (`bench.loadgen`), as ASGI headers and body."""
    raw = multipart_request("127.0.0.1", 8000, path, "photo.jpg", data)
    head, body = raw.split(b"\r\n\r\n", 1)
    headers = []
    for line in head.split(b"\r\n")[1:]:
        name, value = line.split(b": ", 1)
        headers.append((name.lower(), value))
    return headers, body


async def drive(target: str, clients: int, seconds: float) -> dict[str, Any]:
    app, path = build(target)
    uploads = [upload(path, photo.data) for photo in images.load("small", limit=32)]
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()
    state: dict[str, Any] = {}

    async def life_send(message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            started.set()
        if kind == "lifespan.shutdown.complete":
            stopped.set()

    life = asyncio.ensure_future(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state},
            lifespan.get,
            life_send,
        )
    )
    await lifespan.put({"type": "lifespan.startup"})
    # A start-up that fails ends the lifespan task instead of completing: say why, not hang.
    waiting = asyncio.ensure_future(started.wait())
    await asyncio.wait({life, waiting}, return_when=asyncio.FIRST_COMPLETED)
    if not started.is_set():
        waiting.cancel()
        life.result()  # the app's own start-up error, if it raised one
        raise RuntimeError(f"{target}: the app did not start")

    statuses: collections.Counter[int] = collections.Counter()
    counted = [0]
    measuring, stopping = [False], [False]

    async def one(i: int) -> None:
        headers, body = uploads[i % len(uploads)]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": dict(state),
        }
        sent, answered = [False], asyncio.Event()

        async def receive() -> dict[str, Any]:
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()  # the client stays until its answer is in
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] += 1

        await app(scope, receive, send)
        answered.set()

    async def client(k: int) -> None:
        i = k
        while not stopping[0]:
            await one(i)
            await asyncio.sleep(0)  # a request that fails at once must not starve the loop
            i += clients
            if measuring[0]:
                counted[0] += 1

    tasks = [asyncio.ensure_future(client(k)) for k in range(clients)]
    await asyncio.sleep(2.0)
    measuring[0] = True
    _decode_ns[:] = [0, 0]
    before, cpu0, t0 = thread_cpu(), time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    after, cpu1, t1 = thread_cpu(), time.process_time(), time.perf_counter()
    measuring[0] = False
    decoded_ns, decodes = _decode_ns
    stopping[0] = True
    await asyncio.gather(*tasks)
    await lifespan.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(stopped.wait(), 30)
    await life

    n = max(counted[0], 1)
    by_kind: collections.Counter[str] = collections.Counter()
    for key, cpu in after.items():
        by_kind[key[1]] += cpu - before.get(key, 0.0)
    return {
        "target": target,
        "clients": clients,
        "req_s": counted[0] / (t1 - t0),
        "cpu_ms_per_req": (cpu1 - cpu0) / n * 1e3,
        "threads_ms_per_req": {k: round(v / n * 1e3, 3) for k, v in sorted(by_kind.items())},
        "decode_cpu_ms": decoded_ns / max(decodes, 1) / 1e6,
        "statuses": dict(statuses),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=["ceiling", "nearfree"])
    parser.add_argument("clients", type=int, nargs="?", default=32)
    parser.add_argument("seconds", type=float, nargs="?", default=5.0)
    args = parser.parse_args(argv)
    try:
        import uvloop

        run: Callable[..., Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with the server extra
        run = asyncio.run
    r = run(drive(args.target, args.clients, args.seconds))
    print(
        f"{r['target']} {r['clients']} clients: {r['req_s']:.0f} req/s, CPU "
        f"{r['cpu_ms_per_req']:.3f} ms/req {r['threads_ms_per_req']}, decode "
        f"{r['decode_cpu_ms']:.3f} ms/image, statuses {r['statuses']}",
        flush=True,
    )


if __name__ == "__main__":
    main()
