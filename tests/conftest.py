"""Shared fixtures: a real kerasserve server on 127.0.0.1, started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.live_server import LiveServer, live_server
from tests.support.trained import cache_home

# Tests that count batch sizes need the configured maximum, not the one start-up calibration
# picks on this machine; servers started by tests (and Settings built in them) inherit this.
# tests/integration/test_calibration.py turns it back on.
os.environ.setdefault("KERASSERVE_CALIBRATE_BATCH", "false")
os.environ.setdefault("KERASSERVE_TUNE_BATCH", "false")
# Every server a test starts runs the default path, as a user's does (`--runtime auto`:
# OpenVINO when it passes its check against Keras, `--precision auto`); the Keras subset asks
# for `--runtime keras` where Keras itself is the subject (the live batch tuner, the JAX twin,
# the fine-tuned file's exact probabilities). The OpenVINO export of a model is cached
# (the suite's own cache, below), so only a model's first start pays for it.
# The access log is off by default (a cost on every request); the observability tests read it.
os.environ.setdefault("KERASSERVE_ACCESS_LOG", "true")
# The suite's servers export (and choose precisions for) a few dozen distinct models; at the
# server's default of 16 cached entries each run evicted what the next start needed, so every
# run exported and quantised them all again. Room for all of them keeps "only a model's first
# start pays for it" true; the pruning itself is tested in test_openvino_runtime.py.
os.environ.setdefault("KERASSERVE_CACHE_MAX_ENTRIES", "96")
# ...in a cache of the suite's own, beside the trained models (tests/support/trained.py's
# cache_home(): $KERASSERVE_TEST_CACHE, else ~/.cache/kerasserve/tests). The user's cache,
# ~/.cache/kerasserve/openvino, is shared with servers that keep the default of 16 entries:
# the README test's (it starts `kerasserve serve` with no KERASSERVE_* variable, as a newcomer
# does: "OpenVINO cache: removed 10-20 least recently used entries" in every run), `python -m
# bench`'s and a developer's own. Each pruned the suite's entries, so every run exported,
# quantised and gated some 13 models again. Tests that need a cold cache still set their own
# KERASSERVE_CACHE_DIR (test_precision, test_int8, test_openvino_runtime).
os.environ.setdefault("KERASSERVE_CACHE_DIR", str(cache_home() / "server"))


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    """MobileNetV2 with random weights on the default runtime, small buckets so warm-up is quick."""
    with live_server(
        "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "16",
        "--runtime", "auto",
    ) as srv:  # fmt: skip
        yield srv
