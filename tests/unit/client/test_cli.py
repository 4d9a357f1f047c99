"""`predict` and `features` commands over a fake server: tables, --json, exit codes, messages."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from kerasserve.schemas import FeaturesResponse, PredictResponse
from kerasserve_client._base import DEFAULT_TOP_K
from tests.support.live_server import free_port
from tests.unit.client.fake_server import JPEG, error


@pytest.fixture
def images(tmp_path):
    paths = []
    for name in ("cat.jpg", "dog.jpg"):
        path = tmp_path / name
        path.write_bytes(JPEG + name.encode())
        paths.append(path)
    return paths


def test_predict_prints_a_table_per_image(run, fake, images, capsys):
    code, out, err = run(capsys, "predict", *images, "--model", "MobileNetV2", "--top-k", "2")

    assert (code, err) == (0, "")
    assert out.startswith("model MobileNetV2 v2 (runtime keras, weights random, labels en)\n")
    assert "warning: random weights" in out
    cat = len(JPEG) + len("cat.jpg")
    lines = out.splitlines()
    start = lines.index("cat.jpg")
    assert lines[start + 1].split() == ["#", "label", "class", "probability"]
    assert lines[start + 2].split() == ["1", "class", str(cat), f"n{cat:08d}", "50.00%"]
    assert lines[start + 3].split() == ["2", "class", str(cat + 1), f"n{cat + 1:08d}", "25.00%"]
    assert "(batch of 1, queue 0.5 ms, inference 10.0 ms)" in lines[start + 4]
    assert lines.index("dog.jpg") > start  # input order, whichever answer came first
    assert dict(fake.requests[-1].url.params) == {"top_k": "2"}


def test_predict_json_is_the_servers_answer(run, fake, images, capsys):
    code, out, _ = run(capsys, "predict", images[0], "--json")

    assert code == 0
    answer = PredictResponse.model_validate_json(out)
    assert answer.results[0].filename == "cat.jpg"
    # The CLI sends no top_k: the server's default, which the SDK gets too.
    assert len(answer.results[0].predictions) == DEFAULT_TOP_K
    assert "top_k" not in fake.requests[-1].url.params


def test_predict_reads_stdin_for_dash(run, fake, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Stdin(JPEG))

    code, out, _ = run(capsys, "predict", "-", "--json")

    assert code == 0
    assert PredictResponse.model_validate_json(out).results[0].filename == "image-0.jpg"


def test_a_missing_file_is_reported_before_anything_is_sent(run, fake, images, capsys):
    code, out, err = run(capsys, "predict", images[0], "nope.jpg")

    assert code == 2
    assert out == ""
    assert err == "kerasserve: error: cannot read nope.jpg: no such file or directory\n"
    assert fake.requests == []


def test_a_folder_without_images_is_refused(run, fake, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not an image")

    code, _, err = run(capsys, "predict", tmp_path)

    assert code == 2
    assert err == f"kerasserve: error: no images in {tmp_path}\n"
    assert fake.requests == []


def test_a_server_error_is_printed_with_its_code(run, fake, images, capsys):
    fake.script(
        "POST",
        "/v1/models/resnet5/predict",
        error(404, "model_not_found", "Unknown model 'resnet5'. Did you mean: ResNet50?"),
    )

    code, out, err = run(capsys, "predict", images[0], "--model", "resnet5")

    assert code == 1
    assert out == ""
    assert err == (
        "kerasserve: error: 404 model_not_found: Unknown model 'resnet5'. "
        "Did you mean: ResNet50? [request req-1]\n"
    )


def test_a_server_that_is_down_gets_a_clear_message(run, fake, images, capsys):
    fake.script("GET", "/v1/models", httpx.ConnectError("[Errno 111] Connection refused"))

    code, out, err = run(capsys, "predict", images[0], "--url", "http://127.0.0.1:9")

    assert code == 3
    assert out == ""
    assert "cannot connect to the kerasserve server at http://127.0.0.1:9" in err
    assert "Start one with `kerasserve serve`, or point --url at it" in err


def test_features_prints_shape_values_and_norm(run, fake, images, capsys):
    code, out, _ = run(capsys, "features", *images, "--model", "MobileNetV2", "--show", "2")

    assert code == 0
    lines = out.splitlines()
    assert (
        lines[0] == "cat.jpg: MobileNetV2 layer global_average_pooling2d, pooling avg, shape (4,)"
    )
    assert lines[1].startswith("  [0, 1, ...]  L2 norm ")
    assert lines[2].startswith("dog.jpg: ")
    # No --pooling: the server picks (avg for maps, none for vectors); nothing is sent.
    assert ["pooling" in r.url.params for r in fake.requests] == [False, False]


def test_features_json_is_a_list_of_answers(run, images, capsys):
    code, out, _ = run(
        capsys, "features", *images, "--model", "MobileNetV2", "--pooling", "max", "--json"
    )

    assert code == 0
    answers = [FeaturesResponse.model_validate(item) for item in json.loads(out)]
    assert [a.pooling for a in answers] == ["max", "max"]


def test_python_dash_m_against_a_closed_port_exits_3(images):
    url = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "kerasserve_client", "predict", str(images[0]), "--url", url]

    result = subprocess.run(
        [*command, "--retries", "0"], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 3, result.stderr
    assert f"cannot connect to the kerasserve server at {url}" in result.stderr
    assert "Traceback" not in result.stderr


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = _Buffer(data)


class _Buffer:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data
