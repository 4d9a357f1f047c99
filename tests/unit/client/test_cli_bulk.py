"""`kerasserve predict DIR --jsonl`, per-image errors in tables, `--lang`, and `models --url`."""

from __future__ import annotations

import json

import pytest

from kerasserve.schemas import ModelList
from tests.unit.client.conftest import client_parser
from tests.unit.client.fake_server import BAD_IMAGE, JPEG, FakeServer, error

N_PHOTOS = 40


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """40 photos in two folders, the 8th undecodable, plus files that are no images."""
    monkeypatch.chdir(tmp_path)
    for i in range(N_PHOTOS):
        sub = "photos/day1" if i < 25 else "photos/day2"
        path = tmp_path / sub / f"img{i:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(JPEG + (BAD_IMAGE if i == 7 else bytes(i)))
    (tmp_path / "photos" / "README.txt").write_text("not a photo")
    (tmp_path / "photos" / ".thumbs.jpg").write_bytes(JPEG)
    return tmp_path


def lines_of(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_folder_becomes_one_line_per_photo_and_a_second_run_writes_none(
    run, fake, folder, capsys
):
    out = folder / "out.jsonl"

    code, stdout, err = run(capsys, "predict", "photos/", "--jsonl", out, "--concurrency", "4")

    assert code == 1  # one photo failed
    assert stdout == ""
    records = lines_of(out)
    assert len(records) == N_PHOTOS
    assert len({r["file"] for r in records}) == N_PHOTOS
    bad = [r for r in records if not r["ok"]]
    assert [r["file"] for r in bad] == ["photos/day1/img07.jpg"]
    assert bad[0]["error"]["code"] == "invalid_image"
    good = next(r for r in records if r["file"] == "photos/day2/img30.jpg")
    assert good["predictions"][0]["index"] == len(JPEG) + 30
    assert good["model"] == {
        "name": "MobileNetV2",
        "version": 2,
        "output_kind": "softmax",
        "labels_language": "en",
    }
    plain = err.splitlines()
    assert [line.split()[0] for line in plain[:-1]] == [f"{n}/40" for n in range(4, 41, 4)]
    assert plain[-1].startswith(f"kerasserve: 40 written to {out} (39 ok, 1 failed); ")
    sent = len(fake.requests)

    code, stdout, err = run(capsys, "predict", "./photos", "--jsonl", out)

    assert code == 0
    assert len(lines_of(out)) == N_PHOTOS
    assert len(fake.requests) == sent  # nothing sent, not even the model list
    assert err.startswith(f"kerasserve: 0 written to {out} (0 ok, 0 failed); 40 skipped ")


def test_a_rerun_from_another_folder_writes_no_duplicate_line(
    run, fake, folder, capsys, monkeypatch
):
    # Regression: lines keyed by the name as typed, resolved against the current folder, made a
    # rerun from elsewhere (`cd photos; kerasserve predict . --jsonl ../out.jsonl`) redo and
    # append every photo again.
    out = folder / "out.jsonl"
    code, _, _ = run(capsys, "predict", "photos", "--jsonl", "out.jsonl")
    assert code == 1
    sent = len(fake.requests)

    monkeypatch.chdir(folder / "photos" / "day2")
    code, _, err = run(capsys, "predict", "..", "--jsonl", "../../out.jsonl")

    assert code == 0
    records = lines_of(out)
    assert len(records) == N_PHOTOS
    assert len({r["path"] for r in records}) == N_PHOTOS
    assert len(fake.requests) == sent
    assert "40 skipped" in err


def test_redo_errors_retries_only_the_failed_photo(run, fake, folder, capsys):
    out = folder / "out.jsonl"
    run(capsys, "predict", "photos", "--jsonl", out)
    (folder / "photos/day1/img07.jpg").write_bytes(JPEG + b"fixed")
    before = len(fake.requests)

    code, _, err = run(capsys, "predict", "photos", "--jsonl", out, "--redo-errors")

    assert code == 0
    assert [r.url.path for r in fake.requests[before:]] == [
        "/v1/models",  # the default model, asked once per run
        "/v1/models/MobileNetV2/predict",
    ]
    last = lines_of(out)[-1]
    assert (last["file"], last["ok"]) == ("photos/day1/img07.jpg", True)
    assert "1 written" in err
    assert "39 skipped" in err


def test_an_interrupted_run_resumes_where_it_stopped(run, fake, folder, capsys):
    out = folder / "out.jsonl"
    done = [{"file": f"photos/day1/img{i:02d}.jpg", "ok": True} for i in range(10)]
    # A killed run leaves a torn last line; that photo is done again.
    out.write_text("".join(json.dumps(r) + "\n" for r in done) + '{"file": "photos/day1/img1')

    code, _, err = run(capsys, "predict", "photos", "--jsonl", out)

    records = [json.loads(line) for line in out.read_text().splitlines()[11:]]
    assert len(records) == 30
    assert {r["file"] for r in records}.isdisjoint(r["file"] for r in done)
    assert "30 written" in err
    assert "10 skipped" in err
    assert code == 0  # img07, the bad one, was among those done before


def test_a_run_stopped_by_the_server_keeps_what_it_wrote_and_says_so(run, fake, folder, capsys):
    out = folder / "out.jsonl"
    fake.script("POST", "/v1/models/MobileNetV2/predict", error(404, "model_not_found", "gone"))

    code, _, err = run(capsys, "predict", "photos", "--jsonl", out, "--concurrency", "1")

    assert code == 1
    assert out.read_text() == ""
    summary, message = err.splitlines()[-2:]
    assert summary.startswith("kerasserve: 0 written")
    assert summary.endswith("before stopping")
    assert message == "kerasserve: error: 404 model_not_found: gone [request req-1]"


def test_jsonl_refuses_stdin_and_empty_folders(run, fake, tmp_path, capsys):
    (tmp_path / "empty").mkdir()

    assert run(capsys, "predict", "-", "--jsonl", tmp_path / "o.jsonl")[0] == 2
    code, _, err = run(capsys, "predict", tmp_path / "empty", "--jsonl", tmp_path / "o.jsonl")

    assert code == 2
    assert err == f"kerasserve: error: no images in {tmp_path / 'empty'}\n"
    assert fake.requests == []


def test_tables_show_the_good_photos_and_report_the_bad_one(run, fake, folder, capsys):
    code, out, err = run(capsys, "predict", "photos/day1/img06.jpg", "photos/day1/img07.jpg")

    assert code == 1
    assert "img06.jpg" in out.splitlines()
    assert "img07.jpg" not in out
    assert err == (
        "kerasserve: error: photos/day1/img07.jpg: 400 invalid_image: image 0 (img07.jpg) "
        "does not decode [request req-1]\n"
    )


def test_lang_picks_the_labels_language(run, fake, folder, capsys):
    code, out, _ = run(
        capsys, "predict", "photos/day1/img01.jpg", "--lang", "zh-CN", "--top-k", "1"
    )

    assert code == 0
    assert fake.requests[-1].url.params["lang"] == "zh-CN"
    assert out.splitlines()[0].endswith(", labels zh-CN)")
    assert out.splitlines()[5].split()[1] == "类别"


def test_multi_label_answers_read_as_independent_likelihoods(folder, capsys):
    fake = FakeServer(output_kind="multi_label")
    args = client_parser(fake).parse_args(["predict", "photos/day1/img01.jpg", "--top-k", "2"])

    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[2]
        == "multi-label model: each likelihood is its own yes/no answer; they do not add up to 100%"
    )
    assert lines[5].split()[-1] == "likelihood"
    assert lines[6].split()[-2:] == ["yes", "50.00%"]
    assert lines[7].split()[-2:] == ["no", "25.00%"]


def test_models_url_lists_the_servers_models(run, fake, capsys):
    fake.models = ("MobileNetV2", "ResNet50")

    code, out, _ = run(capsys, "models", "--url", "http://kerasserve.test")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "model", "version", "state", "output", "runtime", "weights", "input", "labels"
    ]  # fmt: skip
    assert lines[1].split() == [
        "MobileNetV2", "*", "2", "ready", "softmax", "keras", "random", "224x224", "en,zh-CN"
    ]  # fmt: skip
    assert lines[2].split()[0:2] == ["ResNet50", "2"]
    assert lines[-1] == "2 models at http://kerasserve.test"


def test_models_url_json_is_the_model_list(run, fake, capsys):
    code, out, _ = run(capsys, "models", "--url", "http://kerasserve.test", "--json")

    assert code == 0
    assert ModelList.model_validate_json(out).models[0].labels_languages == ["en", "zh-CN"]


def test_a_failed_model_is_listed_with_its_error(run, fake, capsys):
    import httpx

    body = {
        "models": [{"name": "Broken", "state": "failed", "error": "weights file is truncated"}],
        "default_model": None,
    }
    fake.script("GET", "/v1/models", httpx.Response(200, json=body))

    code, out, _ = run(capsys, "models", "--url", "http://kerasserve.test")

    assert code == 0
    assert out.splitlines()[1].split() == ["Broken", "-", "failed", "-", "-", "-", "-", "-"]
    assert "Broken: weights file is truncated" in out


def test_the_servers_models_command_stays_local_without_url(fake, capsys):
    calls = []

    def local(args):
        calls.append(args)
        return 0

    parser = client_parser(fake, local_models=local)

    args = parser.parse_args(["models", "--json"])
    assert args.func(args) == 0
    assert len(calls) == 1
    assert fake.requests == []

    args = parser.parse_args(["models", "--url", "http://kerasserve.test", "--json"])
    assert args.func(args) == 0
    assert len(calls) == 1
    assert ModelList.model_validate_json(capsys.readouterr().out).default_model == "MobileNetV2"


def test_the_local_models_listing_without_the_server_extra_points_at_url(fake, capsys):
    def local(args):
        raise ModuleNotFoundError("No module named 'keras'")

    parser = client_parser(fake, local_models=local)
    args = parser.parse_args(["models"])

    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "needs the server: pip install 'kerasserve[server]'" in err
    assert err.rstrip().endswith("to list what a running server serves, pass --url")
