"""Heads fitted on embeddings: leave-one-out, the choice between heads, and the clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from kerasserve.service.inference import fitting


def clusters(per_class: int, classes: int, *, spread: float, seed: int, scale: float = 1e-12):
    """Embeddings around `classes` directions sharing one big common component (as a fresh
    base's are), at a tiny scale."""
    rng = np.random.default_rng(seed)
    d = 64
    common = rng.normal(size=d) * 5
    directions = rng.normal(size=(classes, d))
    x = np.concatenate(
        [common + directions[k] + spread * rng.normal(size=(per_class, d)) for k in range(classes)]
    )
    labels = [f"类{k}" for k in range(classes) for _ in range(per_class)]
    return (np.abs(x) * scale).astype(np.float32), labels


def test_separable_classes_are_found_at_any_scale() -> None:
    x, labels = clusters(5, 4, spread=0.2, seed=0)
    head = fitting.fit(x, labels)
    assert head.classes == ["类0", "类1", "类2", "类3"]  # order of the first example
    assert head.evaluation.accuracy == 1.0
    assert set(head.evaluations) == {"centroid", "logistic"}
    held, held_labels = clusters(3, 4, spread=0.2, seed=0)
    predicted = [head.classes[i] for i in head.probabilities(held).argmax(axis=1)]
    assert predicted == held_labels


def test_the_better_head_is_kept_and_ties_keep_the_centroid() -> None:
    x, labels = clusters(6, 3, spread=1.5, seed=3)
    head = fitting.fit(x, labels)
    centroid, logistic = head.evaluations["centroid"], head.evaluations["logistic"]
    expected = "logistic" if logistic.accuracy > centroid.accuracy else "centroid"
    assert head.kind == expected
    assert (head.temperature is not None) == (head.kind == "centroid")
    probs = head.probabilities(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)


def test_leave_one_out_is_not_training_accuracy() -> None:
    # Pure noise: any head fits its training photos, but none finds a held-out one above chance.
    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 64)).astype(np.float32)
    labels = [str(i % 4) for i in range(40)]
    head = fitting.fit(x, labels)
    assert head.evaluation.accuracy < 0.6
    trained = np.mean(np.array(head.classes)[head.probabilities(x).argmax(1)] == np.array(labels))
    assert trained > head.evaluation.accuracy
    confusion = np.array(head.evaluation.confusion)
    assert confusion.shape == (4, 4)
    assert list(confusion.sum(axis=1)) == [10] * 4  # every example once, in its true row
    assert np.trace(confusion) / 40 == pytest.approx(head.evaluation.accuracy, abs=1e-4)


@pytest.mark.parametrize(
    ("labels", "says"),
    [
        (["a", "a", "a"], "at least 2 classes"),
        (["a", "a", "b"], "too few: 'b' (1)"),
    ],
)
def test_too_few_examples_are_refused(labels: list[str], says: str) -> None:
    with pytest.raises(fitting.FitError, match=says.replace("(", r"\(").replace(")", r"\)")):
        fitting.fit(np.ones((len(labels), 8), np.float32), labels)


def test_zero_features_are_refused() -> None:
    with pytest.raises(fitting.FitError, match="zero or not finite"):
        fitting.fit(np.zeros((4, 8), np.float32), ["a", "a", "b", "b"])
