"""`--precision auto` with fake runtimes: the fastest that passed serves, the choice is cached and
read back without building the others, and fp32 serving because nothing else passed is loud."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from kerasserve.service.errors import ModelLoadError
from kerasserve.service.inference import precision, quantize

SIZE = (8, 8)


class FakeRuntime:
    """A runtime whose batch takes `delay_s` (a sleep: speed without a model)."""

    def __init__(self, name: str, delay_s: float, top1: float | None = None) -> None:
        self.name = name
        self.delay_s = delay_s
        self.detail: str | None = f"fake {name}"
        self.buckets = [1, 2]
        self.parallelism = 1
        self.measured: dict[int, float] | None = None
        self.top1_agreement = top1
        self.top5_overlap = None if top1 is None else 1.0
        self.max_prob_diff = None if top1 is None else 0.01
        self.gate_images = None if top1 is None else 100
        self.released = False

    def predict(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(self.delay_s)
        return np.zeros((batch.shape[0], 4), np.float32)

    def warm(self) -> None:
        pass

    def release(self) -> None:
        self.released = True


def builder(
    delays: dict[str, float],
    fails: dict[str, str],
    built: list[str],
    made: list[FakeRuntime] | None = None,
):
    def build(name: str) -> FakeRuntime:
        built.append(name)
        if name in fails:
            raise ModelLoadError(fails[name])
        runtime = FakeRuntime(name, delays[name], None if name == "fp32" else 0.995)
        if made is not None:
            made.append(runtime)
        return runtime

    return build


def test_candidates_offer_bf16_only_where_the_cpu_has_it():
    assert precision.candidates(["FP32", "INT8", "BF16"]) == ["int8", "bf16", "fp32"]
    assert precision.candidates(["FP32", "INT8"]) == ["int8", "fp32"]


def test_the_fastest_that_passed_serves_and_the_choice_is_cached(tmp_path):
    path = tmp_path / "precision-x.json"
    built: list[str] = []
    # int8 is fastest but failed its gate; bf16 (2 ms a batch) beats fp32 (20 ms).
    made: list[FakeRuntime] = []
    build = builder(
        {"bf16": 0.002, "fp32": 0.02}, {"int8": "INT8 model failed its accuracy gate"}, built, made
    )
    runtime = precision.choose(build, path, SIZE, ["BF16", "FP32", "INT8"])
    assert runtime.name == "bf16"
    assert built == ["int8", "bf16", "fp32"]
    # The slower candidate is released at once; the one that serves is not.
    assert {r.name: r.released for r in made} == {"bf16": False, "fp32": True}
    selection = runtime.precision_selection
    assert selection["chosen"] == "bf16"
    assert selection["cached"] is False
    assert selection["candidates"]["int8"] == {
        "passed": False,
        "reason": "INT8 model failed its accuracy gate",
    }
    assert selection["candidates"]["bf16"]["top1_agreement"] == 0.995
    assert selection["candidates"]["bf16"]["img_s"] > selection["candidates"]["fp32"]["img_s"]
    assert json.loads(path.read_text())["chosen"] == "bf16"
    assert "precision auto: bf16 serves (measured at start-up" in runtime.detail

    # The second start builds only the chosen precision and times nothing.
    built.clear()
    again = precision.choose(build, path, SIZE, ["BF16", "FP32", "INT8"])
    assert built == ["bf16"]
    assert again.precision_selection["cached"] is True
    assert again.measured is None
    assert "cached choice" in again.detail


def test_a_cached_choice_that_no_longer_loads_is_measured_again(tmp_path):
    path = tmp_path / "precision-x.json"
    path.write_text(json.dumps({"chosen": "int8", "candidates": {}}))
    built: list[str] = []
    build = builder({"fp32": 0.001}, {"int8": "gone", "bf16": "gone"}, built)
    runtime = precision.choose(build, path, SIZE, ["BF16", "FP32", "INT8"])
    assert runtime.name == "fp32"
    assert built == ["int8", "int8", "bf16", "fp32"]
    assert json.loads(path.read_text())["chosen"] == "fp32"


def test_fp32_serving_because_nothing_else_passed_is_a_warning(tmp_path, caplog):
    build = builder({"fp32": 0.001}, {"int8": "INT8 gate: top-1 25.00% (needs >= 99%)"}, [])
    with caplog.at_level(logging.INFO, logger="kerasserve.precision"):
        runtime = precision.choose(build, tmp_path / "p.json", SIZE, ["FP32", "INT8"])
    assert runtime.name == "fp32"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("serving FP32" in m and "top-1 25.00%" in m for m in warnings), warnings


def test_nothing_passing_is_a_load_error_naming_each_reason(tmp_path):
    build = builder({}, {"int8": "gate A", "fp32": "tolerance B"}, [])
    with pytest.raises(ModelLoadError, match="int8: gate A; fp32: tolerance B"):
        precision.choose(build, tmp_path / "p.json", SIZE, ["FP32", "INT8"])


def test_a_reference_without_a_ranking_fails_the_gate_whatever_the_agreement():
    # Random weights: every image gets the same uniform scores, which any candidate that keeps
    # the ties "agrees" with completely.
    uniform = np.full((40, 4), 0.25, np.float32)
    measured = quantize.agreement(uniform, uniform.copy())
    assert measured.top1_agreement == 1.0
    assert measured.decided == 0.0
    with pytest.raises(ModelLoadError, match="no ranking to keep"):
        quantize.Gate().check(measured, "bf16")
    # A gate opened on purpose (the benchmark's speed-only INT8 target) asks for nothing.
    quantize.Gate(top1_min=0.0, top5_min=0.0).check(measured)


def test_a_trained_reference_passes_on_agreement_and_reports_its_largest_difference():
    rng = np.random.default_rng(0)
    scores = rng.dirichlet(np.full(4, 0.3), size=50).astype(np.float32)
    nudged = scores + rng.normal(0, 1e-3, scores.shape).astype(np.float32)
    measured = quantize.agreement(scores, nudged)
    assert measured.decided > 0.9
    assert 0 < measured.max_prob_diff < 0.01
    quantize.Gate().check(measured)
