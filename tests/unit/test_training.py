"""`kerasserve train` before and after TensorFlow: the photo folder's checks, the model name,
all-or-nothing publishing, and the held-out figures. No TensorFlow is imported here."""

from __future__ import annotations

import errno
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from kerasserve.service.training import dataset, publish, report
from kerasserve.service.training.errors import InvalidDataset, InvalidOption, PublishFailed
from kerasserve.service.training.train import TrainOptions, train
from tests.support.photos_dataset import write_dataset


def options(data: Path, repo: Path, **kw) -> TrainOptions:
    return TrainOptions(data_dir=data, repository=repo, name=kw.pop("name", "pets"), **kw)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(InvalidDataset, match=r"'.*nowhere' is not a directory"):
        dataset.scan(tmp_path / "nowhere")


def test_an_empty_folder_says_what_layout_is_expected(tmp_path):
    (tmp_path / "cat").mkdir()
    with pytest.raises(InvalidDataset, match=r"no readable photos.*found 1 class folders"):
        dataset.scan(tmp_path)


def test_one_class_is_refused(tmp_path):
    write_dataset(tmp_path, 3, labels=("cat",))
    with pytest.raises(InvalidDataset, match=r"one class with photos \('cat'\).*at least 2"):
        dataset.scan(tmp_path)


def test_a_class_with_one_photo_is_named_with_its_count(tmp_path):
    write_dataset(tmp_path, 3, labels=("cat", "dog"))
    for extra in sorted((tmp_path / "dog").iterdir())[1:]:
        extra.unlink()
    with pytest.raises(InvalidDataset, match=r"at least 2 readable photos; too few in 'dog': 1"):
        dataset.scan(tmp_path)


def test_unreadable_files_are_listed_skipped_and_counted(tmp_path):
    write_dataset(tmp_path, 2, labels=("cat", "dog"))
    (tmp_path / "cat" / "notes.txt").write_text("not a photo")
    (tmp_path / "dog" / "cut.jpg").write_bytes(
        (tmp_path / "dog").joinpath("dog_000.jpg").read_bytes()[:200]
    )
    found = dataset.scan(tmp_path)
    assert found.counts == {"cat": 2, "dog": 2}
    assert sorted(p.name for p, _ in found.unreadable) == ["cut.jpg", "notes.txt"]
    assert all(why for _, why in found.unreadable)


def test_a_class_left_with_too_few_readable_photos_mentions_the_skipped(tmp_path):
    write_dataset(tmp_path, 2, labels=("cat", "dog"))
    (tmp_path / "dog" / "dog_000.jpg").write_bytes(b"garbage")
    with pytest.raises(InvalidDataset, match=r"'dog': 1 \(1 unreadable files skipped\)"):
        dataset.scan(tmp_path)


def test_the_fingerprint_follows_the_photos(tmp_path):
    write_dataset(tmp_path, 2, labels=("cat", "dog"))
    first = dataset.scan(tmp_path).fingerprint()
    assert dataset.scan(tmp_path).fingerprint() == first
    (tmp_path / "dog" / "dog_001.png").write_bytes((tmp_path / "cat" / "cat_001.png").read_bytes())
    assert dataset.scan(tmp_path).fingerprint() != first


def test_staging_links_what_tensorflow_reads_and_converts_webp(tmp_path):
    from PIL import Image

    write_dataset(tmp_path / "data", 2, labels=("cat", "dog"))
    Image.new("RGB", (20, 20), (1, 2, 3)).save(tmp_path / "data" / "cat" / "z.webp")
    staged = dataset.stage(dataset.scan(tmp_path / "data"), tmp_path / "staged")
    cats = sorted((staged / "cat").iterdir())
    assert [p.suffix for p in cats] == [".jpg", ".png", ".png"]
    assert cats[0].is_symlink()
    assert not cats[2].is_symlink()  # the WebP, converted
    with Image.open(cats[2]) as img:
        assert img.format == "PNG"


@pytest.mark.parametrize("name", ["", "a b", "../up", ".hidden", "123", "x" * 65, "名字"])
def test_invalid_model_names_are_quoted_with_the_rule(name):
    with pytest.raises(InvalidOption, match=r"is not a valid model name: use 1-64 letters"):
        publish.check_name(name)


def test_train_refuses_bad_options_before_reading_anything(tmp_path):
    with pytest.raises(InvalidOption, match=r"--name 'a/b'"):
        train(options(tmp_path, tmp_path / "repo", name="a/b"))
    with pytest.raises(InvalidOption, match=r"--validation-split 1.0 must be between 0 and 1"):
        train(options(tmp_path, tmp_path / "repo", validation_split=1.0))
    with pytest.raises(InvalidOption, match=r"--epochs 0"):
        train(options(tmp_path, tmp_path / "repo", epochs=0))
    with pytest.raises(InvalidOption, match=r"--random-base 'magic': expected one of bn-stat"):
        train(options(tmp_path, tmp_path / "repo", random_base="magic"))
    assert not (tmp_path / "repo").exists()


def test_too_few_photos_to_hold_any_out(tmp_path):
    write_dataset(tmp_path, 2, labels=("cat", "dog"))
    with pytest.raises(InvalidDataset, match=r"4 photos with --validation-split 0.2 hold out 0"):
        train(options(tmp_path, tmp_path / "repo"))


def test_the_command_exits_2_with_the_message_and_no_tensorflow(tmp_path):
    import subprocess

    script = (
        "import sys\n"
        "from kerasserve.service.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "assert 'tensorflow' not in sys.modules, 'bad data must be refused before TensorFlow'\n"
        "sys.exit(code)\n"
    )
    missing = str(tmp_path / "none")
    args = ["train", missing, "--repository", str(tmp_path), "--name", "pets"]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"kerasserve train: DATA_DIR {missing!r} is not a directory")
    assert done.stdout == ""


def test_publish_numbers_versions_and_writes_config_once(tmp_path):
    def write(folder: Path) -> None:
        (folder / "model.keras").write_bytes(b"model")

    assert publish.publish(tmp_path, "pets", write) == (1, tmp_path / "pets" / "1")
    config = (tmp_path / "pets" / "config.toml").read_text()
    assert tomllib.loads(config) == {"output_kind": "softmax", "preprocess": "none"}
    (tmp_path / "pets" / "config.toml").write_text('output_kind = "softmax"\n')  # the user's
    assert publish.publish(tmp_path, "pets", write)[0] == 2
    assert (tmp_path / "pets" / "config.toml").read_text() == 'output_kind = "softmax"\n'
    assert sorted(p.name for p in (tmp_path / "pets").iterdir()) == ["1", "2", "config.toml"]
    assert (tmp_path / "pets" / "2" / "model.keras").read_bytes() == b"model"


def test_repository_reads_the_config_publish_writes(tmp_path):
    from kerasserve.service.inference.repository import read_config

    publish.publish(tmp_path, "pets", lambda folder: None)
    config = read_config(tmp_path / "pets" / "config.toml")
    assert (config.output_kind, config.preprocess) == ("softmax", "none")


@pytest.mark.parametrize("existing", [False, True])
def test_a_full_disk_leaves_no_version_and_no_temporary_folder(tmp_path, existing):
    if existing:
        publish.publish(tmp_path, "pets", lambda folder: None)

    def write(folder: Path) -> None:
        (folder / "labels.txt").write_text("cat\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    version = 2 if existing else 1
    with pytest.raises(PublishFailed, match=rf"cannot write version {version} of 'pets'.*No space"):
        publish.publish(tmp_path, "pets", write)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == (["pets"] if existing else [])
    if existing:
        assert sorted(p.name for p in (tmp_path / "pets").iterdir()) == ["1", "config.toml"]


def test_an_unwritable_repository_says_so(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PublishFailed, match=r"cannot write into the repository"):
        publish.publish(blocker / "repo", "pets", lambda folder: None)


def test_measure_counts_precision_recall_and_top_k():
    labels = ["a", "b", "c"]
    probabilities = np.array(
        [
            [0.7, 0.2, 0.1],  # a -> a
            [0.1, 0.6, 0.3],  # a -> b (a second)
            [0.2, 0.5, 0.3],  # b -> b
            [0.5, 0.1, 0.4],  # c -> a (c second)
        ]
    )
    truth = np.array([0, 0, 1, 2])
    m = report.measure(probabilities, truth, labels)
    assert m["accuracy"] == 0.5
    assert m["top_k"] == 2
    assert m["top_k_accuracy"] == 0.75
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "held_out": 2}
    assert m["per_class"]["b"] == {"precision": 0.5, "recall": 1.0, "held_out": 1}
    assert m["per_class"]["c"] == {"precision": None, "recall": 0.0, "held_out": 1}


def test_confusion_picture_is_a_png_with_any_labels(tmp_path):
    path = tmp_path / "confusion.png"
    report.confusion_png([[3, 1], [0, 4]], ["猫", "dog"], "pets: 0.875", path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
