"""Held-out accuracy of `kerasserve train` against thresholds measured on this machine.

No ImageNet weights here, so every base is random: generated colour-and-texture photos (four
classes, chance 0.25) and scikit-learn's handwritten digits (ten classes, chance 0.1; a real
dataset the package ships). docs/own-classes.md gives the figures each threshold comes from and
the command that measured them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kerasserve.service.training.train import TrainOptions, train
from tests.support.photos_dataset import write_dataset


def digits(root: Path, per_class: int) -> Path:
    """sklearn's 8x8 digits (0-16 grey levels) as 32x32 RGB PNGs, DATA_DIR/<digit>/."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    for digit in range(10):
        folder = root / str(digit)
        folder.mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(data.target == digit)[:per_class]):
            grey = Image.fromarray((data.images[index] * 255 / 16).astype(np.uint8))
            grey.resize((32, 32), Image.Resampling.BILINEAR).convert("RGB").save(
                folder / f"{i:03d}.png"
            )
    return root


# (dataset, image side, --random-base, least held-out accuracy). Measured (docs/own-classes.md):
# colours bn-statistics 0.42-0.53 (seeds 1-3), unit-norm 1.0; digits unit-norm 0.60, 0.58,
# 0.73, 0.70 (seeds 1-4, 2026-12-03; this test runs seed 1, which ended at 0.60 after a
# plateau at 0.52). Thresholds sit below the worst measured run (digits: 5x chance).
CASES = [
    ("colours", 48, "bn-statistics", 0.35),
    ("colours", 48, "unit-norm", 0.85),
    ("digits", 32, "unit-norm", 0.5),
]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "size", "route", "least"), CASES)
def test_held_out_accuracy_reaches_the_measured_threshold(tmp_path, kind, size, route, least):
    data = tmp_path / "data"
    if kind == "colours":
        write_dataset(data, 24, seed=1)
    else:
        digits(data, 30)
    options = TrainOptions(
        data_dir=data,
        repository=tmp_path / "repo",
        name=kind,
        weights="none",
        image_size=size,
        epochs=30,
        patience=8,
        learning_rate=0.01,
        seed=1,
        random_base=route,
        verbose=0,
    )
    result = train(options, say=lambda line: None)
    metrics = result.metrics
    assert metrics["weights"]["random_base"] == route
    assert metrics["held_out_photos"] >= 19
    assert metrics["accuracy"] >= least, metrics
