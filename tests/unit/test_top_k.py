"""`top_k_predictions`: most probable first, ties in class order (also at the k-th place)."""

from __future__ import annotations

import numpy as np

from kerasserve.service.inference.labels import generic
from kerasserve.service.inference.loaded import top_k_predictions


def ranked(probs: list[float], k: int) -> list[int]:
    labels = generic(len(probs))
    return [p.index for p in top_k_predictions(labels, np.array(probs, np.float32), k)]


def test_most_probable_first() -> None:
    rng = np.random.default_rng(0)
    probs = rng.random(1000).astype(np.float32)
    labels = generic(1000)
    got = [p.index for p in top_k_predictions(labels, probs, 5)]
    assert got == np.argsort(-probs, kind="stable")[:5].tolist()


def test_ties_keep_class_order_also_at_the_kth_place() -> None:
    assert ranked([0.1, 0.3, 0.1, 0.3, 0.1, 0.1], 3) == [1, 3, 0]
    assert ranked([0.0] * 10, 4) == [0, 1, 2, 3]
    assert ranked([0.2, 0.5], 10) == [1, 0]


def test_nan_outputs_still_give_k_classes_of_the_finite_ones() -> None:
    nan = float("nan")
    assert ranked([0.1, nan, 0.5, 0.2, nan, 0.05], 3) == [2, 3, 0]
    labels = generic(3)
    probs = top_k_predictions(labels, np.array([0.7, 1.2, -0.1], np.float32), 3)
    assert [p.probability for p in probs] == [1.0, 0.699999988079071, 0.0]  # clamped to [0, 1]
