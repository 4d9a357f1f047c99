"""`serve --workers 2` behind one port: metrics summed over both, readiness of both, a hot swap
that reaches both under load, and SIGTERM draining both with nothing lost."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.hardening import support
from tests.integration.test_model_repository import images, png, tiny_model
from tests.support.live_server import LiveServer, live_server

# Worker supervision and readiness deadlines: run alone, after the parallel run (Makefile).
pytestmark = pytest.mark.serial

PREDICT = "/v1/models/m/predict"
ADMIN_KEY = "boss-key"
# The tests tell the workers apart by the pid on each access line (off by default).
ACCESS_LOG = {"KERASSERVE_ACCESS_LOG": "true"}
ACCESS = re.compile(r"kerasserve\.access (\d+) \[([^\]]+)\] method=POST")


def answered_by(server: LiveServer) -> dict[str, int]:
    """Request id -> pid of the worker that logged its access line."""
    return {rid: int(pid) for pid, rid in ACCESS.findall(server.log())}


def worker_pids(server: LiveServer) -> list[int]:
    return [int(p) for p in re.findall(r"Started server process \[(\d+)\]", server.log())]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("workers-repository")
    (root / "m" / "1").mkdir(parents=True)
    tiny_model("softmax", 3, seed=0).save(root / "m" / "1" / "model.keras")
    (root / "m" / "config.toml").write_text('preprocess = "tf"\n')
    return root


@pytest.fixture(scope="module")
def server(repo):
    with live_server(
        "--model-repository", str(repo), "--workers", "2", "--admin-key", ADMIN_KEY, env=ACCESS_LOG
    ) as srv:
        yield srv


async def _hammer(
    base_url: str, clients: int, stop: asyncio.Event, out: list[tuple[float, str, int, int]]
) -> list[str]:
    """Clients posting one photo each in a loop until `stop`: (time sent, request id, status,
    version) per answer; returns the errors (no answer at all). Each request opens its own
    connection, so the kernel spreads them over the workers."""
    photo = png(images(1)[0])
    errors: list[str] = []

    async def client(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            rid = uuid.uuid4().hex[:16]
            sent = time.monotonic()
            try:
                r = await http.post(PREDICT, files={"image": photo}, headers={"X-Request-ID": rid})
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
                continue
            version = r.json()["model"]["version"] if r.status_code == 200 else -1
            out.append((sent, rid, r.status_code, version))

    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return errors


def test_metrics_sum_every_worker(server):
    before = support.scrape(server.base_url)
    rids: list[str] = []

    async def send(count: int) -> list[int]:
        photo = png(images(1)[0])
        batch = [uuid.uuid4().hex[:16] for _ in range(count)]
        rids.extend(batch)
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection, any worker
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as http:
            responses = await asyncio.gather(
                *(
                    http.post(PREDICT, files={"image": photo}, headers={"X-Request-ID": rid})
                    for rid in batch
                )
            )
        return [r.status_code for r in responses]

    # The kernel hands each connection to whichever worker accepts first: on a busy machine
    # one may take a whole burst, so send bursts until both have answered.
    pids: set[int] = set()
    while len(pids) < 2 and len(rids) < 400:
        assert asyncio.run(send(20)) == [200] * 20
        support.wait_for(
            lambda: set(rids) <= set(answered_by(server)), 10, "an access line per request"
        )
        pids = {answered_by(server)[rid] for rid in rids}
    assert len(pids) == 2, f"one worker answered all {len(rids)} requests: {pids}"
    sent = len(rids)
    route = "/v1/models/{model}/predict"
    # Each worker refreshes its queue-depth gauge every FOLLOW_EVERY_S (0.2 s): on a busy
    # machine the other worker's last value may still be from inside the burst for a moment.
    support.wait_for(
        lambda: support.scrape(server.base_url).get("kerasserve_queue_depth", model="m") == 0,
        10,
        "every worker's queue depth back to 0",
        poll=0.2,
    )
    # Every scrape (whichever worker answers it) counts both workers' requests.
    for _ in range(6):
        after = support.scrape(server.base_url)
        requests = after.get("kerasserve_http_requests_total", route=route, status="200")
        count = before.get("kerasserve_http_requests_total", route=route, status="200")
        assert requests - count == sent
        images_seen = after.get("kerasserve_images_total", model="m")
        assert images_seen - before.get("kerasserve_images_total", model="m") == sent
        assert after.get("kerasserve_queue_depth", model="m") == 0
        assert after.get("kerasserve_model_state", model="m", kerasserve_model_state="ready") == 1
    promtool = shutil.which("promtool")
    if promtool is not None:  # the summed exposition is as valid as one process's
        text = httpx.get(f"{server.base_url}/metrics").text
        check = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_hot_swap_reaches_every_worker_under_load(server, repo):
    (repo / "m" / "2").mkdir()
    tiny_model("softmax", 3, seed=7).save(repo / "m" / "2" / "model.keras")
    answers: list[tuple[float, str, int, int]] = []

    async def scenario() -> tuple[list[str], float]:
        stop = asyncio.Event()
        load = asyncio.create_task(_hammer(server.base_url, 8, stop, answers))
        await asyncio.sleep(1.0)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=300) as http:
            r = await http.post("/v1/models/m/load", headers={"X-API-Key": ADMIN_KEY})
        assert r.status_code == 200, r.text
        swapped = time.monotonic()
        # Until both workers have answered requests sent after the swap (or 60 s).
        deadline = swapped + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            by_pid = answered_by(server)
            if len({by_pid.get(a[1]) for a in answers if a[0] > swapped} - {None}) == 2:
                break
        stop.set()
        return await load, swapped

    errors, swapped = asyncio.run(scenario())
    assert errors == []
    assert [a for a in answers if a[2] != 200] == []
    before = [a for a in answers if a[0] < swapped]
    after = [a for a in answers if a[0] > swapped]  # sent after the load answered
    assert {a[3] for a in before} >= {1}
    assert after, "no answer after the swap"
    assert {a[3] for a in after} == {2}, "an answer from the old version after the load"
    by_pid = answered_by(server)
    assert len({by_pid[a[1]] for a in after if a[1] in by_pid}) == 2, "one worker answered"
    # On the default runtime version 2 may not hold version 1's reduced precision (its gate
    # judges the new weights) and chooses again; no worker may die of it (one did, when the
    # refused runtime's OpenVINO objects were freed by a garbage collection on a serving thread).
    assert "died" not in server.log()


def test_readyz_is_503_while_any_worker_is_not_ready(server):
    assert httpx.get(f"{server.base_url}/readyz").status_code == 200
    victim = worker_pids(server)[-1]
    os.kill(victim, signal.SIGKILL)  # the supervisor restarts it; it loads its models again
    seen: list[int] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        r = httpx.get(f"{server.base_url}/readyz", timeout=10)
        seen.append(r.status_code)
        if r.status_code == 503:
            assert "1 of 2 workers ready" in r.json()["detail"]
            # the surviving worker still answers predictions meanwhile
            photo = png(images(1)[0])
            assert httpx.post(f"{server.base_url}{PREDICT}", files={"image": photo}).is_success
        if 503 in seen and r.status_code == 200:
            break
        time.sleep(0.1)
    assert 503 in seen, "readyz said 200 while a worker was down"
    assert seen[-1] == 200, "the restarted worker never became ready"
    assert len(worker_pids(server)) == 3  # two at start, one restarted


@dataclass
class Drain:
    accepted: int = 0
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused: bool = False
    exit_code: int | None = None


async def _accepted_client(port: int, i: int, accepted: asyncio.Queue, run: Drain) -> None:
    """One request the server has accepted beyond doubt (`100 Continue` came), then its answer."""
    body, headers = support.multipart(support.file_part(png(images(1)[0]), filename=b"a.png"))
    head = support.request_head(
        "POST",
        PREDICT,
        {**headers, "Content-Length": str(len(body)), "Expect": "100-continue"},
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head)
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        writer.write(body)
        await writer.drain()
        await accepted.put(i)
        parsed = support.parse_response(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120))
        await asyncio.wait_for(reader.readexactly(int(parsed.headers["content-length"])), 30)
        run.statuses.append(parsed.status)
        writer.close()
    except (OSError, asyncio.IncompleteReadError, TimeoutError, AssertionError) as exc:
        run.errors.append(f"client {i}: {exc!r}")


def test_sigterm_drains_every_worker(repo):
    clients = 32
    run = Drain()

    async def scenario(server: LiveServer) -> None:
        accepted: asyncio.Queue[int] = asyncio.Queue()
        tasks = [
            asyncio.create_task(_accepted_client(server.port, i, accepted, run))
            for i in range(clients)
        ]
        for _ in range(clients):
            await asyncio.wait_for(accepted.get(), 120)
            run.accepted += 1
        server.process.send_signal(signal.SIGTERM)
        await asyncio.gather(*tasks)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.close()
            except ConnectionRefusedError:
                run.refused = True
                break
            await asyncio.sleep(0.05)
        while server.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        run.exit_code = server.process.poll()

    with live_server(
        "--model-repository", str(repo), "--workers", "2", "--max-batch-size", "1"
    ) as server:
        asyncio.run(scenario(server))
        log = server.log()
    assert run.accepted == clients
    assert run.errors == []
    assert run.statuses == [200] * clients
    assert run.refused, "the port still took connections after the drain"
    assert run.exit_code == 0
    assert log.count("Application shutdown complete") == 2, "a worker did not drain"
