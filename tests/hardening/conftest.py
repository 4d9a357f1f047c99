"""Servers for the hardening suite.

`server` (tests/conftest.py) has the default limits. `tight` is one real `kerasserve serve`
subprocess with small limits, API keys and CORS, shared by every test that needs them: a
queue of 4 and batches of 2 make overload reachable with a few dozen clients, and its
`TMPDIR` is an empty folder, so a test can prove no upload ever becomes a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import LiveServer, live_server

API_KEYS = ("key-one", "key-two")
ORIGIN = "https://app.example"
UPLOAD_TIMEOUT_S = 3.0


@dataclass
class Tight:
    server: LiveServer
    tmpdir: Path
    max_body_bytes: int = 1024 * 1024
    max_images: int = 3
    max_pixels: int = 4_000_000
    max_queue: int = 4
    max_batch_size: int = 2

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def auth(self) -> dict[str, str]:
        return {"X-API-Key": API_KEYS[0]}

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.auth, timeout=60, **kwargs)


@pytest.fixture(scope="session")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tight]:
    tmpdir = tmp_path_factory.mktemp("tight-server-tmpdir")
    args = [
        "--model", "MobileNetV2", "--weights", "none",
        "--max-batch-size", "2", "--max-queue", "4",
        "--max-body-mb", "1", "--max-images", "3", "--max-pixels", "4000000",
        "--cors-origin", ORIGIN,
    ]  # fmt: skip
    for key in API_KEYS:
        args += ["--api-key", key]
    env = {
        "KERASSERVE_UPLOAD_TIMEOUT_S": str(UPLOAD_TIMEOUT_S),
        "TMPDIR": str(tmpdir),
        "TEMP": str(tmpdir),
        "TMP": str(tmpdir),
    }
    with live_server(*args, env=env) as srv:
        yield Tight(srv, tmpdir)


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        yield c
