"""Smoke run of the benchmark: `python -m bench --quick` finishes and writes results that parse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

for module in ("flask", "psutil", "matplotlib", "sklearn"):
    pytest.importorskip(
        module, reason=f"the benchmark needs {module} (pip install 'kerasserve[bench]')"
    )


@pytest.mark.timeout(240)
def test_quick_run_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    result = json.loads((tmp_path / "latest.json").read_text())
    assert result["command"].startswith("python -m bench --quick")
    raw = result["raw"]["keras"][0]
    assert "unavailable" not in raw, raw
    assert raw["best_img_s"] > 0
    assert raw["decode"]["phone"]["ms_per_img"] > 0
    targets = {p["target"]: p for p in result["points"]}
    assert set(targets) == {"seed-flask", "kerasserve-keras"}, result["targets"]
    for point in targets.values():
        assert point["img_s"] > 0, point
        assert point["errors"] == 0, point
        assert point["p50_ms"] <= point["p99_ms"]
        assert point["server_cpu_cores"] > 0
        assert point["server_peak_rss_mb"] > 100
    assert targets["kerasserve-keras"]["mean_batch"] >= 1
    assert {c["name"] for c in result["checks"]} >= {"batching vs raw", "waiting costs nothing"}

    table = (tmp_path / "latest.md").read_text()
    assert "| small | kerasserve-keras | 8 |" in table
    assert "| small | seed-flask | 8 |" in table
    assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
