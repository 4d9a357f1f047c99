"""The photos of the trained-model INT8 gate: one definition for tests/integration/test_precision.py
and `python -m bench.int8_gate_trained`, so the study measures the photos the test judges.

    ROOT/train/<class>/*.jpg         48 per class (seed 1): what the model is fit on
    ROOT/holdout/<class>/*.jpg       8 per class (seed 2): held-out accuracy
    ROOT/calibration/*.jpg           6 per class (seed 3): INT8 calibration (`--calibration-images`)
    ROOT/calibration/holdout/*.jpg   the held-out photos again: the gate's own held-out set
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support import trained

TRAIN_PER_CLASS, TRAIN_SEED = 48, 1
HOLDOUT_PER_CLASS, HOLDOUT_SEED = 8, 2
CALIBRATION_PER_CLASS, CALIBRATION_SEED = 6, 3


@dataclass(frozen=True)
class Photos:
    train: dict[str, list[Path]]
    holdout: dict[str, list[Path]]
    calibration: Path


def write(
    root: Path,
    train_per_class: int = TRAIN_PER_CLASS,
    calibration_per_class: int = CALIBRATION_PER_CLASS,
) -> Photos:
    """Every photo under `root`, laid out as above."""
    train = trained.write_photos(root / "train", per_class=train_per_class, seed=TRAIN_SEED)
    holdout = trained.write_photos(root / "holdout", per_class=HOLDOUT_PER_CLASS, seed=HOLDOUT_SEED)
    calibration = root / "calibration"
    (calibration / "holdout").mkdir(parents=True)
    calibrate = trained.write_photos(
        root / "calibrate", per_class=calibration_per_class, seed=CALIBRATION_SEED
    )
    for label, paths in calibrate.items():
        for path in paths:
            (calibration / path.name).write_bytes(path.read_bytes())
        for path in holdout[label]:
            (calibration / "holdout" / path.name).write_bytes(path.read_bytes())
    return Photos(train, holdout, calibration)
