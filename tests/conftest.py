"""Shared fixtures: a real kerasserve server on 127.0.0.1, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live_server import LiveServer, live_server


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    """MobileNetV2 with random weights, small buckets so warm-up is quick."""
    with live_server(
        "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "16"
    ) as srv:
        yield srv
