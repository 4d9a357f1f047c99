"""Heads fitted on embeddings in seconds: cosine nearest-centroid or logistic regression.

    embeddings (n, d) ─▶ × scale ─▶ − mean ─▶ unit length ─▶ Dense(classes, softmax)

Both heads are that one Keras stack (`Rescaling`, `Normalization`, `UnitNormalization`,
`Dense`): the nearest-centroid's kernel is the unit class centroids divided by a temperature,
the logistic regression's is learned on centred features. Each is judged by leave-one-out accuracy on the
examples, computed from the examples' Gram matrix (every logistic fold re-centres, as the
served head would), and the better one is kept (a tie keeps the nearest-centroid).

Why the scale: a fresh base (`weights=None`) pools features of about 1e-12; Keras' own
normalisation layers floor their divisor at 1e-7, so the features are brought to unit size
first. Their direction is what carries the class, and it survives the scale.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

HeadKind = Literal["centroid", "logistic"]
TEMPERATURES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
L2 = 1e-3
STEPS = 300


@dataclass(frozen=True)
class Evaluation:
    """Leave-one-out results of one head: accuracy, mean log-loss, recall per class, and the
    confusion counts (rows: the true class, columns: the predicted one, in class order)."""

    accuracy: float
    log_loss: float
    per_class: dict[str, float]
    confusion: list[list[int]]


@dataclass
class FittedHead:
    """A head ready to become Keras layers: `softmax(unit((x * scale) - mean) @ kernel + bias)`."""

    kind: HeadKind
    classes: list[str]
    scale: float
    mean: np.ndarray
    kernel: np.ndarray
    bias: np.ndarray
    temperature: float | None
    evaluations: dict[HeadKind, Evaluation] = field(default_factory=dict)

    @property
    def evaluation(self) -> Evaluation:
        return self.evaluations[self.kind]

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """What the Keras head computes, in numpy (float64)."""
        units = _unit(np.asarray(embeddings, np.float64) * self.scale - self.mean)
        logits = units @ self.kernel + self.bias
        return _softmax(logits)


class FitError(ValueError):
    """The examples cannot make a classifier; the message says which and what to do."""


def check_examples(labels: list[str], min_per_class: int = 2) -> Counter[str]:
    """The examples per class, or `FitError`: fewer than two classes, or a class too small
    for leave-one-out."""
    counts = Counter(labels)
    if len(counts) < 2:
        only = next(iter(counts), None)
        raise FitError(
            f"a classifier needs at least 2 classes; the examples have {len(counts)}"
            + (f" ({only!r})" if only is not None else "")
            + ": add photos of another class"
        )
    small = sorted(label for label, n in counts.items() if n < min_per_class)
    if small:
        shown = ", ".join(f"{label!r} ({counts[label]})" for label in small)
        raise FitError(
            f"every class needs at least {min_per_class} photos (one is held out in turn to "
            f"measure accuracy); too few: {shown}"
        )
    return counts


def fit(embeddings: np.ndarray, labels: list[str]) -> FittedHead:
    """Fit both heads on `embeddings` (n, d) with one label each; keep the better by
    leave-one-out accuracy. Classes keep the order of their first example."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(labels):
        raise FitError(f"expected one embedding per label, got {x.shape} for {len(labels)}")
    check_examples(labels)
    norms = np.linalg.norm(x, axis=1)
    if not np.all(np.isfinite(norms)) or np.median(norms) <= 0:
        raise FitError(
            "the base's features are zero or not finite for these photos: this base cannot "
            "tell them apart; try another base"
        )
    classes = list(dict.fromkeys(labels))
    y = np.array([classes.index(label) for label in labels])
    scale = float(1.0 / np.median(norms))
    z = x * scale
    gram = z @ z.T

    centroid_scores = np.stack(
        [_loo_centroid_scores(gram, y, i, len(classes)) for i in range(len(y))]
    )
    temperature = min(TEMPERATURES, key=lambda t: _log_loss(centroid_scores / t, y))
    logistic_logits = np.stack(
        [_loo_logistic_logits(gram, y, i, len(classes)) for i in range(len(y))]
    )
    evaluations: dict[HeadKind, Evaluation] = {
        "centroid": _evaluate(centroid_scores / temperature, y, classes),
        "logistic": _evaluate(logistic_logits, y, classes),
    }
    kind: HeadKind = (
        "logistic"
        if evaluations["logistic"].accuracy > evaluations["centroid"].accuracy
        else "centroid"
    )
    onehot = np.eye(len(classes))[y]
    if kind == "centroid":
        # Plain cosine: centring on a handful of examples measured worse for the centroids
        # (leave-one-out 0.55-0.9 vs 0.8-0.95 uncentred, three fresh MobileNetV2 bases).
        mean = np.zeros(z.shape[1])
        centroids = _unit(onehot.T @ _unit(z))
        kernel = centroids.T / temperature
        bias = np.zeros(len(classes))
        chosen_t: float | None = temperature
    else:
        mean = z.mean(axis=0)
        units = _unit(z - mean)
        dual, bias = _logistic_dual(units @ units.T, onehot)
        kernel = units.T @ dual
        chosen_t = None
    return FittedHead(kind, classes, scale, mean, kernel, bias, chosen_t, evaluations)


def keras_head(head: FittedHead, features: Any) -> Any:
    """The head as plain Keras layers on `features` (a pooled tensor): loads with safe_mode."""
    import keras

    d = int(head.mean.shape[0])
    x = keras.layers.Rescaling(head.scale, name="examples_scale")(features)
    x = keras.layers.Normalization(
        mean=head.mean.astype(np.float32),
        variance=np.ones(d, np.float32),
        name="examples_centre",
    )(x)
    x = keras.layers.UnitNormalization(name="examples_unit")(x)
    dense = keras.layers.Dense(len(head.classes), activation="softmax", name=f"{head.kind}_head")
    out = dense(x)
    dense.set_weights([head.kernel.astype(np.float32), head.bias.astype(np.float32)])
    return out


# -- inside ----------------------------------------------------------------------------------
def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


def _log_loss(logits: np.ndarray, y: np.ndarray) -> float:
    p = _softmax(logits)[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.maximum(p, 1e-12))))


def _evaluate(logits: np.ndarray, y: np.ndarray, classes: list[str]) -> Evaluation:
    predicted = logits.argmax(axis=1)
    hits = predicted == y
    per_class = {c: round(float(hits[y == k].mean()), 4) for k, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)
    return Evaluation(
        round(float(hits.mean()), 4),
        round(_log_loss(logits, y), 4),
        per_class,
        confusion.tolist(),
    )


def _fold_kernel(gram: np.ndarray, held: int, *, centre: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cosine kernel of the examples (centred on the mean of all but `held`, when `centre`):
    the rows of the others (m, m) and the held-out example's row against them (m,)."""
    n = gram.shape[0]
    keep = np.arange(n) != held
    centred = gram
    if centre:
        # (z_a - m)·(z_b - m) with m the mean of the kept examples, from dot products alone
        to_mean = gram[:, keep].mean(axis=1)
        mean_sq = to_mean[keep].mean()
        centred = gram - to_mean[:, None] - to_mean[None, :] + mean_sq
    norms = np.sqrt(np.maximum(np.diag(centred), 1e-24))
    cosine = centred / norms[:, None] / norms[None, :]
    return cosine[np.ix_(keep, keep)], cosine[held, keep]


def _loo_centroid_scores(gram: np.ndarray, y: np.ndarray, held: int, classes: int) -> np.ndarray:
    kernel, row = _fold_kernel(gram, held, centre=False)
    labels = np.delete(y, held)
    scores = np.empty(classes)
    for k in range(classes):
        members = labels == k
        size = np.sqrt(max(kernel[np.ix_(members, members)].sum(), 1e-24))
        scores[k] = row[members].sum() / size
    return scores


def _loo_logistic_logits(gram: np.ndarray, y: np.ndarray, held: int, classes: int) -> np.ndarray:
    kernel, row = _fold_kernel(gram, held, centre=True)
    labels = np.delete(y, held)
    dual, bias = _logistic_dual(kernel, np.eye(classes)[labels])
    return np.asarray(row @ dual + bias)


def _logistic_dual(kernel: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression with an L2 penalty, by gradient descent in the dual
    (kernel = unit features' dot products, so the weights are `units.T @ dual`): n x n work
    per step instead of n x d, which is what makes leave-one-out cheap."""
    n, c = onehot.shape
    dual = np.zeros((n, c))
    bias = np.zeros(c)
    # Unit-length rows bound the loss' curvature by 1/2 (+ the penalty): a safe fixed step.
    step = 1.0 / (0.5 + L2)
    for _ in range(STEPS):
        probs = _softmax(kernel @ dual + bias)
        error = (probs - onehot) / n
        dual -= step * (error + L2 * dual)
        bias -= step * error.sum(axis=0)
    return dual, bias
