"""Held-out measurement of a trained classifier: accuracy, per-class figures, the confusion picture."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np


def top_k(classes: int) -> int:
    """k for top-k accuracy: 5, or fewer when that would make it trivially 1."""
    return max(1, min(5, classes - 1))


def measure(probabilities: np.ndarray, truth: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy, top-k accuracy, the confusion matrix and per-class precision and recall.

    Rows of the confusion matrix are true classes, columns predicted ones. A class never
    predicted has precision None (undefined), one absent from `truth` recall None.
    """
    classes = len(labels)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    k = top_k(classes)
    ranked = np.argsort(-probabilities, axis=1)[:, :k]
    in_top_k = (ranked == truth[:, None]).any(axis=1)
    per_class = {}
    for i, label in enumerate(labels):
        predicted_as = int(confusion[:, i].sum())
        actual = int(confusion[i, :].sum())
        per_class[label] = {
            "precision": float(confusion[i, i] / predicted_as) if predicted_as else None,
            "recall": float(confusion[i, i] / actual) if actual else None,
            "held_out": actual,
        }
    count = len(truth)
    return {
        "held_out_photos": count,
        "accuracy": float((predicted == truth).mean()) if count else None,
        "top_k": k,
        "top_k_accuracy": float(in_top_k.mean()) if count else None,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def confusion_png(confusion: list[list[int]], labels: list[str], title: str, path: Path) -> None:
    """Draw the confusion matrix (counts, true rows, predicted columns) into `path`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    matrix = np.asarray(confusion)
    size = max(3.5, 0.6 * len(labels) + 2)
    with warnings.catch_warnings():
        # Labels in scripts the default font lacks (Chinese) draw as boxes; the file is still
        # right, and metrics.json has the names.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig, ax = plt.subplots(figsize=(size + 1, size))
        try:
            image = ax.imshow(matrix, cmap="Blues")
            fig.colorbar(image, ax=ax, fraction=0.046)
            ticks = list(range(len(labels)))
            ax.set_xticks(ticks, labels, rotation=45, ha="right")
            ax.set_yticks(ticks, labels)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(title)
            limit = matrix.max() / 2 if matrix.size else 0
            for (row, col), value in np.ndenumerate(matrix):
                colour = "white" if value > limit else "black"
                ax.text(col, row, str(value), ha="center", va="center", color=colour)
            fig.tight_layout()
            fig.savefig(path, dpi=100)
        finally:
            plt.close(fig)
