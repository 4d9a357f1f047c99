"""`features_iter` on both twins and `kerasserve features DIR --jsonl/--npy` with resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.unit.client.fake_server import BAD_IMAGE, JPEG

N = 6


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Six photos in photos/a and photos/b, the 3rd undecodable."""
    monkeypatch.chdir(tmp_path)
    for i in range(N):
        path = tmp_path / "photos" / ("a" if i < 3 else "b") / f"p{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(JPEG + (BAD_IMAGE if i == 2 else bytes(i)))
    return tmp_path


async def collect(iterator):
    if hasattr(iterator, "__aiter__"):
        return [item async for item in iterator]
    return list(iterator)


async def test_features_iter_yields_one_outcome_per_image_and_an_unreadable_one_its_error(
    make, tmp_path
):
    client = make(model="MobileNetV2")
    images = [JPEG, JPEG + b"xx", str(tmp_path / "missing.jpg")]

    outcomes = await collect(client.client.features_iter(images, concurrency=2))

    by_index = {o.index: o for o in outcomes}
    assert sorted(by_index) == [0, 1, 2]
    assert by_index[0].vector == [0.0, 1.0, 2.0, float(len(JPEG))]
    assert by_index[1].vector[3] == len(JPEG) + 2
    assert not by_index[2].ok
    assert "missing.jpg" in str(by_index[2].error)


def test_cli_features_jsonl_resumes_from_another_folder(run, fake, folder, capsys, monkeypatch):
    out = folder / "vectors.jsonl"
    code, _, err = run(capsys, "features", "photos", "--jsonl", out, "--model", "MobileNetV2")

    assert code == 0, err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == N
    assert all(line["ok"] and len(line["vector"]) == 4 for line in lines)
    sent = len(fake.requests)

    monkeypatch.chdir(folder / "photos" / "b")
    code, _, err = run(capsys, "features", "..", "--jsonl", "../../vectors.jsonl")

    assert code == 0
    assert len(out.read_text().splitlines()) == N  # no duplicate line
    assert len(fake.requests) == sent
    assert f"{N} skipped" in err


def test_cli_features_npy_writes_rows_with_their_files_and_resumes(run, fake, folder, capsys):
    out = folder / "vectors.npy"
    code, _, _ = run(capsys, "features", "photos/a", "--npy", out, "--model", "MobileNetV2")
    assert code == 0
    assert np.load(out).shape == (3, 4)

    code, _, err = run(capsys, "features", "photos", "--npy", out, "--model", "MobileNetV2")

    assert code == 0
    rows = np.load(out)
    files = [json.loads(x)["file"] for x in (folder / "vectors.npy.files").read_text().splitlines()]
    assert rows.shape == (N, 4)
    assert sorted(files[:3]) == ["photos/a/p0.jpg", "photos/a/p1.jpg", "photos/a/p2.jpg"]
    assert sorted(files[3:]) == ["photos/b/p3.jpg", "photos/b/p4.jpg", "photos/b/p5.jpg"]
    sizes = {f: len(JPEG) + (len(BAD_IMAGE) if f.endswith("p2.jpg") else int(f[-5])) for f in files}
    assert rows[:, 3].tolist() == [sizes[f] for f in files]
    assert "3 skipped" in err
