"""The Dockerfile: hadolint, the issue's promises (stages, user, health, signal), its scripts."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.tools import ROOT, compose, dockerfile_instructions, load_script, require_binary
from tests.support.live_server import LiveServer, free_port

INSTRUCTIONS = dockerfile_instructions()
requirements = load_script(ROOT / "deploy/docker/requirements.py").requirements


def _all(keyword: str) -> list[str]:
    return [args for kw, args in INSTRUCTIONS if kw == keyword]


def _runtime_stage() -> list[tuple[str, str]]:
    starts = [i for i, (kw, _) in enumerate(INSTRUCTIONS) if kw == "FROM"]
    return INSTRUCTIONS[starts[-1] :]


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for kw, args in stage:
        if kw == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", args):
                env[key] = value
    return env


def test_hadolint_passes():
    hadolint = require_binary("hadolint")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_a_slim_base():
    bases = _all("FROM")
    assert len(bases) >= 2, "a build stage and a runtime stage"
    assert all("-slim" in base for base in bases), bases
    runtime = _runtime_stage()
    # The runtime stage copies the built environment and installs nothing with a compiler.
    assert any(kw == "COPY" and "--from=build" in args for kw, args in runtime)
    assert not any(kw == "RUN" and "apt-get" in args for kw, args in runtime)


def test_runs_as_a_numeric_non_root_user():
    users = [args for kw, args in _runtime_stage() if kw == "USER"]
    assert users, "the runtime stage must switch user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), users[-1]
    assert int(uid) != 0, users[-1]
    k8s = (ROOT / "deploy/k8s/deployment.yaml").read_text()
    assert f"runAsUser: {uid}" in k8s, "the Deployment must run as the image's user"


def test_weights_are_fetched_as_the_serving_user_into_keras_home():
    runtime = _runtime_stage()
    fetch = [i for i, (kw, args) in enumerate(runtime) if kw == "RUN" and "fetch-weights" in args]
    user = [i for i, (kw, _) in enumerate(runtime) if kw == "USER"]
    assert fetch
    assert user
    assert user[-1] < fetch[0], "fetch-weights must run after USER"
    assert _env(runtime)["KERAS_HOME"].startswith("/opt/")
    assert "ARG MODELS" in "\n".join(f"{kw} {args}" for kw, args in runtime)


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ("MobileNetV2,ResNet50", ["fetch-weights", "MobileNetV2", "ResNet50"]),
        ("MobileNetV2", ["fetch-weights", "MobileNetV2"]),
        ("", None),
    ],
)
def test_fetch_weights_line_passes_each_model(tmp_path: Path, models: str, expected):
    """Run the Dockerfile's own RUN line under bash with a stub `kerasserve` that records argv."""
    (line,) = [args for kw, args in INSTRUCTIONS if kw == "RUN" and "fetch-weights" in args]
    shell = json.loads(_all("SHELL")[-1])
    record = tmp_path / "argv.json"
    stub = tmp_path / "kerasserve"
    stub.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "MODELS": models}
    subprocess.run([*shell, line], env=env, check=True)
    got = json.loads(record.read_text()) if record.exists() else None
    assert got == expected


def test_environment_names_real_settings():
    from kerasserve.service.settings import Settings

    env = {k: v for k, v in _env(_runtime_stage()).items() if k.startswith("KERASSERVE_")}
    fields = {f"KERASSERVE_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    assert "KERASSERVE_DRAIN_TIMEOUT_S" in env
    assert env["KERASSERVE_HOST"] == "0.0.0.0"


def test_stop_signal_and_drain_fit_the_grace_periods():
    assert _all("STOPSIGNAL") == ["SIGTERM"]
    drain = float(_env(_runtime_stage())["KERASSERVE_DRAIN_TIMEOUT_S"])
    service = compose()["services"]["kerasserve"]
    grace = float(service["stop_grace_period"].rstrip("s"))
    assert float(service["environment"]["KERASSERVE_DRAIN_TIMEOUT_S"]) == drain
    assert grace >= drain + 5, f"compose stop_grace_period {grace}s leaves no slack after {drain}s"


def test_healthcheck_probes_readyz_with_the_script_the_image_copies():
    (health,) = _all("HEALTHCHECK")
    command = json.loads(health.split("CMD", 1)[1])
    assert command[-1] == "/readyz"
    copies = {args.split()[-1]: args.split()[-2] for kw, args in INSTRUCTIONS if kw == "COPY"}
    assert command[1] in copies, f"{command[1]} is not copied into the image"
    assert (ROOT / copies[command[1]]).is_file()
    assert compose()["services"]["kerasserve"]["healthcheck"]["test"][1:] == command


def _healthcheck(port: int, path: str = "/readyz") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "deploy/docker/healthcheck.py"), path],
        env={**os.environ, "KERASSERVE_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_healthcheck_script_passes_on_a_ready_server(server: LiveServer):
    result = _healthcheck(server.port)
    assert result.returncode == 0, result.stderr
    assert _healthcheck(server.port, "/healthz").returncode == 0


def test_healthcheck_script_fails_when_nothing_listens():
    result = _healthcheck(free_port())
    assert result.returncode == 1
    assert "/readyz" in result.stderr


def test_requirements_come_from_pyproject():
    cpu = requirements(ROOT / "pyproject.toml", ["server"])
    names = " ".join(cpu)
    for name in ("tensorflow-cpu", "fastapi", "uvicorn", "pillow"):
        assert name in names
    assert not any(r.startswith(("pytest", "ruff", "mypy")) for r in cpu), "no dev tools"
    cuda = requirements(ROOT / "pyproject.toml", ["server"], tensorflow="cuda")
    assert cuda[0].startswith("tensorflow[and-cuda]")
    assert not any(r.startswith(("tensorflow-cpu", "tensorflow>")) for r in cuda)
    with pytest.raises(ValueError, match="unknown extras"):
        requirements(ROOT / "pyproject.toml", ["nope"])


def test_dockerignore_lets_in_every_source_the_build_copies():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for kw, args in INSTRUCTIONS:
        if kw == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                top = source.rstrip("/")
                assert any(top == a or top.startswith(a + "/") for a in allowed), source
                assert (ROOT / top).exists(), f"COPY {source}: not in the repository"


def test_every_package_of_pyproject_is_copied_into_the_build():
    """A package left out of the build context builds a wheel without it (the web page, once)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    copied = [
        args.split()[0].rstrip("/")
        for kw, args in INSTRUCTIONS
        if kw == "COPY" and "--from" not in args
    ]
    root = ROOT / setuptools["package-dir"][""]
    assert setuptools["package-dir"][""] in copied, "the links in src/ are not copied"
    for package in setuptools["packages"]:
        # src/ holds links to the real folders (src/kerasserve/service -> ../../service)
        source = str((root / package.replace(".", "/")).resolve().relative_to(ROOT))
        assert any(source == c or source.startswith(c + "/") for c in copied), (package, source)
