"""The report's new parts from hand-made results: ResNet50 rows, 8 photos per request, batch choice."""

from __future__ import annotations

from typing import Any

import pytest

from bench import analysis, report
from tests.bench.test_analysis import pt, raw, result


def with_everything() -> dict[str, Any]:
    r = result()
    r["plan"]["targets"] = ["default", "resnet50-keras", "resnet50-int8", "raw-resnet50-keras"]
    r["plan"]["resnet50_clients"] = [1, 32]
    r["plan"]["resnet50_raw_sizes"] = [1, 2, 4, 8]
    r["plan"]["raw_passes"] = 2
    r["raw"]["raw-resnet50-keras"] = [raw(20.0, 50.0)]
    r["raw"]["raw-resnet50-int8"] = [raw(110.0)]
    r["targets"]["resnet50-keras"] = {
        "status": "ok",
        "label": "kerasserve --runtime keras",
        "command": "rk",
        "model": "ResNet50",
        "runtime": "keras",
    }
    r["targets"]["resnet50-int8"] = {
        "status": "ok",
        "label": "kerasserve --runtime openvino --precision int8",
        "command": "ri",
        "model": "ResNet50",
        "runtime": "openvino",
        "precision": "int8",
        "max_batch_size": 8,
        "configured_max_batch_size": 32,
        "kernels": {"brgconv_avx512_1x1_I8": 36, "brgconv_avx512_I8": 17, "undef_I8": 1, "x": 2},
    }
    r["targets"]["nearfree-2w"] = {
        "status": "ok",
        "label": "kerasserve, near-free model, --preprocess none, --workers 2",
        "command": "n2",
        "model": "nearfree",
        "workers": 2,
    }
    r["points"] += [
        pt("resnet50-keras", 1, 15.0, p50=70.0),
        pt("resnet50-keras", 32, 18.0, p50=1600.0),
        pt("resnet50-int8", 32, 88.0),
        pt("nearfree-2w", 32, 450.0),
    ]
    for s, cap in zip(r["spread"]["starts"], [8, 4, 8, 2, 8], strict=True):
        s.update(max_batch_size=cap, configured_max_batch_size=32, mean_batch=3.0)
    r["multi_photo"] = {
        "clients": 32,
        "per_request": 8,
        "server": {
            "status": "ok",
            "label": "kerasserve (default flags)",
            "command": "d",
            "runtime": "openvino",
        },
        "points": [
            {**pt("multi-photo", 32, 100.0, p50=300.0), "photos_per_request": 1, "req_s": 100.0},
            {**pt("multi-photo", 32, 120.0, p50=2000.0), "photos_per_request": 8, "req_s": 15.0},
        ],
    }

    def fixed(size: int, img_s: float) -> dict[str, Any]:
        return {"size": size, "img_s": img_s, "p50_ms": 300.0, "p99_ms": 400.0, "errors": 0}

    r["batch_choice"] = {
        "clients": 32,
        "runtime": "openvino",
        "calibrated": {
            "img_s": 90.0,
            "p50_ms": 350.0,
            "p99_ms": 500.0,
            "errors": 0,
            "max_batch_size": 2,
            "configured_max_batch_size": 32,
            "throughput_by_batch": {"1": 200.0, "2": 230.0, "4": 220.0},
        },
        "fixed": [fixed(1, 80.0), fixed(2, 95.0), fixed(4, 120.0), {"size": 8, "skipped": "x"}],
    }
    r["checks"] = analysis.checks(r)
    return r


def test_each_target_knows_its_network() -> None:
    r = with_everything()
    assert analysis.model_of(r, "resnet50-int8") == "ResNet50"
    assert analysis.model_of(r, "raw-resnet50-keras") == "ResNet50"
    assert analysis.model_of(r, "keras") == "MobileNetV2"
    assert analysis.model_of(r, "ceiling") == "none"
    assert analysis.model_of(r, "nearfree-2w") == "nearfree"
    assert analysis.model_of({}, "resnet50-default") == "ResNet50"  # older results: by name


def test_resnet50_rows_are_set_against_resnet50s_raw_limits() -> None:
    rows = {row["target"]: row for row in analysis.ratios(with_everything())}
    assert rows["resnet50-keras"]["model"] == "ResNet50"
    assert rows["resnet50-keras"]["vs_raw-keras"] == pytest.approx(18 / 20)
    assert rows["resnet50-int8"]["vs_raw-int8"] == pytest.approx(88 / 110)
    assert rows["resnet50-int8"]["vs_raw-openvino"] is None  # no raw ResNet50 FP32 here
    assert rows["keras"]["vs_raw-keras"] == pytest.approx(52 / 64)  # MobileNetV2's, unchanged
    assert rows["resnet50-keras"]["vs_ceiling"] == pytest.approx(18 / 400)


def test_tables_have_a_model_column() -> None:
    text = report.markdown(with_everything())
    assert "| ResNet50 | kerasserve --runtime keras | 1 | 15.0 | 70.0 |" in text
    assert "| MobileNetV2 | kerasserve --runtime keras | 32 | 52.0 |" in text
    assert "| – | front-end ceiling (no model) | 32 | 400.0 |" in text
    assert "| ResNet50 | raw Keras: tf.function(model(x, training=False)) | 20.0 | 4 |" in text
    assert (
        "| ResNet50 | kerasserve --runtime openvino --precision int8 | openvino int8; max batch 8 "
        "(of 32, by calibration); kernels: brgconv_avx512_1x1_I8 x36, brgconv_avx512_I8 x17, "
        "undef_I8 x1, +2 other |"
    ) in text
    assert "| ResNet50 | kerasserve --runtime keras | 18.0 | 0.04x | 0.90x | – | 0.16x |" in text
    assert "only at 1, 32 clients, and its raw limits at batch sizes 1, 2, 4, 8 in one pass" in text
    short = report.short_markdown(with_everything())
    assert "| ResNet50 | kerasserve --runtime keras | 15.0 (70 / 140) | – | 18.0" in short
    assert "| near-free (pooling + Dense) | kerasserve, near-free model" in short
    assert "2 cores, MobileNetV2 and ResNet50, small photos" in short
    assert "ResNet50: raw Keras: tf.function(model(x, training=False)) 20.0 img/s" in short
    assert "2 cores, MobileNetV2, small photos" in report.short_markdown(result())


def test_the_spread_states_median_plus_minus_and_each_starts_batch_cap() -> None:
    text = report.markdown(with_everything())
    assert "Median 95.0 img/s ±15.8% over the 5 starts" in text
    assert "| 1 | None | 8 of 32 | – | 95.0 | – | 300.0 | 400.0 | 3.0 | 0 |" in text
    assert "start 1 is the one measured at every client count above" in text
    assert "±15.8%" in report.short_markdown(with_everything())


def test_interleaved_starts_show_each_round_and_say_how_they_were_measured() -> None:
    r = with_everything()
    r["spread"]["rounds"] = 3
    r["spread"]["starts"][0]["rounds_img_s"] = [94.0, 95.0, 99.5]
    text = report.markdown(r)
    assert "measured in 3 interleaved rounds" in text
    assert "start 1 is the one measured" not in text
    assert "| 1 | None | 8 of 32 | – | 95.0 | 94.0, 95.0, 99.5 | 300.0 |" in text


def test_eight_photos_per_request_against_one() -> None:
    r = with_everything()
    summary = analysis.multi_photo(r)
    assert summary is not None
    assert summary["img_s_ratio"] == pytest.approx(1.2)
    assert summary["req_s_ratio"] == pytest.approx(0.15)
    text = report.markdown(r)
    assert "### 8 photos per request vs 1" in text
    assert "| 1 | – | 100.0 | 100.0 | 300.0 | 600.0 | 1.0 | 0 | 0.01 |" in text
    assert "| 8 | – | 120.0 | 15.0 | 2000.0 | 4000.0 | 1.0 | 0 | 0.01 |" in text
    assert "interleaved rounds" not in text.split("### 8 photos")[1].split("###")[0]
    # Measured in rounds: each round's img/s, and the text says the figures are medians.
    r["multi_photo"]["rounds"] = 3
    r["multi_photo"]["points"][1]["rounds_img_s"] = [118.0, 120.0, 125.5]
    text = report.markdown(r)
    assert "measured in 3 interleaved rounds, each figure the median of its rounds" in text
    assert "| 8 | 118.0, 120.0, 125.5 | 120.0 | 15.0 |" in text
    assert "8 photos per request: 1.20x the images/s of one photo per request" in text
    assert "8 photos per request vs 1 (default target, 32 clients): 120.0 vs 100.0 img/s" in (
        report.short_markdown(r)
    )
    assert analysis.multi_photo(result()) is None
    assert "Not measured (target `multi-photo`)." in report.markdown(result())


def test_batch_choice_against_the_best_fixed_cap() -> None:
    r = with_everything()
    summary = analysis.batch_choice(r)
    assert summary == {
        "chosen": 2,
        "calibrated_img_s": 90.0,
        "best_size": 4,
        "best_img_s": 120.0,
        "share_of_best": pytest.approx(0.75),
        "fixed_at_chosen_img_s": 95.0,
        "chosen_rank": 2,
    }
    text = report.markdown(r)
    assert "| calibrated | 2 chosen (idle img/s by batch: 1: 200, 2: 230, 4: 220) | – | 90.0 |" in (
        text
    )
    assert "| fixed | 4 | – | 120.0 |" in text
    assert "| fixed | x | | | | | | | | |" in text
    r["batch_choice"]["rounds"] = 3
    r["batch_choice"]["fixed"][2]["rounds_img_s"] = [119.0, 120.0, 130.0]
    text = report.markdown(r)
    assert "every start kept up and measured in 3 interleaved rounds" in text
    assert "| 119.0, 120.0, 130.0 | 120.0 |" in text
    assert (
        "Calibration chose 2: 90.0 img/s, 75% of the best fixed cap (4: 120.0 img/s); "
        "the fixed cap 2 measured 95.0 img/s (rank 2 of 4)." in text
    )
    assert "chose batch caps 8, 4, 8, 2, 8." in text
    assert "chose 2: 75% of the best fixed cap's img/s (4: 120.0)" in report.short_markdown(r)


def test_plot_draws_every_model(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    from bench import plot

    r = with_everything()
    assert plot.legend(r, "resnet50-keras") == "ResNet50: kerasserve --runtime keras"
    assert plot.legend(r, "keras") == "kerasserve --runtime keras"
    plot.plot(r, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
