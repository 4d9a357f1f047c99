"""Fixtures that run one test body against both twins, over a `FakeServer` (no network)."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kerasserve_client import AsyncClient, Client
from kerasserve_client.cli import add_client_commands
from tests.unit.client.fake_server import FakeServer

BASE_URL = "http://kerasserve.test"


class FakeClock:
    """Monotonic time that moves only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Twin:
    """`Client` or `AsyncClient` behind one awaitable face: `await twin.predict(...)` for both."""

    def __init__(self, client: Client | AsyncClient, clock: FakeClock) -> None:
        self.client = client
        self.clock = clock
        self.is_async = isinstance(client, AsyncClient)
        client._clock = clock
        client._sleep = clock.asleep if self.is_async else clock.sleep

    @property
    def sleeps(self) -> list[float]:
        return self.clock.sleeps

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not callable(attr) or inspect.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return attr(*args, **kwargs)

        return call

    async def close(self) -> None:
        if isinstance(self.client, AsyncClient):
            await self.client.aclose()
        else:
            self.client.close()


@pytest.fixture
def fake() -> FakeServer:
    return FakeServer()


@pytest.fixture(params=["sync", "async"])
async def make(
    request: pytest.FixtureRequest, fake: FakeServer
) -> AsyncIterator[Callable[..., Twin]]:
    """`make(**client_kwargs)` builds the twin under test, talking to `fake` unless told otherwise."""
    made: list[Twin] = []

    def build(server: FakeServer | None = None, **kwargs: Any) -> Twin:
        cls = AsyncClient if request.param == "async" else Client
        client = cls(BASE_URL, transport=(server or fake).transport(), **kwargs)
        twin = Twin(client, FakeClock())
        made.append(twin)
        return twin

    yield build
    for twin in made:
        await twin.close()


def client_parser(fake: FakeServer, *, local_models: Callable[..., int] | None = None):
    """The `kerasserve` parser with the client commands talking to `fake`; `local_models`
    registers a `models` command first, as the server's CLI does."""

    def factory(url, **kwargs):
        kwargs["retry"] = 0  # what the retry flags build is tested in test_retry.py
        return Client(url, transport=fake.transport(), **kwargs)

    parser = argparse.ArgumentParser(prog="kerasserve")
    sub = parser.add_subparsers(dest="command", required=True)
    if local_models is not None:
        models = sub.add_parser("models")
        models.add_argument("--json", action="store_true")
        models.set_defaults(func=local_models)
    add_client_commands(sub, client_factory=factory)
    return parser


@pytest.fixture
def run(fake):
    """Run a client command against `fake`; returns (exit code, stdout, stderr)."""
    parser = client_parser(fake)

    def run_command(capsys, *argv: object) -> tuple[int, str, str]:
        args = parser.parse_args([str(a) for a in argv])
        code = args.func(args)
        out, err = capsys.readouterr()
        return code, out, err

    return run_command
