"""`kerasserve predict` (the console script's `service.cli:main`) against a real server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from schemas import PredictResponse
from tests.support.live_server import ROOT, free_port
from tests.support.models import photos


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli-photos")
    paths = []
    for name, data in zip(("photo.jpg", "more.jpg"), photos(2, seed=5), strict=True):
        path = directory / name
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def kerasserve(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "service", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_predict_prints_a_table_for_each_photo(server, photo_files):
    result = kerasserve(
        "predict", *photo_files, "--url", server.base_url, "--model", "MobileNetV2", "--top-k", "3"
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "model MobileNetV2 (runtime keras, weights random)"
    assert lines[1].startswith("warning: ")
    for name in ("photo.jpg", "more.jpg"):
        start = lines.index(name)
        assert lines[start + 1].split() == ["#", "label", "class", "probability"]
        rows = lines[start + 2 : start + 5]
        assert [row.split()[0] for row in rows] == ["1", "2", "3"]
        assert all(row.rstrip().endswith("%") for row in rows)
        assert lines[start + 5].lstrip().startswith("(batch of ")


def test_predict_json_parses_as_the_schema(server, photo_files):
    result = kerasserve("predict", *photo_files, "--url", server.base_url, "--json", "--top-k", "2")

    assert result.returncode == 0, result.stderr
    answer = PredictResponse.model_validate(json.loads(result.stdout))
    assert [r.filename for r in answer.results] == ["photo.jpg", "more.jpg"]
    assert all(len(r.predictions) == 2 for r in answer.results)


def test_an_unknown_model_exits_1_with_the_servers_message(server, photo_files):
    result = kerasserve("predict", photo_files[0], "--url", server.base_url, "--model", "resnet5")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("kerasserve: error: 404 model_not_found: ")
    assert "Traceback" not in result.stderr


def test_a_server_that_is_down_exits_3_with_a_clear_message(photo_files):
    url = f"http://127.0.0.1:{free_port()}"

    result = kerasserve("predict", photo_files[0], "--url", url, "--retries", "0")

    assert result.returncode == 3
    assert f"cannot connect to the kerasserve server at {url}" in result.stderr
    assert "Start one with `kerasserve serve`" in result.stderr
    assert "Traceback" not in result.stderr


def test_features_prints_the_vector_summary(server, photo_files):
    result = kerasserve("features", photo_files[0], "--url", server.base_url, "--show", "3")

    assert result.returncode == 0, result.stderr
    head, values = result.stdout.splitlines()[:2]
    assert head.startswith("photo.jpg: MobileNetV2 layer ")
    assert ", pooling avg, shape (" in head
    assert values.startswith("  [")
    assert "L2 norm" in values
