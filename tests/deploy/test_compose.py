"""docker-compose.yml: valid under the Compose spec, consistent with nginx and the server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.tools import DEPLOY, ROOT, compose, load_yaml, nginx_directive, require_module

COMPOSE = ROOT / "docker-compose.yml"


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    require_module("check_jsonschema")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", path],
        capture_output=True,
        text=True,
        check=False,
    )


def test_valid_against_the_compose_specification():
    result = _check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_mistake(tmp_path: Path):
    """A control: the same check must reject a misspelt key, or it proves nothing."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("stop_grace_period:", "stop_grace_periode:", 1))
    result = _check_jsonschema(broken)
    assert result.returncode != 0
    assert "stop_grace_periode" in result.stdout + result.stderr


def test_replicas_behind_nginx():
    services = compose()["services"]
    assert int(services["kerasserve"]["deploy"]["replicas"]) >= 2
    assert "ports" not in services["kerasserve"], "replicas are reached only through nginx"
    nginx = services["nginx"]
    assert nginx["depends_on"]["kerasserve"]["condition"] == "service_healthy"
    assert any(v.startswith("./deploy/nginx/nginx.conf:") for v in nginx["volumes"])
    # nginx's upstream names the compose service and the port the server listens on.
    conf = (DEPLOY / "nginx/nginx.conf").read_text()
    port = services["kerasserve"]["environment"]["KERASSERVE_PORT"]
    assert re.search(rf"^\s*server kerasserve:{port}\b", conf, flags=re.MULTILINE)
    assert "least_conn;" in conf


def test_upload_limit_matches_the_server():
    env = compose()["services"]["kerasserve"]["environment"]
    (limit,) = nginx_directive((DEPLOY / "nginx/nginx.conf").read_text(), "client_max_body_size")
    # nginx's `m` is MiB, and so is the server's MB (Settings.max_body_bytes = MB * 1024 * 1024).
    assert limit == f"{int(env['KERASSERVE_MAX_BODY_MB'])}m"


def test_environment_parses_as_server_settings(monkeypatch: pytest.MonkeyPatch):
    from kerasserve.service.settings import Settings

    env = compose()["services"]["kerasserve"]["environment"]
    for key, value in env.items():
        if key.startswith("KERASSERVE_") and value is not None:
            monkeypatch.setenv(key, str(value))
    settings = Settings()
    assert settings.host == "0.0.0.0"
    assert settings.max_body_mb == 10
    assert settings.drain_timeout_s == 30
    unknown = {k for k in env if k.startswith("KERASSERVE_")} - {
        f"KERASSERVE_{name.upper()}" for name in Settings.model_fields
    }
    assert not unknown


def test_health_checks_and_graceful_stop():
    services = compose()["services"]
    for name in ("kerasserve", "kerasserve-gpu"):
        service = services[name]
        assert service["healthcheck"]["test"][-1] == "/readyz"
        assert service["stop_signal"] == "SIGTERM"
        drain = float(service["environment"]["KERASSERVE_DRAIN_TIMEOUT_S"])
        assert float(service["stop_grace_period"].rstrip("s")) > drain
    assert "healthcheck" in services["nginx"]


def test_gpu_profile_reserves_an_nvidia_device():
    gpu = compose()["services"]["kerasserve-gpu"]
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert gpu["build"]["args"]["TENSORFLOW"] == "cuda"
    assert "kerasserve" in gpu["networks"]["default"]["aliases"], "nginx must find it"


def test_monitoring_profile_is_wired_to_its_files():
    services = compose()["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), volume
    scrape = load_yaml(DEPLOY / "prometheus/prometheus.yml")["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["dns_sd_configs"][0]["names"] == ["kerasserve"]


def test_rate_limits_are_counted_in_the_shared_redis():
    """Replicas count limits in the compose Redis (one count across replicas), wait for it to
    be healthy, and the Redis is reachable only inside the compose network."""
    services = compose()["services"]
    replica = services["kerasserve"]
    env = replica["environment"]
    assert env["KERASSERVE_RATE_LIMIT_STORAGE"] == "redis://redis:6379/0"
    assert replica["depends_on"]["redis"]["condition"] == "service_healthy"
    redis = services["redis"]
    assert redis["image"].startswith("redis:")
    assert "ports" not in redis
    assert "redis-cli" in redis["healthcheck"]["test"]
    # Secrets pass through from the shell or .env only, never with a value written here.
    for secret in ("KERASSERVE_WECHAT_SECRET", "KERASSERVE_TOKEN_SECRET"):
        assert secret in env
        assert env[secret] is None


def test_nginx_keeps_admin_routes_closed_by_default():
    """The template's admin switch is filled in by the image (its filter lets it through) and
    is `off` unless the deployment says otherwise."""
    nginx = compose()["services"]["nginx"]["environment"]
    assert nginx["KERASSERVE_NGINX_ADMIN"] == "off"
    names = set(re.findall(r"\$\{(\w+)\}", (DEPLOY / "nginx/nginx.conf").read_text()))
    assert "KERASSERVE_NGINX_ADMIN" in names
    assert all(re.search(nginx["NGINX_ENVSUBST_FILTER"], name) for name in names)
