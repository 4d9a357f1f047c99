"""`pip install ./clients/python` into a fresh venv gives a working SDK and CLI on its own: no
TensorFlow, FastAPI, Keras, OpenVINO or Pillow. The server's own wheel installs its packages
under the `kerasserve` namespace only.

Needs the package index (for setuptools, httpx, pydantic). Skipped offline, except under CI
(`CI` set), where an unreachable index is a failure, not a reason to skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.support.live_server import ROOT
from tests.support.models import photos

HEAVY = ("tensorflow", "keras", "fastapi", "starlette", "uvicorn", "PIL", "openvino", "numpy")
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")
# What the build needs is the source, not caches, node_modules or earlier build output.
IGNORE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", "node_modules", ".venv",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", "test-artifacts", ".kerasserve-cache",
)  # fmt: skip

SCRIPT = """
import asyncio, sys
import kerasserve_client
from kerasserve_client import AsyncClient, Client, InvalidImage, ModelNotFound

url, photo = sys.argv[1], sys.argv[2]
assert "site-packages" in kerasserve_client.__file__, kerasserve_client.__file__
with Client(url) as client:
    client.wait_until_ready(60)
    answer = client.predict(photo, model="MobileNetV2", top_k=3)
    assert answer.results[0].filename == "photo.jpg"
    assert len(answer.results[0].predictions) == 3
    try:
        client.predict(photo, model="NoSuchNet")
    except ModelNotFound as exc:
        assert exc.status_code == 404
    else:
        raise AssertionError("no ModelNotFound")

async def many():
    async with AsyncClient(url) as client:
        return await client.predict_many([photo] * 5, per_request=2, concurrency=2)

assert len(asyncio.run(many()).results) == 5

with Client(url, model="MobileNetV2") as client:
    outcomes = sorted(client.predict_iter([photo, b"not a photo", photo]), key=lambda o: o.index)
assert [o.ok for o in outcomes] == [True, False, True], outcomes
assert isinstance(outcomes[1].error, InvalidImage), outcomes[1].error
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
assert not heavy, heavy
print("sdk ok", answer.results[0].predictions[0].label)
"""


def _index_reachable() -> bool:
    try:
        with urllib.request.urlopen(INDEX, timeout=10):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory) -> Path:
    if not os.environ.get("CI") and not _index_reachable():
        pytest.skip(f"package index {INDEX} unreachable and not under CI")
    work = tmp_path_factory.mktemp("install")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=IGNORE)
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, timeout=300)
    python = work / "venv" / ("Scripts" if os.name == "nt" else "bin") / "python"
    install = subprocess.run(
        [
            *(str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"),
            str(source / "clients" / "python"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return python


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("install-photo") / "photo.jpg"
    path.write_bytes(photos(1, seed=3)[0])
    return path


@pytest.mark.parametrize("module", HEAVY)
def test_the_base_install_lacks_heavy_dependencies(venv_python, module):
    result = _run(venv_python, "-c", f"import {module}")

    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr


def test_the_sdk_talks_to_a_live_server_from_the_bare_venv(venv_python, server, photo):
    result = _run(
        venv_python, "-c", SCRIPT.replace("{heavy!r}", repr(HEAVY)), server.base_url, photo
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("sdk ok ")


def test_the_kerasserve_command_predicts_from_the_bare_venv(venv_python, server, photo):
    kerasserve = venv_python.parent / "kerasserve"

    result = subprocess.run(
        [str(kerasserve), "predict", str(photo), "--url", server.base_url, "--top-k", "2"],
        cwd=photo.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "photo.jpg" in result.stdout.splitlines()
    assert result.stdout.splitlines()[0].startswith("model MobileNetV2 ")


def _run(python: Path, *args: object) -> subprocess.CompletedProcess[str]:
    # Outside the repository, so nothing is imported from the source tree by accident.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(
        [str(python), *map(str, args)],
        cwd=python.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_bulk_predict_and_models_url_work_from_the_bare_venv(venv_python, server, photo, tmp_path):
    kerasserve = venv_python.parent / "kerasserve"
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        (folder / f"p{i}.jpg").write_bytes(photo.read_bytes())
    out = tmp_path / "out.jsonl"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(kerasserve), *args]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    bulk = run("predict", "photos", "--jsonl", str(out), "--url", server.base_url)
    again = run("predict", "photos", "--jsonl", str(out), "--url", server.base_url)
    models = run("models", "--url", server.base_url)
    local = run("models")

    assert bulk.returncode == 0, bulk.stderr
    assert len(out.read_text().splitlines()) == 3
    assert again.returncode == 0, again.stderr
    assert "0 written" in again.stderr
    assert "3 skipped" in again.stderr
    assert models.returncode == 0, models.stderr
    assert models.stdout.splitlines()[1].startswith("MobileNetV2 *")
    # The SDK alone has no local catalogue: `models` asks the default server, and says what to
    # do when none answers.
    assert local.returncode == 3
    assert "is it running?" in local.stderr
    assert "Traceback" not in local.stderr


def _wheel(project: Path, out: Path) -> list[str]:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--wheel-dir", str(out), str(project)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_server_wheel_installs_only_under_the_kerasserve_namespace(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=IGNORE)

    names = _wheel(source, tmp_path / "wheel")

    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"kerasserve", "kerasserve_client", "kerasserve_web"}, tops
    assert "kerasserve/service/cli.py" in names
    assert "kerasserve/service/inference/data/imagenet_class_index.json" in names
    assert "kerasserve_web/index.html" in names
    assert not [n for n in names if n.endswith("screenshot.png")]


def test_the_sdk_wheel_holds_the_sdk_and_its_schemas_only(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=IGNORE)

    names = _wheel(source / "clients" / "python", tmp_path / "wheel")

    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"kerasserve", "kerasserve_client"}, tops
    assert {n.split("/")[1] for n in names if n.startswith("kerasserve/")} == {"schemas"}
    assert not [n for n in names if n.endswith(".png")]


def test_import_service_finds_nothing_of_this_project(venv_python):
    for name in ("service", "schemas", "batching"):
        result = _run(venv_python, "-c", f"import {name}")

        assert result.returncode != 0, name
        assert "ModuleNotFoundError" in result.stderr
    assert _run(venv_python, "-c", "import kerasserve.schemas").returncode == 0
