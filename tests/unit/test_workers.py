"""`--workers`: the auto rule, the divided thread budgets, the workers' environment, and the
shared folder's readiness rules (no process started here but one that exits at once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from kerasserve.service.http.workers import (
    SETTINGS_ENV,
    TOKEN_SECRET_ENV,
    WorkerGroup,
    WorkerStatus,
    auto_workers,
    available_cores,
    worker_count,
    worker_env,
    worker_settings,
)
from kerasserve.service.settings import Settings


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 1), (3, 1), (4, 2), (16, 8), (64, 32)])
def test_auto_is_one_worker_below_four_cores_then_one_per_two(cores, workers):
    assert auto_workers(cores) == workers


def test_workers_setting_takes_auto_or_a_count():
    assert Settings().workers == "auto"
    assert Settings(workers="3").workers == 3
    assert worker_count(Settings(workers="auto"), cores=2) == 1
    assert worker_count(Settings(workers="auto"), cores=8) == 4
    assert worker_count(Settings(workers=5), cores=2) == 5  # asked for: served as asked
    with pytest.raises(ValidationError, match="workers"):
        Settings(workers="0")
    with pytest.raises(ValidationError, match="workers"):
        Settings(workers="many")


def test_thread_budgets_are_divided_unless_set():
    divided = worker_settings(Settings(), workers=4, cores=16)
    assert divided.workers == 4
    assert divided.tf_intra_op_threads == 4
    assert divided.tf_inter_op_threads == 4
    assert divided.runtime_threads == 4
    assert divided.decode_workers == 4
    mine = worker_settings(
        Settings(decode_workers=6, tf_intra_op_threads=2, runtime_threads=3), workers=4, cores=16
    )
    assert (mine.decode_workers, mine.tf_intra_op_threads, mine.runtime_threads) == (6, 2, 3)
    # More workers than cores: each still gets one thread, never zero (TensorFlow's "all").
    assert worker_settings(Settings(), workers=3, cores=2).tf_intra_op_threads == 1


def test_cgroup_quota_caps_the_cores(tmp_path):
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")
    assert available_cores(quota) == min(len(os.sched_getaffinity(0)), 2)
    quota.write_text("max 100000\n")
    assert available_cores(quota) == len(os.sched_getaffinity(0))
    assert available_cores(tmp_path / "absent") == len(os.sched_getaffinity(0))


def test_worker_env_shares_the_gpu_and_keeps_secrets_out_of_the_json(tmp_path, monkeypatch):
    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
    monkeypatch.delenv(TOKEN_SECRET_ENV, raising=False)
    monkeypatch.setenv("KERASSERVE_API_KEYS", "k1")
    settings = worker_settings(Settings(), workers=2, cores=2)
    env = worker_env(tmp_path, settings, 2)
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "metrics")
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.450"
    assert env["KERASSERVE_RUNTIME_THREADS"] == "1"
    rebuilt = Settings(**json.loads(env[SETTINGS_ENV]))
    assert rebuilt.api_keys == ["k1"]
    assert rebuilt.workers == 2
    assert rebuilt.tf_intra_op_threads == 1
    if "token_secret" in Settings.model_fields:
        assert "**" not in env[SETTINGS_ENV]
        assert len(env[TOKEN_SECRET_ENV]) >= 32  # one login-token key for every worker
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.2")
    assert worker_env(tmp_path, settings, 2)["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.2"


def _group(tmp_path: Path, size: int) -> WorkerGroup:
    for sub in ("metrics", "workers", "commands"):
        (tmp_path / sub).mkdir(exist_ok=True)
    return WorkerGroup(tmp_path, size)


def _status(root: Path, status: WorkerStatus) -> None:
    (root / "workers" / f"{status.pid}.json").write_text(json.dumps(status.__dict__))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_ready_only_when_every_live_worker_is(tmp_path):
    group = _group(tmp_path, 2)
    _status(tmp_path, WorkerStatus(os.getpid(), ready=True, draining=False))
    assert group.all_ready() == (False, "loading: 1 of 2 workers ready")
    dead = _dead_pid()
    _status(tmp_path, WorkerStatus(dead, ready=True, draining=False))
    # a dead worker's file counts for nothing, and goes
    assert group.all_ready() == (False, "loading: 1 of 2 workers ready")
    assert not (tmp_path / "workers" / f"{dead}.json").exists()
    _status(tmp_path, WorkerStatus(os.getppid(), ready=True, draining=False))
    assert group.all_ready() == (True, None)
    _status(tmp_path, WorkerStatus(os.getppid(), ready=False, draining=True))
    assert group.all_ready() == (False, "draining")
