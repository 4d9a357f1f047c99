"""`kerasserve predict` and `models` (the console script's `kerasserve.service.cli:main`) against a real server."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from kerasserve.schemas import ModelList, PredictResponse
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


def kerasserve(*args: str, cwd=ROOT) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "kerasserve.service", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_predict_prints_a_table_for_each_photo(server, photo_files):
    result = kerasserve(
        "predict", *photo_files, "--url", server.base_url, "--model", "MobileNetV2", "--top-k", "3"
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(
        r"model MobileNetV2 v\d+ \(runtime (keras|openvino), weights random, labels en\)", lines[0]
    )
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


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """40 photos in two sub-folders, and a text file the walk must leave out."""
    root = tmp_path_factory.mktemp("bulk")
    for i, data in enumerate(photos(40, size=(240, 320), seed=11)):
        path = root / "photos" / ("a" if i < 20 else "b") / f"photo{i:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "photos" / "notes.txt").write_text("not a photo")
    return root


def test_bulk_run_over_40_photos_writes_40_lines_and_a_second_run_none(server, photo_folder):
    out = photo_folder / "out.jsonl"
    command = ("predict", str(photo_folder / "photos"), "--jsonl", str(out), "--concurrency", "4")

    first = kerasserve(*command, "--url", server.base_url)

    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 40
    assert len({r["file"] for r in records}) == 40
    assert all(r["ok"] and len(r["predictions"]) == 5 for r in records)  # the server's top-k
    assert {r["model"]["name"] for r in records} == {"MobileNetV2"}
    progress, summary = first.stderr.splitlines()[:-1], first.stderr.splitlines()[-1]
    assert [line.split()[0] for line in progress] == [f"{n}/40" for n in range(4, 41, 4)]
    assert summary.startswith(f"kerasserve: 40 written to {out} (40 ok, 0 failed); ")

    second = kerasserve(*command, "--url", server.base_url)

    assert second.returncode == 0, second.stderr
    assert len(out.read_text().splitlines()) == 40
    assert second.stderr.startswith(f"kerasserve: 0 written to {out} (0 ok, 0 failed); 40 skipped")


def test_a_rerun_from_another_folder_writes_no_duplicate_line(server, photo_folder, tmp_path):
    # Regression: resume keys were the names as typed, resolved against the current folder, so
    # a rerun from elsewhere redid and appended every photo again.
    out = tmp_path / "again.jsonl"
    first = kerasserve(
        "predict", "photos/a", "--jsonl", str(out), "--url", server.base_url, cwd=photo_folder
    )
    assert first.returncode == 0, first.stderr

    second = kerasserve(
        "predict", ".", "--jsonl", str(out), "--url", server.base_url, cwd=photo_folder / "photos/a"
    )

    assert second.returncode == 0, second.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 20
    assert len({r["path"] for r in records}) == 20
    assert "20 skipped" in second.stderr


def test_features_npy_over_a_folder_resumes_without_duplicates(server, photo_folder, tmp_path):
    import numpy as np

    out = tmp_path / "vectors.npy"
    args = ("--npy", str(out), "--url", server.base_url, "--model", "MobileNetV2")
    first = kerasserve("features", "photos/a", *args, cwd=photo_folder)
    second = kerasserve("features", "..", *args, cwd=photo_folder / "photos/b")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "20 skipped" in second.stderr
    rows = np.load(out)
    files = (tmp_path / "vectors.npy.files").read_text().splitlines()
    assert rows.shape == (40, 1280)
    assert len({json.loads(line)["path"] for line in files}) == 40


def test_bulk_run_records_a_bad_file_and_goes_on(server, tmp_path, photo_folder):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.jpg").write_bytes((photo_folder / "photos/a/photo00.jpg").read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out.jsonl"

    result = kerasserve("predict", str(folder), "--jsonl", str(out), "--url", server.base_url)

    assert result.returncode == 1
    records = {
        json.loads(line)["file"].rsplit("/", 1)[-1]: json.loads(line)
        for line in out.read_text().splitlines()
    }
    assert records["good.jpg"]["ok"]
    assert records["broken.jpg"]["error"]["code"] == "invalid_image"
    assert records["broken.jpg"]["error"]["status"] == 400
    assert "(1 ok, 1 failed)" in result.stderr


def test_models_url_lists_the_running_servers_models(server):
    table = kerasserve("models", "--url", server.base_url)
    as_json = kerasserve("models", "--url", server.base_url, "--json")

    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:4] == ["model", "version", "state", "output"]
    assert row.split()[:2] == ["MobileNetV2", "*"]
    assert "ready" in row.split()
    assert table.stdout.splitlines()[-1] == f"1 model at {server.base_url}"
    listing = ModelList.model_validate_json(as_json.stdout)
    assert [m.name for m in listing.models] == ["MobileNetV2"]


def test_models_without_url_still_lists_what_keras_can_serve():
    result = kerasserve("models", "--json")

    assert result.returncode == 0, result.stderr
    names = {entry["name"] for entry in json.loads(result.stdout)}
    assert {"MobileNetV2", "ResNet50"} <= names
