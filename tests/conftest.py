"""Shared fixtures: a real kerasserve server on 127.0.0.1, started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.live_server import LiveServer, live_server

# Tests that count batch sizes need the configured maximum, not the one start-up calibration
# picks on this machine; servers started by tests (and Settings built in them) inherit this.
# tests/integration/test_calibration.py turns it back on.
os.environ.setdefault("KERASSERVE_CALIBRATE_BATCH", "false")
os.environ.setdefault("KERASSERVE_TUNE_BATCH", "false")
# Servers a test starts for itself run Keras unless they ask (each new model would pay its own
# OpenVINO export and timing); the session server below, which most of the integration,
# hardening and deployment tiers talk to, runs the default path (`--runtime auto`: OpenVINO
# when it passes its check, `--precision auto`), as a user's server does.
os.environ.setdefault("KERASSERVE_RUNTIME", "keras")
# The access log is off by default (a cost on every request); the observability tests read it.
os.environ.setdefault("KERASSERVE_ACCESS_LOG", "true")


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    """MobileNetV2 with random weights on the default runtime, small buckets so warm-up is quick."""
    with live_server(
        "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "16",
        "--runtime", "auto",
    ) as srv:  # fmt: skip
        yield srv
