"""Bulk jobs on disk: folder walking, JSON lines for answers and errors, resuming."""

from __future__ import annotations

import json
import os

import pytest

from kerasserve.schemas import ImageResult, ModelRef
from kerasserve_client import ImageOutcome, InputError, InvalidImage
from kerasserve_client._jsonl import JsonlWriter, done_files, expand, key, record


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("b.jpg", "a.PNG", "notes.txt", ".hidden.jpg", "sub/c.webp", ".cache/d.jpg"):
        path = tmp_path / "photos" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path


def test_folders_are_walked_for_images_sorted_hidden_skipped(tree):
    files = expand(["photos/", "photos/notes.txt"])

    assert files == [
        os.path.join("photos", "a.PNG"),
        os.path.join("photos", "b.jpg"),
        os.path.join("photos", "sub", "c.webp"),
        os.path.join("photos", "notes.txt"),  # named on its own: taken as it is
    ]


def test_a_missing_name_is_an_error_before_anything_runs(tree):
    with pytest.raises(OSError, match="no such file or directory") as caught:
        expand(["photos", "nope"])

    assert caught.value.filename == "nope"


def test_done_files_matches_paths_however_spelt_and_ignores_a_torn_line(tree):
    out = tree / "out.jsonl"
    lines = [
        {"file": "photos/a.PNG", "ok": True},
        {"file": "./photos/b.jpg", "ok": False},
        {"something": "else"},
    ]
    out.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"file": "photos/su')

    assert done_files(out) == {key("photos/a.PNG"), key("photos/b.jpg")}
    assert done_files(out, redo_errors=True) == {key("photos/a.PNG")}
    assert done_files(tree / "absent.jsonl") == set()


def test_a_files_latest_line_wins(tree):
    out = tree / "out.jsonl"
    first, retried = {"file": "photos/b.jpg", "ok": False}, {"file": "photos/b.jpg", "ok": True}
    out.write_text(json.dumps(first) + "\n" + json.dumps(retried) + "\n")

    assert done_files(out, redo_errors=True) == {key("photos/b.jpg")}


def test_the_writer_mends_a_torn_last_line_before_appending(tree):
    out = tree / "out.jsonl"
    out.write_text('{"file": "a", "ok": true}\n{"file": "b", "o')

    with JsonlWriter.append_to(out) as writer:
        writer.write({"file": "c", "ok": True})

    lines = out.read_text().splitlines()
    assert lines[-1] == '{"file": "c", "ok": true}'
    assert lines[-2] == '{"file": "b", "o'


def test_a_record_of_an_answer_and_of_errors():
    model = ModelRef.model_validate(
        {
            "name": "M",
            "version": 3,
            "weights": {"kind": "random", "random": True},
            "runtime": {"name": "keras"},
            "output_kind": "multi_label",
            "labels_language": "zh-CN",
        }
    )
    result = ImageResult.model_validate(
        {
            "filename": "a.jpg",
            "predictions": [{"index": 1, "class_id": "n1", "label": "猫", "probability": 0.75}],
            "timing": {"queue_ms": 1.0, "inference_ms": 2.0, "batch_size": 4},
        }
    )
    good = ImageOutcome(0, "a.jpg", result, model, request_id="r1")
    bad_image = InvalidImage("does not decode", status_code=400, code="invalid_image")
    unreadable = InputError("image 2: cannot read b.jpg: Permission denied")

    assert record("p/a.jpg", good) == {
        "file": "p/a.jpg",
        "path": os.path.realpath("p/a.jpg"),
        "ok": True,
        "model": {
            "name": "M",
            "version": 3,
            "output_kind": "multi_label",
            "labels_language": "zh-CN",
        },
        "predictions": [{"index": 1, "class_id": "n1", "label": "猫", "probability": 0.75}],
        "timing": {"queue_ms": 1.0, "inference_ms": 2.0, "batch_size": 4},
        "request_id": "r1",
    }
    assert record("p/x.jpg", ImageOutcome(1, "x", error=bad_image, request_id="r2")) == {
        "file": "p/x.jpg",
        "path": os.path.realpath("p/x.jpg"),
        "ok": False,
        "error": {"status": 400, "code": "invalid_image", "message": "does not decode"},
        "request_id": "r2",
    }
    assert record("b.jpg", ImageOutcome(2, "b", error=unreadable))["error"] == {
        "status": None,
        "code": "input_error",
        "message": "image 2: cannot read b.jpg: Permission denied",
    }
