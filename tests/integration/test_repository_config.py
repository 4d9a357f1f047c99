"""Repository configs (every mistake names the file, the key and the expectation), heads, languages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kerasserve.batching import BatchPolicy
from kerasserve.service.inference import heads
from kerasserve.service.inference.labels import pick_language
from kerasserve.service.inference.repository import (
    ConfigError,
    Defaults,
    DirectoryRepository,
    VersionPolicy,
    read_config,
)
from kerasserve.service.inference.source import ModelSource


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (
            "[batching]\nmax_batch_size = 0\n",
            "batching.max_batch_size",
            "greater than or equal to 1",
        ),
        ('runtime = "tensorrt"\n', "runtime", "'auto', 'keras' or 'openvino'"),
        ("colour = 1\n", "colour", "Extra inputs are not permitted"),
        ('[versions]\npolicy = "specific"\n', "versions", "needs a non-empty `versions` list"),
        ('precision = "int4"\n', "precision", "'bf16' or 'int8'"),
        ("[batching]\nmax_wait_ms = -1\n", "batching.max_wait_ms", "greater than or equal to 0"),
    ],
)
def test_a_bad_key_is_named_with_the_file_and_the_expectation(tmp_path, text, key, expected):
    path = write(tmp_path / "m" / "config.toml", text)
    with pytest.raises(ConfigError) as info:
        read_config(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert key in message
    assert expected in message


def test_broken_toml_says_where(tmp_path):
    path = write(tmp_path / "m" / "config.toml", "family = \n")
    with pytest.raises(ConfigError, match=r"config.toml: not valid TOML.*line 1"):
        read_config(path)


def test_a_missing_config_means_every_default(tmp_path):
    config = read_config(tmp_path / "nothing.toml")
    assert config.versions.policy == "latest"
    assert config.batching.max_batch_size is None


@pytest.mark.parametrize(
    ("policy", "available", "selected"),
    [
        (VersionPolicy(), [1, 3, 2], [3]),
        (VersionPolicy(count=2), [1, 3, 2], [2, 3]),
        (VersionPolicy(policy="all"), [3, 1], [1, 3]),
        (VersionPolicy(policy="specific", versions=[1, 7]), [1, 2, 3], [1]),
    ],
)
def test_version_policies(policy, available, selected):
    assert policy.select(available) == selected


def defaults() -> Defaults:
    return Defaults(ModelSource(name="", weights="none"), BatchPolicy(max_batch_size=32), 30.0)


def test_settings_in_config_override_the_flags_and_versions_are_chosen(tmp_path):
    root = tmp_path / "repo"
    for version in (1, 2, 10):
        write(root / "cats" / str(version) / "model.keras", "not read here")
    write(root / "cats" / "labels.txt", "a\nb\n")
    write(root / "cats" / "zh.txt", "甲\n乙\n")
    write(
        root / "cats" / "config.toml",
        'preprocess = "tf"\nruntime = "keras"\n[labels]\nen = "labels.txt"\n"zh-CN" = "zh.txt"\n'
        "[batching]\nmax_batch_size = 4\ntimeout_s = 5\n[versions]\ncount = 2\n",
    )
    (root / "MobileNetV2" / "3").mkdir(parents=True)
    (mobilenet, cats) = sorted(DirectoryRepository(root, defaults()).scan(), key=lambda m: m.name)
    assert cats.error is None, cats.error
    assert sorted(cats.versions) == [2, 10]
    assert cats.available == [1, 2, 10]
    assert cats.policy.max_batch_size == 4
    assert cats.timeout_s == 5
    source = cats.versions[10]
    assert source.model_file == root / "cats" / "10" / "model.keras"
    assert source.runtime == "keras"
    assert source.preprocess == "tf"
    assert source.labels_file == (root / "cats" / "labels.txt").resolve()
    assert source.extra_labels == (("zh-CN", (root / "cats" / "zh.txt").resolve()),)
    assert mobilenet.name == "MobileNetV2"
    assert mobilenet.error is None
    assert mobilenet.versions[3].family == "MobileNetV2"
    assert mobilenet.versions[3].weights == "none"  # the server's flag: no weights file there
    assert mobilenet.policy.max_batch_size == 32


def test_a_model_folder_that_is_neither_a_file_nor_a_catalogue_model_fails_clearly(tmp_path):
    root = tmp_path / "repo"
    (root / "mystery" / "1").mkdir(parents=True)
    (model,) = DirectoryRepository(root, defaults()).scan()
    assert "'mystery' is not a keras.applications model" in (model.error or "")
    assert "family" in (model.error or "")


def test_paths_in_config_stay_inside_the_model_folder(tmp_path):
    root = tmp_path / "repo"
    write(root / "cats" / "1" / "model.keras", "x")
    write(tmp_path / "secret.txt", "x\n")
    write(root / "cats" / "config.toml", 'labels = "../../secret.txt"\n')
    (model,) = DirectoryRepository(root, defaults()).scan()
    assert "labels: '../../secret.txt' must name an existing path inside" in (model.error or "")


def test_no_version_folder_is_an_error(tmp_path):
    root = tmp_path / "repo"
    write(root / "cats" / "config.toml", 'family = "MobileNetV2"\n')
    (model,) = DirectoryRepository(root, defaults()).scan()
    assert "no version folder" in (model.error or "")


def test_heads_turn_outputs_into_probabilities():
    raw = np.array([[2.0, 0.0, -1.0]], dtype=np.float32)
    logits = heads.apply("logits", raw)
    assert logits.sum() == pytest.approx(1.0)
    assert logits.argmax() == 0
    assert np.array_equal(heads.apply("softmax", raw), raw)
    binary = heads.apply("binary", np.array([[0.8], [0.1]], dtype=np.float32))
    np.testing.assert_allclose(binary, [[0.2, 0.8], [0.9, 0.1]], atol=1e-7)
    from_logit = heads.apply("binary", np.array([[0.0]], dtype=np.float32), sigmoid_applied=False)
    np.testing.assert_allclose(from_logit, [[0.5, 0.5]])
    multi = np.array([[0.9, 0.8, 0.05]], dtype=np.float32)
    assert np.array_equal(heads.apply("multi_label", multi), multi)  # never renormalised
    assert heads.num_classes("binary", 1) == 2


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh", "zh-CN"),
        ("fr, en;q=0.5", "en"),
        ("en;q=0.1, zh-CN;q=0.9", "zh-CN"),
        ("de", None),
        ("*", None),
        (None, None),
    ],
)
def test_the_language_asked_for_is_matched(wanted, expected):
    assert pick_language(wanted, ["en", "zh-CN"]) == expected


def test_a_scan_rereads_only_the_folders_whose_timestamp_changed(tmp_path):
    """Triton's ModelTimestamp: polling an unchanged repository parses no config again."""
    import os

    root = tmp_path / "repo"
    for name in ("cats", "dogs"):
        write(root / name / "1" / "model.keras", "not read here")
        write(root / name / "config.toml", 'preprocess = "tf"\n')
    repository = DirectoryRepository(root, defaults())
    first = {m.name: m for m in repository.scan()}
    assert repository.reads == 2
    again = {m.name: m for m in repository.scan()}
    assert repository.reads == 2  # nothing changed: nothing read
    assert again["cats"] is first["cats"]
    # A config edited in place (the folder's own mtime does not move) is seen.
    config = root / "cats" / "config.toml"
    config.write_text('preprocess = "caffe"\n', encoding="utf-8")
    stamp = config.stat().st_mtime_ns + 10**9
    os.utime(config, ns=(stamp, stamp))
    changed = {m.name: m for m in repository.scan()}
    assert repository.reads == 3
    assert changed["cats"].versions[1].preprocess == "caffe"
    assert changed["dogs"] is first["dogs"]
    # A new version folder is seen.
    write(root / "dogs" / "2" / "model.keras", "not read here")
    assert sorted(next(m for m in repository.scan() if m.name == "dogs").available) == [1, 2]
    # An explicit find (an admin load) reads afresh whatever the timestamp.
    repository.find("dogs")
    assert repository.reads == 5


def test_one_softmax_and_the_head_serving_uses():
    assert heads.Head("logits")(np.array([[0.0, np.log(3.0)]])).round(6).tolist() == [[0.25, 0.75]]
    p = heads.Head("binary", sigmoid_applied=False)(np.array([[0.0]]))
    assert p.tolist() == [[0.5, 0.5]]
    from kerasserve.service.inference import runtime

    assert not hasattr(runtime, "softmax")  # one softmax: heads.softmax
