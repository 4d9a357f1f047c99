"""The README's first command, exactly: `kerasserve serve`, then its `curl` with a photo.

Nothing pins the runtime or turns calibration off (the conftest's test defaults are removed
from the environment): this is the default path a new user takes, `--runtime auto` and all.
Offline, `--weights auto` falls back to random weights, loudly; the port comes from
`KERASSERVE_PORT` because 8000 may be taken on a test machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.support.live_server import LiveServer, block_until_ready, free_port
from tests.support.models import photos

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_commands_start_a_server_that_classifies_a_photo():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"^pip install -e \"\.\[server\]\" && (kerasserve serve)\s", readme, re.M)
    assert command, "the README's first command changed: update this test with it"
    assert command.group(1).split() == ["kerasserve", "serve"]
    curl = re.search(
        r"^curl -F image=@photo\.jpg localhost:8000(/v1/models/\S+/predict)$", readme, re.M
    )
    assert curl, "the README's curl example changed: update this test with it"
    executable = shutil.which("kerasserve") or ""
    argv = [executable] if executable else [sys.executable, "-m", "kerasserve.service"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASSERVE_")}
    env.update(KERASSERVE_PORT=str(port), TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    log = tempfile.NamedTemporaryFile(prefix="kerasserve-readme-", suffix=".log", delete=False)  # noqa: SIM115
    started = time.monotonic()
    proc = subprocess.Popen(
        [*argv, "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    server = LiveServer(f"http://127.0.0.1:{port}", port, proc, Path(log.name))
    try:
        block_until_ready(server, timeout=540)
        ready_s = time.monotonic() - started
        photo = photos(1, seed=7)[0]
        r = httpx.post(
            f"{server.base_url}{curl.group(1)}",
            files={"image": ("photo.jpg", photo, "image/jpeg")},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"]["name"] == "MobileNetV2"
        (result,) = body["results"]
        assert len(result["predictions"]) == 5
        info = httpx.get(f"{server.base_url}/v1/models/MobileNetV2", timeout=10).json()
        # The default path: auto chose among the runtimes that passed, and says so.
        assert info["runtime"]["selection"], info["runtime"]
        if info["weights"]["random"]:
            assert "not available offline" in info["weights"]["warning"]
        print(f"README server ready in {ready_s:.1f} s, runtime {info['runtime']['name']}")  # noqa: T201
    finally:
        server.stop()
        log.close()
