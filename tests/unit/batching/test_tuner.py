"""The batch-size tuner against fake cost curves on a fake clock: convergence, noise, padding."""

from __future__ import annotations

import json
import math
import random

import pytest

from kerasserve.batching import BatchSizeTuner, TunerSettings

BUCKETS = [1, 2, 4, 8, 16, 32]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def curve(peak: int, best_img_s: float = 100.0) -> dict[int, float]:
    """Images per second per bucket, highest at `peak`, falling 25% per doubling away."""
    return {b: best_img_s * 0.75 ** abs(math.log2(b / peak)) for b in BUCKETS}


def drive(
    tuner: BatchSizeTuner,
    clock: Clock,
    rates: dict[int, float],
    batches: int,
    *,
    noise: float = 0.0,
    queue_len: int = 64,
    rng: random.Random | None = None,
) -> list[int]:
    """Run `batches` batches from a queue of `queue_len` through the fake cost curve;
    return the limit after each."""
    rng = rng or random.Random(0)
    limits = []
    for _ in range(batches):
        take = tuner.batch_size(queue_len)
        bucket = tuner.bucket_for(take)
        run_s = bucket / rates[bucket] * math.exp(rng.gauss(0, noise))
        clock.now += run_s
        tuner.record(take, run_s, backlog=queue_len > take)
        limits.append(tuner.limit)
    return limits


@pytest.mark.parametrize("peak", [4, 16])
@pytest.mark.parametrize("initial", [1, 8, 32])
def test_converges_to_the_bucket_where_throughput_peaks(peak, initial):
    clock = Clock()
    tuner = BatchSizeTuner(BUCKETS, initial=initial, clock=clock)
    limits = drive(tuner, clock, curve(peak), 400)
    assert limits[-1] == peak
    assert limits[-100:] == [peak] * 100


@pytest.mark.parametrize("peak", [4, 16])
def test_does_not_oscillate_under_noise(peak):
    # 20% multiplicative noise per batch: single batches of the two neighbours often look
    # faster than the peak; medians and the margin must hold the limit still.
    clock = Clock()
    tuner = BatchSizeTuner(BUCKETS, initial=peak, clock=clock)
    limits = drive(tuner, clock, curve(peak), 3000, noise=0.2, rng=random.Random(7))
    changes = sum(a != b for a, b in zip(limits, limits[1:], strict=False))
    assert changes <= 2, f"limit changed {changes} times"
    assert limits.count(peak) >= 0.95 * len(limits)
    assert limits[-1] == peak


def test_noise_does_not_stop_convergence_from_far_away():
    clock = Clock()
    tuner = BatchSizeTuner(BUCKETS, initial=32, clock=clock)
    limits = drive(tuner, clock, curve(4), 1500, noise=0.2, rng=random.Random(3))
    assert limits[-300:] == [4] * 300


@pytest.mark.parametrize("seed", range(5))
def test_two_buckets_of_equal_speed_do_not_make_it_flap(seed):
    # Either is right; what must not happen is a limit that follows every noisy figure.
    clock = Clock()
    rates = {1: 40.0, 2: 60.0, 4: 100.0, 8: 101.0, 16: 70.0, 32: 50.0}
    tuner = BatchSizeTuner(BUCKETS, initial=4, clock=clock)
    limits = drive(tuner, clock, rates, 3000, noise=0.15, rng=random.Random(seed))
    changes = sum(a != b for a, b in zip(limits, limits[1:], strict=False))
    assert changes <= 5, f"limit changed {changes} times in 3000 batches"
    assert set(limits) <= {4, 8}


def test_a_lead_smaller_than_the_noise_does_not_move_the_limit():
    # Bucket 8's median looks 30% faster, but its batches scatter from 40 to 110 ms.
    clock = Clock()
    tuner = BatchSizeTuner([4, 8], initial=4, clock=clock)
    for cost4, cost8 in [(0.040, 0.050), (0.040, 0.110), (0.040, 0.072), (0.040, 0.040)] * 2:
        tuner.record(4, cost4, backlog=True)
        tuner.record(8, cost8, backlog=True)
    assert tuner.estimate(8) > 1.08 * tuner.estimate(4)
    assert tuner.limit == 4
    # A 12% lead with steady batches is believed.
    steady = BatchSizeTuner([4, 8], initial=4, clock=clock)
    for _ in range(8):
        steady.record(4, 0.040, backlog=True)
        steady.record(8, 0.072, backlog=True)
    assert steady.limit == 8


def test_follows_the_machine_when_the_best_bucket_moves():
    # Other load arrives: the curve's peak moves from 16 to 4, and the tuner moves with it.
    clock = Clock()
    tuner = BatchSizeTuner(BUCKETS, initial=16, clock=clock)
    assert drive(tuner, clock, curve(16), 300)[-1] == 16
    limits = drive(tuner, clock, curve(4, best_img_s=50), 1500, noise=0.1)
    assert limits[-200:] == [4] * 200


def test_explores_only_while_the_queue_is_deeper_than_the_limit():
    clock = Clock()
    tuner = BatchSizeTuner(BUCKETS, initial=8, clock=clock)
    # 8 clients, limit 8: every batch takes all, none is left waiting, nothing to explore.
    for _ in range(200):
        assert tuner.batch_size(8) == 8
        tuner.record(8, 0.1, backlog=False)
    assert tuner.snapshot()["explorations"] == 0
    assert tuner.limit == 8


def test_never_explores_a_bigger_bucket_the_queue_cannot_fill():
    clock = Clock()
    tuner = BatchSizeTuner(BUCKETS, initial=8, clock=clock)
    sizes = []
    for _ in range(300):
        take = tuner.batch_size(12)  # deeper than 8, too shallow for 16
        sizes.append(take)
        tuner.record(take, tuner.bucket_for(take) / curve(8)[tuner.bucket_for(take)], backlog=True)
    assert 16 not in sizes
    assert 4 in sizes  # the neighbour below was explored
    assert sizes.count(8) >= 0.9 * len(sizes)


def test_explorations_are_rare_once_neighbours_are_measured():
    clock = Clock()
    tuner = BatchSizeTuner(BUCKETS, initial=8, clock=clock)
    drive(tuner, clock, curve(8), 2000)
    snap = tuner.snapshot()
    assert snap["limit"] == 8
    # Warm-up explorations (a few per neighbour), then one in `explore_every`.
    assert snap["explorations"] <= 2000 / TunerSettings().explore_every + 10
    assert snap["by_bucket"]["4"]["samples"] >= 3
    assert snap["by_bucket"]["16"]["samples"] >= 3


def test_a_padded_batch_takes_fewer_items_when_that_serves_more():
    clock = Clock()
    tuner = BatchSizeTuner([1, 2, 4, 8], initial=8, clock=clock)
    for _ in range(3):
        tuner.record(4, 0.040, backlog=False)  # 100 img/s
        tuner.record(8, 0.160, backlog=False)  # 50 img/s
    # Five waiting: five padded to eight serve 5 / 0.161 = 31 img/s, four serve 97.
    assert tuner.batch_size(5) == 4
    # Eight waiting fill the bucket: no padding to avoid.
    assert tuner.batch_size(8) == 8


def test_a_padded_batch_keeps_every_item_when_the_bucket_is_cheap():
    clock = Clock()
    tuner = BatchSizeTuner([1, 2, 4, 8], initial=8, clock=clock)
    for _ in range(3):
        tuner.record(4, 0.040, backlog=False)  # 100 img/s
        tuner.record(8, 0.050, backlog=False)  # 160 img/s
    assert tuner.batch_size(5) == 5


def test_padding_is_judged_on_figures_of_one_kind():
    # Bucket 4 has only its (quiet) start-up figure, bucket 8 a live one: no comparison.
    tuner = BatchSizeTuner([1, 2, 4, 8], initial=8, seed={4: 400.0}, clock=Clock())
    for _ in range(3):
        tuner.record(8, 0.160, backlog=False)  # 50 img/s live
    assert tuner.batch_size(5) == 5
    # Seeded figures alone are compared with each other.
    seeded = BatchSizeTuner([1, 2, 4, 8], initial=8, seed={4: 100.0, 8: 50.0}, clock=Clock())
    assert seeded.batch_size(5) == 4


def test_a_padded_batch_is_charged_for_its_bucket():
    clock = Clock()
    tuner = BatchSizeTuner([1, 2, 4, 8], initial=8, clock=clock)
    tuner.record(5, 0.080, backlog=False)
    snap = tuner.snapshot()
    assert snap["by_bucket"]["8"]["samples"] == 1
    assert snap["by_bucket"]["8"]["items"] == 5
    assert snap["by_bucket"]["4"]["samples"] == 0
    assert snap["padding_waste"] == pytest.approx(3 / 8)
    # A full batch of eight costs what the padded five cost.
    assert tuner.estimate(8) == pytest.approx(8 / (0.080 + TunerSettings().overhead_s))


def test_start_up_seed_sets_the_first_limit_and_live_figures_win():
    clock = Clock()
    # A noisy start-up measurement said 32; the traffic says 4.
    seed = {1: 30.0, 2: 40.0, 4: 50.0, 8: 55.0, 16: 58.0, 32: 60.0}
    tuner = BatchSizeTuner(BUCKETS, seed=seed, clock=clock)
    assert tuner.limit == 32
    assert tuner.snapshot()["chosen_from"] == "seed"
    limits = drive(tuner, clock, curve(4), 600)
    assert limits[-1] == 4
    snap = tuner.snapshot()
    assert snap["chosen_from"] == "live"
    assert snap["by_bucket"]["4"]["source"] == "live"
    assert snap["history"][0] == {
        "ago_s": pytest.approx(clock.now, abs=0.1),
        "limit": 32,
        "why": "seed",
    }
    assert snap["history"][-1]["limit"] == 4


def test_old_batches_stop_counting():
    clock = Clock()
    tuner = BatchSizeTuner([1, 2, 4], initial=2, settings=TunerSettings(max_age_s=10), clock=clock)
    for _ in range(3):
        tuner.record(2, 0.1, backlog=False)
    clock.now += 11
    tuner.record(4, 0.1, backlog=False)
    snap = tuner.snapshot()
    assert snap["by_bucket"]["2"]["samples"] == 0
    assert snap["by_bucket"]["2"]["batches"] == 3  # all-time count kept
    assert snap["by_bucket"]["4"]["samples"] == 1


def test_snapshot_is_json_and_says_what_was_chosen_from_which_figures():
    clock = Clock()
    tuner = BatchSizeTuner(BUCKETS, initial=8, clock=clock)
    drive(tuner, clock, curve(8), 200)
    snap = json.loads(json.dumps(tuner.snapshot()))
    assert snap["limit"] == 8
    assert set(snap["by_bucket"]) == {str(b) for b in BUCKETS}
    row = snap["by_bucket"]["8"]
    assert row["img_s"] == pytest.approx(8 / (8 / 100 + TunerSettings().overhead_s), rel=0.01)
    assert row["samples"] == TunerSettings().window
    assert snap["batches"] == 200
    assert snap["backlogged_batches"] == 200
    assert snap["by_bucket"]["32"] == {
        "img_s": None,
        "median_ms": None,
        "samples": 0,
        "batches": 0,
        "items": 0,
        "explored": 0,
        "source": "none",
    }


def test_ignores_nonsense_reports():
    tuner = BatchSizeTuner([1, 2, 4], initial=2, clock=Clock())
    tuner.record(0, 0.1, backlog=True)
    tuner.record(2, -1.0, backlog=True)
    tuner.record(2, float("nan"), backlog=True)
    tuner.record(2, float("inf"), backlog=True)
    assert tuner.snapshot()["batches"] == 0


def test_batch_size_of_an_empty_queue_is_zero():
    assert BatchSizeTuner([1, 2, 4], clock=Clock()).batch_size(0) == 0


def test_default_initial_limit_is_the_middle_bucket():
    assert BatchSizeTuner(BUCKETS, clock=Clock()).limit == 8
    assert BatchSizeTuner([1], clock=Clock()).limit == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"buckets": []}, "buckets must be integers >= 1, got []"),
        ({"buckets": [0, 2]}, "buckets must be integers >= 1, got [0, 2]"),
        ({"buckets": [1, 2], "initial": 3}, "initial limit 3 is not one of the buckets [1, 2]"),
    ],
)
def test_bad_construction_says_what_was_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        BatchSizeTuner(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, "window must be an integer >= 1, got 0"),
        ({"min_samples": 10}, r"min_samples must be an integer in 1..window \(9\), got 10"),
        ({"margin": 1.0}, r"margin must be in \[0, 1\), got 1.0"),
        ({"explore_every": 0}, "explore_every must be an integer >= 1, got 0"),
        ({"max_age_s": 0}, "max_age_s must be > 0, got 0"),
        ({"z": -1}, "z must be >= 0, got -1"),
        ({"confirm_samples": 2}, r"confirm_samples must be an integer in min_samples..window"),
        ({"overhead_s": -1}, "overhead_s must be >= 0, got -1"),
    ],
)
def test_bad_settings_say_what_was_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TunerSettings(**kwargs)


def test_the_module_example_holds():
    import doctest

    import kerasserve.batching.tuner

    assert doctest.testmod(kerasserve.batching.tuner).failed == 0
