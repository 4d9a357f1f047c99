"""The benchmark's figures from hand-made results: spread, ratios, the targets, the tables."""

from __future__ import annotations

from typing import Any

import pytest

from bench import analysis, report


def pt(target: str, clients: int, img_s: float, p50: float = 10.0) -> dict[str, Any]:
    return {
        "variant": "small",
        "target": target,
        "runtime": "?",
        "concurrency": clients,
        "img_s": img_s,
        "p50_ms": p50,
        "p95_ms": p50 * 1.5,
        "p99_ms": p50 * 2,
        "errors": 0,
        "mean_batch": 1.0,
        "server_cpu_cores": 1.5,
        "other_cpu_cores": 0.01,
    }


def raw(best: float, batch1_ms: float = 20.0) -> dict[str, Any]:
    return {
        "by_batch": [{"batch": 1, "img_s": best / 2}, {"batch": 4, "img_s": best}],
        "best_batch": 4,
        "best_img_s": best,
        "infer_ms_per_img": 1e3 / best,
        "batch1_latency_ms": batch1_ms,
        "detail": "d",
        "command": "python -m bench.raw",
    }


def result(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "date": "2026-11-28T02:00:00+00:00",
        "command": "python -m bench",
        "machine": {"cpu": "EPYC", "cores": 2, "load_avg_start": [0.1, 0, 0]},
        "plan": {"warmup_s": 2, "measure_s": 7, "spread_clients": 32},
        "images": {"small": {"count": 6, "bytes_mean": 70_000}},
        "raw": {
            "raw-keras": [raw(60.0, 25.0), raw(64.0, 22.0)],
            "raw-openvino": [raw(140.0)],
            "raw-int8": [{"skipped": "kerasserve.service.inference.quantize is not there yet"}],
        },
        "targets": {
            "ceiling": {"status": "ok", "label": "front-end ceiling (no model)", "command": "c"},
            "keras": {"status": "ok", "label": "kerasserve --runtime keras", "command": "k"},
            "int8": {
                "status": "skipped",
                "label": "kerasserve --runtime openvino --precision int8",
                "command": "i",
                "reason": "exited with 2: error: unrecognized arguments: --precision int8",
            },
        },
        "points": [
            pt("ceiling", 1, 300),
            pt("ceiling", 8, 390),
            pt("ceiling", 32, 400),
            pt("keras", 1, 30, p50=30.0),
            pt("keras", 8, 50),
            pt("keras", 32, 52),
            pt("openvino", 32, 100),
            pt("flask", 32, 10),
            pt("default", 32, 95),
        ],
        "spread": {
            "target": "default",
            "clients": 32,
            "starts": [
                {"start": i + 1, "img_s": v, "p50_ms": 300.0, "p99_ms": 400.0, "errors": 0}
                for i, v in enumerate([95, 90, 100, 99, 80])
            ],
        },
    }
    base.update(overrides)
    return base


def test_spread_is_median_min_max_and_the_largest_deviation_in_percent() -> None:
    stats = analysis.spread([95, 90, 100, 99, 80])
    assert stats == {
        "n": 5,
        "median": 95,
        "min": 80,
        "max": 100,
        "max_dev_pct": pytest.approx(15 / 95 * 100),
    }
    assert analysis.spread([]) is None


def test_the_default_target_counts_with_the_median_of_its_starts() -> None:
    r = result()
    assert analysis.headline(r, "default") == 95
    assert analysis.best_kerasserve(r) == ("openvino", 100)


def test_ceiling_target_is_met_at_0_8_and_missed_below() -> None:
    checks = {c["name"]: c for c in analysis.checks(result())}
    assert checks["front-end ceiling"]["measured"] == pytest.approx(100 / 400)
    assert checks["front-end ceiling"]["met"] is False
    points = [p for p in result()["points"] if p["target"] != "ceiling"] + [pt("ceiling", 32, 120)]
    checks = {c["name"]: c for c in analysis.checks(result(points=points))}
    assert checks["front-end ceiling"]["measured"] == pytest.approx(100 / 120)
    assert checks["front-end ceiling"]["met"] is True


def test_a_fall_in_throughput_as_clients_rise_is_flagged() -> None:
    checks = {c["name"]: c for c in analysis.checks(result())}
    assert checks["no fall with clients"]["met"] is True
    assert "(8 >= 1, 32 >= 8)" in checks["no fall with clients"]["goal"]
    points = [p for p in result()["points"] if p["target"] != "keras"]
    points += [pt("keras", 1, 30), pt("keras", 8, 50), pt("keras", 32, 47)]
    check = {c["name"]: c for c in analysis.checks(result(points=points))}["no fall with clients"]
    assert check["met"] is False
    assert check["measured"] == pytest.approx(47 / 50)
    assert "32 vs 8: 47.0 vs 50.0 img/s **FALLS**" in check["detail"]
    assert "(one point each)" in check["detail"]


def test_no_fall_with_clients_takes_the_medians_of_the_passes_in_turn() -> None:
    # The main phase's single points fall from 8 to 32 clients (50 -> 47); in the passes with
    # the raw limit the medians rise: 1: 30, 8: 48, 32: 52.
    points = [p for p in result()["points"] if p["target"] != "keras"]
    points += [pt("keras", 1, 30), pt("keras", 8, 50), pt("keras", 32, 47)]
    by_pass = [(31.0, 47.0, 52.0), (30.0, 48.0, 50.0), (29.0, 50.0, 53.0)]
    section = {
        "passes": 3,
        "clients": 32,
        "levels": [1, 8, 32],
        "raw": [{**raw(60.0), "pass": n + 1} for n in range(3)],
        "points": [
            {**pt("keras", clients, img_s), "pass": n + 1}
            for n, values in enumerate(by_pass)
            for clients, img_s in zip((1, 8, 32), values, strict=True)
        ],
    }
    r = result(points=points, keras_vs_raw=section)
    assert analysis.keras_by_clients(r) == {
        1: [31.0, 30.0, 29.0],
        8: [47.0, 48.0, 50.0],
        32: [52.0, 50.0, 53.0],
    }
    checks = {c["name"]: c for c in analysis.checks(r)}
    check = checks["no fall with clients"]
    assert check["met"] is True
    assert check["measured"] == pytest.approx(52 / 48)
    assert "32 vs 8: 52.0 vs 48.0 img/s" in check["detail"]
    assert "medians of 3 passes" in check["detail"]
    # The raw-limit check still reads the points at 32 clients only.
    assert checks["batching vs raw Keras"]["measured"] == pytest.approx(52 / 60)
    text = report.markdown(r)
    assert "| 8 | 47.0, 48.0, 50.0 | 48.0 |" in text
    assert "| 2 | 60.0 (4) | 50.0 | 0.83x |" in text
    assert "| 2 | 60.0 (4) | 48.0 |" not in text


def test_raw_limits_take_the_best_pass_and_the_lowest_batch1_latency() -> None:
    limit = analysis.raw_limit(result(), "raw-keras")
    assert limit is not None
    assert limit["best_img_s"] == 64
    assert limit["batch1_latency_ms"] == 22
    assert limit["passes"] == [60, 64]
    assert analysis.raw_limit(result(), "raw-int8") is None
    assert (
        analysis.raw_note(result(), "raw-int8")
        == "skipped: kerasserve.service.inference.quantize is not there yet"
    )


def test_ratios_put_every_target_against_the_ceiling_and_each_raw_limit() -> None:
    rows = {r["target"]: r for r in analysis.ratios(result())}
    assert rows["keras"]["vs_ceiling"] == pytest.approx(52 / 400)
    assert rows["keras"]["vs_raw-keras"] == pytest.approx(52 / 64)
    assert rows["openvino"]["vs_raw-openvino"] == pytest.approx(100 / 140)
    assert rows["openvino"]["vs_raw-int8"] is None
    assert rows["default"]["img_s"] == 95  # the median of the five starts


def test_older_targets_keep_their_figures() -> None:
    checks = {c["name"]: c for c in analysis.checks(result())}
    assert checks["batching vs raw Keras"]["measured"] == pytest.approx(52 / 64)
    assert checks["batching vs the classic Flask app"]["measured"] == pytest.approx(5.2)
    assert checks["waiting costs nothing"]["measured"] == pytest.approx(30 - 22)
    assert checks["past the framework"]["measured"] == pytest.approx(100 / 64)


def test_markdown_shows_skipped_targets_with_their_reason_and_the_spread() -> None:
    r = result()
    r["checks"] = analysis.checks(r)
    text = report.markdown(r)
    assert (
        "| kerasserve --runtime openvino --precision int8 | skipped: exited with 2: error: unrecognized arguments: --precision int8 |"
        in text
    )
    assert "skipped: kerasserve.service.inference.quantize is not there yet" in text
    assert (
        "Median 95.0 img/s ±15.8% over the 5 starts (± is the largest deviation of a start from "
        "the median), min 80.0, max 100.0." in text
    )
    assert "| front-end ceiling (no model) | 32 | 400.0 |" in text
    short = report.short_markdown(r)
    assert (
        "| kerasserve --runtime keras | 30.0 (30 / 60) | 50.0 (10 / 20) | 52.0 (10 / 20) | 0.13x |"
        in short
    )
    assert "front-end ceiling missed (0.25)" in short


def test_replace_section_rewrites_only_between_the_markers(tmp_path: Any) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"intro\n{report.START}\nold\n{report.END}\noutro\n")
    assert report.replace_section(page, "new table")
    text = page.read_text()
    assert text.startswith("intro\n")
    assert text.endswith("\noutro\n")
    assert "new table" in text
    assert "old" not in text
    bare = tmp_path / "bare.md"
    bare.write_text("no markers")
    assert not report.replace_section(bare, "x")
    assert bare.read_text() == "no markers"


def test_the_issue_targets_near_free_baseline_spread_workers_and_batch_choice() -> None:
    points = [p for p in result()["points"] if p["target"] != "ceiling" or p["concurrency"] != 1]
    points += [
        pt("ceiling", 1, 300, p50=3.0),
        pt("nearfree", 1, 280, p50=3.6),
        pt("nearfree", 32, 370),
        pt("nearfree-2w", 32, 300),
        pt("default-2w", 32, 80),
        pt("fastapi", 32, 50),
    ]
    choice = {
        "calibrated": {"max_batch_size": 2, "img_s": 180.0},
        "fixed": [
            {"size": 1, "img_s": 150.0},
            {"size": 2, "img_s": 190.0},
            {"size": 4, "img_s": 200.0},
        ],
    }
    checks = {c["name"]: c for c in analysis.checks(result(points=points, batch_choice=choice))}
    assert checks["near-free vs ceiling"]["measured"] == pytest.approx(370 / 400)
    assert checks["near-free vs ceiling"]["met"] is True
    assert checks["near-free latency"]["measured"] == pytest.approx(0.6)
    assert checks["near-free latency"]["met"] is True
    # The default counts with the median of its five starts (95), not its first point.
    assert checks["past the compiled baseline"]["measured"] == pytest.approx(95 / 50)
    assert checks["past the compiled baseline"]["met"] is True
    # Starts 95, 90, 100, 99, 80: 80 is 15.8 % under the median of 95.
    assert checks["fresh starts agree"]["measured"] == pytest.approx(15 / 95 * 100)
    assert checks["fresh starts agree"]["met"] is False
    # MobileNetV2's default in 1 worker (95) against 2 workers (80); the near-free model's
    # two counts are shown beside it.
    assert checks["workers auto"]["measured"] == pytest.approx(95 / 80)
    assert checks["workers auto"]["met"] is True
    assert "MobileNetV2" in checks["workers auto"]["goal"]
    assert (
        "near-free model: 1 worker 370.0 vs 2 workers 300.0 img/s (1.23x)"
        in (checks["workers auto"]["detail"])
    )
    assert checks["batch choice"]["measured"] == pytest.approx(180 / 200)
    assert checks["batch choice"]["met"] is True


def test_side_by_side_passes_decide_the_front_end_and_worker_checks() -> None:
    # The main phase's single points say the near-free model is 0.95x the ceiling; its
    # interleaved passes say otherwise, and the checks take the passes' medians.
    points = [p for p in result()["points"] if p["target"] != "ceiling"]
    points += [
        pt("ceiling", 1, 300, p50=3.0),
        pt("ceiling", 32, 400),
        pt("nearfree", 1, 280, p50=3.2),
        pt("nearfree", 32, 380),
        pt("nearfree-2w", 32, 300),
    ]
    side = []
    for n, (ceiling, one, two, c_p50, f_p50) in enumerate(
        [(500, 390, 400, 2.0, 3.5), (400, 330, 300, 2.5, 3.3), (450, 340, 350, 2.2, 3.0)]
    ):
        for target, clients, img_s, p50 in [
            ("ceiling", 32, ceiling, 30.0),
            ("nearfree", 32, one, 40.0),
            ("nearfree-2w", 32, two, 45.0),
            ("default", 32, one / 4, 100.0),
            ("default-2w", 32, two / 4 * 1.1, 110.0),
            ("ceiling", 1, 300, c_p50),
            ("nearfree", 1, 250, f_p50),
        ]:
            side.append({**pt(target, clients, img_s, p50=p50), "pass": n + 1})
    section = {"passes": 3, "clients": [1, 32], "targets": ["ceiling", "nearfree"], "points": side}
    r = result(points=points, side_by_side=section)
    checks = {c["name"]: c for c in analysis.checks(r)}
    # Medians: ceiling 450, near-free 340 (not 380 / 400 from the single points).
    assert checks["near-free vs ceiling"]["measured"] == pytest.approx(340 / 450)
    assert checks["near-free vs ceiling"]["met"] is False
    detail = checks["near-free vs ceiling"]["detail"]
    assert "medians of 3 interleaved passes" in detail
    assert "by pass 0.78x, 0.82x, 0.76x" in detail
    # p50 medians 3.3 vs 2.2 ms: +1.1 ms, though the single points said +0.2 ms.
    assert checks["near-free latency"]["measured"] == pytest.approx(1.1)
    assert checks["near-free latency"]["met"] is False
    assert "+1.50 ms, +0.80 ms, +0.80 ms" in checks["near-free latency"]["detail"]
    # MobileNetV2 in 1 worker 85 vs 2 workers 96.25 (medians of the passes): 0.88x, missed;
    # the near-free model's 340 vs 350 is in the detail, also from the passes.
    assert checks["workers auto"]["measured"] == pytest.approx(85 / 96.25)
    assert checks["workers auto"]["met"] is False
    assert "by pass" in checks["workers auto"]["detail"]
    assert "near-free model: 1 worker 340.0 vs 2 workers 350.0" in checks["workers auto"]["detail"]

    text = report.markdown(r)
    assert "### Front end and workers, side by side" in text
    assert "measured in 3 interleaved passes" in text
    assert "| 32 | 500.0, 400.0, 450.0 | 450.0 | 30.0 |" in text
    # Without the side-by-side phase the single points decide, and the detail says so.
    checks = {c["name"]: c for c in analysis.checks(result(points=points))}
    assert checks["near-free vs ceiling"]["measured"] == pytest.approx(380 / 400)
    assert "one point each, minutes apart" in checks["near-free vs ceiling"]["detail"]


def test_keras_and_its_raw_limit_measured_in_turn_decide_their_check() -> None:
    # The main phase: 52 img/s against the better raw pass (64): 0.81x. In turn, pass by pass,
    # the medians are 50 against 60.
    runs = [(61.0, 50.0), (58.0, 45.0), (60.0, 54.0)]
    section = {
        "passes": 3,
        "clients": 32,
        "raw": [{**raw(r), "pass": n + 1} for n, (r, _) in enumerate(runs)],
        "points": [{**pt("keras", 32, k), "pass": n + 1} for n, (_, k) in enumerate(runs)],
    }
    r = result(keras_vs_raw=section)
    check = {c["name"]: c for c in analysis.checks(r)}["batching vs raw Keras"]
    assert check["measured"] == pytest.approx(50 / 60)
    assert check["met"] is True
    assert "by pass 0.82x, 0.78x, 0.90x" in check["detail"]
    text = report.markdown(r)
    assert "### --runtime keras against the raw Keras limit, in turn" in text
    assert "| 2 | 58.0 (4) | 45.0 | 0.78x |" in text
    assert "Medians: 50.0 against 60.0 img/s (0.83x)." in text
    # Without that phase: the main phase's point against the best raw pass.
    check = {c["name"]: c for c in analysis.checks(result())}["batching vs raw Keras"]
    assert check["measured"] == pytest.approx(52 / 64)
    assert "by pass" not in check["detail"]


def test_issue_targets_not_measured_say_so() -> None:
    checks = {c["name"]: c for c in analysis.checks(result())}
    for name in ("near-free vs ceiling", "near-free latency", "workers auto", "batch choice"):
        assert checks[name]["met"] is None, name
        assert checks[name]["measured"] is None, name
