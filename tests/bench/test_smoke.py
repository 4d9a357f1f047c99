"""Smoke runs of the benchmark: `python -m bench --quick` finishes and writes results that parse."""

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


def run_bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.timeout(200)
def test_quick_run_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    proc = run_bench("--quick", "--out", str(tmp_path), timeout=190)
    assert proc.returncode == 0, proc.stderr[-3000:]

    result = json.loads((tmp_path / "latest.json").read_text())
    assert result["command"].startswith("python -m bench --quick")
    (raw,) = result["raw"]["raw-keras"]
    assert "by_batch" in raw, raw
    assert raw["best_img_s"] > 0
    assert raw["detail"].startswith("tf.function(model(")
    targets = {p["target"]: p for p in result["points"]}
    assert set(targets) == {"ceiling", "keras"}, result["targets"]
    for point in targets.values():
        assert point["concurrency"] == 8
        assert point["img_s"] > 0, point
        assert point["errors"] == 0, point
        assert point["p50_ms"] <= point["p99_ms"]
        assert point["server_cpu_cores"] > 0
    assert targets["keras"]["server_peak_rss_mb"] > 100
    assert targets["keras"]["mean_batch"] >= 1
    assert result["targets"]["keras"]["runtime"] == "keras"
    checks = {c["name"]: c for c in result["checks"]}
    ceiling = checks["front-end ceiling"]
    assert ceiling["measured"] == pytest.approx(
        targets["keras"]["img_s"] / targets["ceiling"]["img_s"]
    )
    assert checks["batching vs raw Keras"]["measured"] is not None
    # `--runtime keras` again, kept up while the raw limit runs, then measured: in turn.
    turns = result["keras_vs_raw"]
    assert turns["passes"] == 1
    (raw_turn,) = turns["raw"]
    assert "by_batch" in raw_turn, raw_turn
    (served,) = turns["points"]
    assert served["target"] == "keras"
    assert served["img_s"] > 0
    assert served["errors"] == 0
    assert "medians of 1 interleaved passes" in checks["batching vs raw Keras"]["detail"]

    table = (tmp_path / "latest.md").read_text()
    assert "| kerasserve --runtime keras | 8 |" in table
    assert "| front-end ceiling (no model) | 8 |" in table
    assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(400)
def test_fresh_starts_are_all_up_at_once_and_measured_in_interleaved_rounds(
    tmp_path: Path,
) -> None:
    proc = run_bench(
        "--quick",
        "--targets",
        "default",
        "--starts",
        "2",
        "--spread-rounds",
        "2",
        "--out",
        str(tmp_path),
        timeout=390,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "latest.json").read_text())
    spread = result["spread"]
    assert spread["rounds"] == 2
    assert [s["start"] for s in spread["starts"]] == [1, 2]
    for start in spread["starts"]:
        assert len(start["rounds_img_s"]) == 2, start
        assert start["img_s"] == pytest.approx(sum(start["rounds_img_s"]) / 2)
        assert start["errors"] == 0
        assert start["max_batch_size"] >= 1
    # Both starts were up before the first round: every round measures each of them once,
    # the second in the other order.
    rounds = [line for line in proc.stderr.splitlines() if ", round " in line]
    assert [line.split("] ")[1][:16] for line in rounds] == [
        "start 1, round 1",
        "start 2, round 1",
        "start 2, round 2",
        "start 1, round 2",
    ]
    starting = [i for i, line in enumerate(proc.stderr.splitlines()) if "-start2:" in line]
    first_round = next(i for i, line in enumerate(proc.stderr.splitlines()) if ", round " in line)
    assert starting
    assert starting[0] < first_round
    assert "measured in 2 interleaved rounds" in (tmp_path / "latest.md").read_text()


@pytest.mark.timeout(300)
def test_the_ceiling_and_the_near_free_model_are_measured_again_side_by_side(
    tmp_path: Path,
) -> None:
    proc = run_bench(
        "--quick",
        "--targets",
        "ceiling,nearfree",
        "--side-by-side-passes",
        "2",
        "--out",
        str(tmp_path),
        timeout=290,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "latest.json").read_text())
    section = result["side_by_side"]
    assert section["targets"] == ["ceiling", "nearfree"]
    measured = [(p["pass"], p["target"], p["concurrency"]) for p in section["points"]]
    # Both up at once, every pass measures each, the order rotating.
    assert measured == [
        (1, "ceiling", 8),
        (1, "nearfree", 8),
        (2, "nearfree", 8),
        (2, "ceiling", 8),
    ]
    assert all(p["errors"] == 0 and p["img_s"] > 0 for p in section["points"])
    checks = {c["name"]: c for c in result["checks"]}
    assert "medians of 2 interleaved passes" in checks["near-free vs ceiling"]["detail"]
    table = (tmp_path / "latest.md").read_text()
    assert "### Front end and workers, side by side" in table
    assert "measured in 2 interleaved passes" in table


@pytest.mark.timeout(120)
def test_a_flag_the_server_refuses_skips_that_target_with_its_stderr_line(tmp_path: Path) -> None:
    proc = run_bench(
        "--quick",
        "--targets",
        "keras",
        "--server-arg=--no-such-flag",
        "--out",
        str(tmp_path),
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "latest.json").read_text())
    entry = result["targets"]["keras"]
    assert entry["status"] == "skipped"
    assert "unrecognized arguments: --no-such-flag" in entry["reason"]
    assert result["points"] == []
    assert "skipped: " in (tmp_path / "latest.md").read_text()


def test_an_unknown_target_is_refused_with_the_known_names() -> None:
    proc = run_bench("--targets", "keras,nope", timeout=60)
    assert proc.returncode == 2
    assert "unknown target(s) ['nope']" in proc.stderr
    assert "raw-keras" in proc.stderr
