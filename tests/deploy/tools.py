"""Helpers for the deployment checks: find the tools they need, read the files they check."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALL_HINT = "install it as .ci/run does"


def _missing(what: str) -> None:
    """Skip a check whose tool is missing on a developer's machine; under CI, fail it."""
    message = f"{what} is not installed; {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run this check)")
    pytest.skip(message)


def require_binary(name: str, *extra_dirs: str) -> str:
    """Path of executable `name` from PATH, this Python's scripts folder or `extra_dirs`."""
    path = shutil.which(name, path=os.pathsep.join([sysconfig.get_path("scripts"), *extra_dirs]))
    path = path or shutil.which(name)
    if path is None:
        _missing(f"`{name}`")
    assert path is not None
    return path


def require_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        _missing(f"the Python package providing `{name}`")


def load_script(path: Path) -> ModuleType:
    """Import a standalone script (deploy/ is not a package) by its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


_DEFAULT = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's `${VAR:-default}` with every variable unset: what `docker compose up` uses."""
    if isinstance(value, str):
        return _DEFAULT.sub(lambda m: m.group("default") or "", value)
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


def compose() -> dict[str, Any]:
    """docker-compose.yml with YAML anchors resolved and defaults interpolated."""
    data: dict[str, Any] = interpolate(load_yaml(ROOT / "docker-compose.yml"))
    return data


def dockerfile_instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not pending):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def nginx_directive(conf: str, name: str) -> list[str]:
    """Values of every `name ...;` directive in an nginx config (no nesting awareness)."""
    return re.findall(rf"^\s*{re.escape(name)}\s+([^;]*);", conf, flags=re.MULTILINE)
