"""The benchmark's target names and plan: ResNet50, the near-free model in 2 workers, the extras."""

from __future__ import annotations

import email
import email.policy

import numpy as np
import pytest

from bench import batch_choice, cli, multi_photo, run, servers
from bench.images import Photo
from bench.loadgen import multipart_request, multipart_request_many
from bench.raw_openvino import preprocess_numpy


def test_the_default_run_has_every_target_of_issue_17() -> None:
    plan = cli.plan_from(cli.parser().parse_args([]))
    wanted = {
        "fastapi",
        "ceiling",
        "nearfree",
        "nearfree-2w",
        "default",
        "default-2w",
        "keras",
        "openvino",
        "int8",
        "resnet50-default",
        "resnet50-keras",
        "resnet50-openvino",
        "resnet50-int8",
        "raw-resnet50-keras",
        "raw-resnet50-openvino",
        "raw-resnet50-int8",
        "multi-photo",
        "batch-choice",
    }
    assert wanted <= set(plan.targets)
    assert plan.targets == list(run.ALL_TARGETS)
    assert plan.starts == 5
    assert plan.resnet50_clients == [1, 32]
    assert plan.batch_sizes == [1, 2, 4, 8, 16]
    assert plan.photos_per_request == 8


def test_help_lists_the_new_targets(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for name in ("resnet50-int8", "raw-resnet50-openvino", "nearfree-2w", "multi-photo"):
        assert name in out
    assert "batch-choice" in out


def test_targets_and_counts_parse() -> None:
    args = cli.parser().parse_args(
        ["--targets", "resnet50-keras,batch-choice", "--resnet50-clients", "32"]
        + ["--batch-sizes", "2,4", "--photos-per-request", "4"]
    )
    plan = cli.plan_from(args)
    assert plan.targets == ["resnet50-keras", "batch-choice"]
    assert plan.resnet50_clients == [32]
    assert plan.batch_sizes == [2, 4]
    assert plan.photos_per_request == 4
    with pytest.raises(ValueError, match="integers >= 1"):
        run.Plan(batch_sizes=[])


def test_resnet50_targets_serve_resnet50_with_the_mobilenet_flags() -> None:
    for runtime, flags in servers.KERASSERVE_RUNTIMES.items():
        target = servers.server_target(f"resnet50-{runtime}", ["--max-wait-ms", "2"])
        mobilenet = servers.server_target(runtime, ["--max-wait-ms", "2"])
        assert target.model == "ResNet50"
        assert target.argv == [a if a != "MobileNetV2" else "ResNet50" for a in mobilenet.argv], (
            target.argv
        )
        assert target.argv[-2:] == ["--max-wait-ms", "2"]
        assert target.predict_path == "/v1/models/ResNet50/predict"
        assert target.label == mobilenet.label
        assert all(flag in target.argv for flag in flags)
    int8 = servers.server_target("resnet50-int8", [])
    assert int8.argv[int8.argv.index("--int8-min-top1") + 1] == "0"
    assert run.RAW_TARGETS["raw-resnet50-int8"][-2:] == ["--model", "ResNet50"]
    assert set(run.RESNET50_RAW) == {
        "raw-resnet50-keras",
        "raw-resnet50-openvino",
        "raw-resnet50-int8",
    }


def test_nearfree_in_two_workers() -> None:
    one = servers.server_target("nearfree", [])
    two = servers.server_target("nearfree-2w", ["--max-batch-size", "8"])
    assert (one.name, one.workers) == ("nearfree", 1)
    assert (two.name, two.workers) == ("nearfree-2w", 2)
    assert two.argv[:1] == ["bench.nearfree"]
    assert two.argv[two.argv.index("--workers") + 1] == "2"
    assert two.argv[-2:] == ["--max-batch-size", "8"]
    assert two.predict_path == one.predict_path
    assert "--workers 2" in two.label


def test_the_default_in_two_workers() -> None:
    one = servers.server_target("default", [])
    two = servers.server_target("default-2w", ["--max-wait-ms", "2"])
    assert (one.workers, two.workers) == (1, 2)
    assert "--workers" not in one.argv
    assert two.argv == [*one.argv, "--workers", "2", "--max-wait-ms", "2"]
    assert (two.model, two.predict_path, two.runtime) == (one.model, one.predict_path, "auto")
    assert two.label == "kerasserve (default flags), --workers 2"
    assert "default-2w" in run.SIDE_BY_SIDE


def test_batch_choice_turns_calibration_off_after_the_extra_flags() -> None:
    target = batch_choice.fixed_target(["--max-batch-size", "8"], 4)
    assert target.argv[-3:] == ["--no-calibrate-batch", "--max-batch-size", "4"]
    assert "--runtime" in target.argv
    assert target.argv[target.argv.index("--runtime") + 1] == "openvino"
    assert target.name == "batch-choice-4"
    calibrated = batch_choice.calibrated_target([])
    assert "--no-calibrate-batch" not in calibrated.argv
    assert "--max-batch-size" not in calibrated.argv


def _parts(request: bytes) -> list[email.message.Message]:
    head, body = request.split(b"\r\n\r\n", 1)
    content_type = next(
        line for line in head.split(b"\r\n") if line.lower().startswith(b"content-type:")
    )
    message = email.message_from_bytes(content_type + b"\r\n\r\n" + body, policy=email.policy.HTTP)
    assert message.is_multipart()
    return list(message.iter_parts())


def test_a_request_of_several_photos_has_a_part_named_image_per_photo() -> None:
    request = multipart_request_many(
        "127.0.0.1", 1, "/p", [("a.jpg", b"\xff\xd8aa"), ("b.jpg", b"\xff\xd8bbb")]
    )
    parts = _parts(request)
    assert [p.get_filename() for p in parts] == ["a.jpg", "b.jpg"]
    assert [p.get_param("name", header="content-disposition") for p in parts] == ["image"] * 2
    assert [p.get_payload(decode=True) for p in parts] == [b"\xff\xd8aa", b"\xff\xd8bbb"]
    length = int(request.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert length == len(request.split(b"\r\n\r\n", 1)[1])
    one = multipart_request("127.0.0.1", 1, "/p", "a.jpg", b"x")
    assert [p.get_filename() for p in _parts(one)] == ["a.jpg"]


def test_multi_photo_requests_cycle_through_the_photos() -> None:
    photos = [Photo(name, "small", name.encode()) for name in ("a", "b", "c")]
    target = servers.kerasserve_target("default", [])
    server = servers.Running(target, 1, None, None)  # type: ignore[arg-type]
    requests = multi_photo.requests_for(server, photos, 8)
    assert len(requests) == 3
    names = [p.get_filename() for p in _parts(requests[1])]
    assert names == [f"{n}-small.jpg" for n in "bcabcabc"]
    point = multi_photo.per_request_point({"img_s": 20.0, "p50_ms": 5.0}, 8)
    assert (point["req_s"], point["img_s"], point["photos_per_request"]) == (20.0, 160.0, 8)


def test_caffe_preprocessing_in_numpy_is_kerass_resnet50_preprocess_input() -> None:
    pytest.importorskip("keras")
    from keras.applications.resnet50 import preprocess_input

    pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    expected = preprocess_input(pixels.astype(np.float32))
    np.testing.assert_allclose(preprocess_numpy(pixels, "caffe"), expected, atol=1e-4)
    np.testing.assert_allclose(
        preprocess_numpy(pixels, "tf"), pixels.astype(np.float32) / 127.5 - 1.0, atol=1e-5
    )
