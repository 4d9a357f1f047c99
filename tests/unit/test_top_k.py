"""`top_k_predictions`: most probable first, ties in class order (also at the k-th place)."""

from __future__ import annotations

import numpy as np

from kerasserve.service.inference.labels import generic
from kerasserve.service.inference.loaded import RANKED, score, top_k_predictions


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


def test_a_batch_ranked_where_it_finishes_answers_every_k_as_a_stable_sort_would() -> None:
    """`score` ranks a batch's rows off the event loop; `top_k_predictions` answers from that
    ranking up to `RANKED` classes and sorts the row itself past it: the same classes either
    way, in a stable sort's order, with ties, plateaus and NaN rows in the batch."""
    rng = np.random.default_rng(1)
    rows = rng.random((6, 40)).astype(np.float32)
    rows[1] = np.round(rows[1], 1)  # many ties, also across the RANKED-th place
    rows[2] = 0.025  # one plateau: class order
    rows[3, [4, 9, 30]] = np.nan
    rows[4, :] = np.nan
    rows[5, 20:] = rows[5, :20]  # every value twice
    labels = generic(40)
    for scored, row in zip(score(rows), rows, strict=True):
        assert scored.ranked.shape == (RANKED,)
        expected = np.argsort(-row, kind="stable")  # NaN last
        for k in (1, 3, 5, RANKED, RANKED + 1, 40, 100):
            with_ranking = top_k_predictions(labels, scored.probs, k, scored.ranked)
            alone = top_k_predictions(labels, row, k)
            assert [p.index for p in with_ranking] == expected[: min(k, 40)].tolist()
            assert with_ranking == alone
