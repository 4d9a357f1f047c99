"""The twins themselves: same API, lifecycle, readiness polling, the async concurrency bound."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys

import httpx
import pytest

from kerasserve_client import (
    AsyncClient,
    Client,
    ConnectError,
    InvalidImage,
    ReadyTimeout,
    Unauthorized,
)
from tests.unit.client.conftest import BASE_URL
from tests.unit.client.fake_server import JPEG, FakeServer, error


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def test_the_twins_offer_the_same_calls_with_the_same_parameters():
    sync, asynchronous = _public(Client), _public(AsyncClient)
    sync["aclose"] = sync.pop("close")

    assert sync.keys() == asynchronous.keys()
    for name, signature in sync.items():
        other = asynchronous[name]
        assert list(other.parameters) == list(signature.parameters), name
        assert [p.default for p in other.parameters.values()] == [
            p.default for p in signature.parameters.values()
        ], name
        iterators = {"predict_iter": "ImageOutcome", "features_iter": "FeatureOutcome"}
        if name in iterators:  # an async iterator, checked before the first `anext()`
            assert other.return_annotation == f"AsyncIterator[{iterators[name]}]"
            assert signature.return_annotation == f"Iterator[{iterators[name]}]"
        else:
            assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name


def test_the_twins_take_the_same_constructor_arguments():
    assert (
        inspect.signature(Client).parameters.keys()
        == inspect.signature(AsyncClient).parameters.keys()
    )


def test_the_sync_client_closes_what_it_opened():
    with Client(BASE_URL, transport=FakeServer().transport()) as client:
        client.health()
    assert client._http.is_closed


async def test_the_async_client_closes_what_it_opened():
    async with AsyncClient(BASE_URL, transport=FakeServer().transport()) as client:
        await client.health()
    assert client._http.is_closed


def test_a_users_own_http_client_is_used_and_left_open():
    fake = FakeServer()
    with httpx.Client(transport=fake.transport(), headers={"x-pool": "mine"}) as own:
        with Client(BASE_URL, http_client=own) as client:
            client.health()
        assert not own.is_closed
    assert fake.requests[0].headers["x-pool"] == "mine"


async def test_a_users_own_async_http_client_is_used_and_left_open():
    fake = FakeServer()
    async with httpx.AsyncClient(transport=fake.transport()) as own:
        async with AsyncClient(BASE_URL, http_client=own) as client:
            await client.health()
        assert not own.is_closed
    assert len(fake.requests) == 1


def test_transport_and_http_client_together_are_refused():
    with pytest.raises(ValueError, match="either transport= or http_client="):
        Client(transport=httpx.MockTransport(FakeServer()), http_client=httpx.Client())


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://host", ""])
def test_a_base_url_without_http_scheme_is_refused(url):
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        Client(url)


def test_repr_names_the_server():
    assert repr(Client("http://h:1/")) == "Client('http://h:1')"


async def test_wait_until_ready_polls_through_refusals_and_503s(make, fake):
    fake.script("GET", "/readyz", httpx.ConnectError("refused"), httpx.ConnectError("refused"))
    fake.script(
        "GET", "/readyz", httpx.Response(503, json={"ready": False, "models": {"M": "loading"}})
    )
    client = make(retry=0)

    readiness = await client.wait_until_ready(10, interval=0.5)

    assert readiness.ready
    assert client.sleeps == [0.5, 0.5, 0.5]
    assert fake.paths() == ["GET /readyz"] * 4


async def test_wait_until_ready_gives_up_with_the_last_state(make, fake):
    fake.ready = False
    client = make()

    with pytest.raises(
        ReadyTimeout, match=r"not ready after 2 s; last: models MobileNetV2: ready"
    ) as caught:
        await client.wait_until_ready(2, interval=0.5)

    assert caught.value.last is not None
    assert caught.value.last.ready is False
    assert sum(client.sleeps) == pytest.approx(2)


async def test_wait_until_ready_on_a_dead_server_says_it_cannot_connect(make, fake):
    fake.script("GET", "/readyz", *[httpx.ConnectError("refused")] * 10)
    client = make()

    with pytest.raises(ReadyTimeout, match="cannot connect") as caught:
        await client.wait_until_ready(1, interval=0.25)

    assert isinstance(caught.value.__cause__, ConnectError)


async def test_wait_until_ready_raises_other_errors_at_once(make, fake):
    fake.script("GET", "/readyz", error(401, "unauthorized", "bad key"))
    client = make()

    with pytest.raises(Unauthorized):
        await client.wait_until_ready(30)

    assert client.sleeps == []


async def test_async_predict_many_keeps_at_most_concurrency_requests_in_flight():
    fake = FakeServer()
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):  # let every other task run up to its own request
            await asyncio.sleep(0)
        in_flight -= 1
        return fake(request)

    async with AsyncClient(
        BASE_URL, model="MobileNetV2", transport=httpx.MockTransport(handler)
    ) as client:
        answer = await client.predict_many(
            [JPEG + bytes(i) for i in range(12)], per_request=2, concurrency=3
        )

    assert peak == 3
    assert [r.predictions[0].index for r in answer.results] == [len(JPEG) + i for i in range(12)]


async def test_async_predict_many_cancels_the_rest_after_a_failure():
    started: list[int] = []
    cancelled: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        number = len(started)
        started.append(number)
        if number == 0:
            await asyncio.sleep(0)
            return error(400, "invalid_image", "first one is bad")
        try:
            await asyncio.Event().wait()  # the others hang until cancelled
        except asyncio.CancelledError:
            cancelled.append(number)
            raise
        raise AssertionError("unreachable")

    async with AsyncClient(BASE_URL, model="M", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(InvalidImage, match="first one is bad"):
            await client.predict_many([JPEG] * 4, per_request=1, concurrency=4)

    assert sorted(cancelled) == [1, 2, 3]


@pytest.mark.parametrize("concurrency", [0, -2])
async def test_async_concurrency_below_one_is_refused(concurrency):
    async with AsyncClient(BASE_URL, model="M", transport=FakeServer().transport()) as client:
        with pytest.raises(ValueError, match=f"concurrency must be >= 1, got {concurrency}"):
            await client.predict_many([JPEG], concurrency=concurrency)


def test_importing_the_sdk_and_its_cli_pulls_in_nothing_heavy():
    heavy = [
        "tensorflow",
        "keras",
        "fastapi",
        "starlette",
        "PIL",
        "numpy",
        "uvicorn",
        "kerasserve.service",
    ]
    code = (
        "import sys, kerasserve_client, kerasserve_client.cli\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"
