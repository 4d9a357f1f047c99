"""`python -m bench.multi_photo` alone, briefly: every photo of an 8-photo request is answered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

for module in ("psutil", "sklearn"):
    pytest.importorskip(module, reason=f"the benchmark needs {module}")


@pytest.mark.timeout(200)
def test_eight_photos_per_request_against_one_alone(tmp_path: Path) -> None:
    # The Keras runtime and batches up to 8: the quickest start (this checks the plumbing).
    proc = subprocess.run(
        [sys.executable, "-m", "bench.multi_photo", "--clients", "8", "--warmup", "0.3"]
        + ["--duration", "1", "--server-arg=--runtime=keras", "--server-arg=--max-batch-size=8"]
        + ["--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=190,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    section = json.loads((tmp_path / "multi_photo.json").read_text())
    assert section["results_per_request"] == {"1": 1, "8": 8}
    one, eight = section["points"]
    assert (one["photos_per_request"], eight["photos_per_request"]) == (1, 8)
    assert one["errors"] == eight["errors"] == 0
    assert eight["img_s"] == pytest.approx(8 * eight["req_s"])
    assert one["img_s"] == pytest.approx(one["req_s"])
    assert eight["mean_batch"] >= 1
    assert "8 photos per request: " in proc.stdout
