"""deploy/k8s/: valid against Kubernetes' schemas (offline), and the probes and drain add up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import DEPLOY, compose, load_yaml_all, require_module

K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
OLDEST = "1.29.0"  # the oldest Kubernetes these manifests promise to work on


def _resources() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for path in K8S for doc in load_yaml_all(path)}


def _versions() -> list[str]:
    require_module("kubernetes_validate")
    from kubernetes_validate.utils import all_versions, latest_version

    oldest = OLDEST if OLDEST in all_versions() else min(all_versions(), key=_key)
    return sorted({oldest, latest_version()}, key=_key)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@pytest.mark.parametrize("path", K8S, ids=lambda p: p.name)
def test_valid_against_kubernetes_schemas(path: Path):
    for version in _versions():
        result = subprocess.run(
            [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", version, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{version}: {result.stdout}{result.stderr}"
        assert "passed" in result.stdout + result.stderr


def test_the_schema_check_catches_a_mistake(tmp_path: Path):
    """A control: strict validation must reject a misspelt probe, or it proves nothing."""
    broken = tmp_path / "deployment.yaml"
    text = (DEPLOY / "k8s/deployment.yaml").read_text()
    broken.write_text(text.replace("readinessProbe:", "readynessProbe:", 1))
    (version, *_) = _versions()
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", version, str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0


def test_every_kind_the_issue_asks_for():
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= set(
        _resources()
    )


def test_probes_and_drain():
    deployment = _resources()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(_resources()["ConfigMap"]["data"]["KERASSERVE_DRAIN_TIMEOUT_S"])
    assert pod["terminationGracePeriodSeconds"] >= float(pre_stop[1]) + drain + 5
    # One drain timeout everywhere.
    compose_env = compose()["services"]["kerasserve"]["environment"]
    assert drain == float(compose_env["KERASSERVE_DRAIN_TIMEOUT_S"])
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_selectors_and_targets_agree():
    r = _resources()
    labels = r["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        r["Deployment"]["spec"]["selector"]["matchLabels"],
        r["Service"]["spec"]["selector"],
        r["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    target = r["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", r["Deployment"]["metadata"]["name"])
    assert r["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2, "the PDB needs a spare"
    (container,) = r["Deployment"]["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}
    assert r["Service"]["spec"]["ports"][0]["targetPort"] in port_names
    config = r["Deployment"]["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]
    assert config["configMapRef"]["name"] == r["ConfigMap"]["metadata"]["name"]


def test_configmap_names_real_settings(monkeypatch: pytest.MonkeyPatch):
    from kerasserve.service.settings import Settings

    data = _resources()["ConfigMap"]["data"]
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    Settings()  # parses
    fields = {f"KERASSERVE_{name.upper()}" for name in Settings.model_fields}
    assert set(data) <= fields
