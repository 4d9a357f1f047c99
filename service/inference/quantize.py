"""INT8 for the OpenVINO runtime: NNCF quantisation calibrated on real photos, and its accuracy gate.

    photos (a folder)  ──views()──▶  uint8 crops  ──quantize()──▶  INT8 openvino.Model
    held-out photos    ──views()──▶  uint8 crops  ──agreement(FP32 Keras, INT8)──▶  Gate.check()

Calibration and gate photos never overlap: the built-in set is split in two folders
(`data/calibration/calibrate`, `data/calibration/holdout`, sources and licences in
`data/calibration/NOTICE.md`), and a held-out photo whose bytes equal a calibration photo's
is left out of the gate. Each photo gives several views (centre and corner crops at three
scales, each also mirrored), so a handful of photos gives the ~100 gate images a 99 % top-1
threshold needs to mean something.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kerasserve.service.errors import ModelLoadError

logger = logging.getLogger("kerasserve.openvino")

DATA = Path(__file__).resolve().parent / "data" / "calibration"
BUILTIN_CALIBRATION = DATA / "calibrate"
HOLDOUT = DATA / "holdout"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

# Crop sides as a share of the photo's short side; every crop but the full one is taken at the
# centre and at the four corners, and every crop is also mirrored: 1 + 2 * 5 = 11, x2 = 22 views.
CROP_SCALES = (1.0, 0.8, 0.6)
VIEWS_PER_PHOTO = (1 + 5 * (len(CROP_SCALES) - 1)) * 2
# Bumped when views() changes: the INT8 cache key includes it (the calibration data changed).
VIEWS_VERSION = 1
# Bumped when what a gate measures changes: cached gate figures carry it.
GATE_VERSION = 2
# Bumped when `quantize` asks NNCF for something else (options, the sample transform): the INT8
# cache key includes it, so a cached model made the old way is not served as the new one.
QUANTIZE_VERSION = 1

PRESETS = ("performance", "mixed")
# PERFORMANCE (symmetric activations) over MIXED (asymmetric): on MobileNetV2 (2-core AVX2 CPU,
# python -m bench.int8) INT8 ran 1.67x FP32 with PERFORMANCE against 1.35x with MIXED, and
# the two kept the FP32 ranking equally (He-rescaled weights: top-1 100 % vs 99.2 %, top-5
# 0.72 vs 0.77 over 132 held-out images).
DEFAULT_PRESET = "performance"


@dataclass(frozen=True)
class PhotoSet:
    """Photos read from one folder, with a digest of their bytes (names and order ignored)."""

    paths: tuple[Path, ...]
    description: str
    digests: frozenset[str]

    @property
    def digest(self) -> str:
        return hashlib.sha256("".join(sorted(self.digests)).encode()).hexdigest()[:16]


def photo_set(directory: Path | None) -> PhotoSet:
    """The calibration photos: those in `directory`, or the built-in set when it is None."""
    folder = BUILTIN_CALIBRATION if directory is None else Path(directory)
    if not folder.is_dir():
        raise ModelLoadError(
            f"--calibration-images {folder} is not a folder; give a folder of photos "
            f"({', '.join(PHOTO_SUFFIXES)})"
        )
    paths = tuple(
        sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    )
    if not paths:
        raise ModelLoadError(
            f"--calibration-images {folder} holds no photos ({', '.join(PHOTO_SUFFIXES)})"
        )
    digests = frozenset(hashlib.sha256(p.read_bytes()).hexdigest() for p in paths)
    source = "built-in" if directory is None else str(folder)
    return PhotoSet(paths, f"{source}: {len(paths)} photos x {VIEWS_PER_PHOTO} views", digests)


def holdout_set(calibration: PhotoSet, directory: Path | None = None) -> PhotoSet:
    """The gate's held-out photos, less any that is also a calibration photo: those in
    `directory/holdout` when the calibration folder has one (the model's own held-out photos),
    else the built-in held-out set."""
    own = None if directory is None else Path(directory) / "holdout"
    held = photo_set(own if own is not None and own.is_dir() else HOLDOUT)
    keep = tuple(
        p
        for p in held.paths
        if hashlib.sha256(p.read_bytes()).hexdigest() not in calibration.digests
    )
    if not keep:
        raise ModelLoadError(
            "the calibration photos include every held-out gate photo: the accuracy gate "
            "would measure on the data it was calibrated on; calibrate on other photos"
        )
    source = "held-out" if held.paths[0].parent == HOLDOUT else f"held-out {held.paths[0].parent}"
    return PhotoSet(
        keep,
        f"{source}: {len(keep)} photos x {VIEWS_PER_PHOTO} views",
        held.digests - calibration.digests,
    )


def views(path: Path, input_size: tuple[int, int]) -> list[np.ndarray]:
    """Square crops of one photo at several scales and places, each also mirrored, resized to
    `input_size` (h, w) as uint8 RGB."""
    from PIL import Image

    h, w = input_size
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except Exception as exc:  # Pillow raises several unrelated types for a bad file
        raise ModelLoadError(f"calibration photo {path} does not decode: {exc}") from exc
    width, height = image.size
    short = min(width, height)
    out = []
    for scale in CROP_SCALES:
        side = max(1, round(short * scale))
        spots = [((width - side) // 2, (height - side) // 2)]
        if scale < 1.0:
            spots += [(0, 0), (width - side, 0), (0, height - side), (width - side, height - side)]
        for x, y in spots:
            crop = image.crop((x, y, x + side, y + side)).resize((w, h), Image.Resampling.BILINEAR)
            out.append(np.asarray(crop, dtype=np.uint8))
            out.append(np.asarray(crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT), np.uint8))
    return out


def load_views(photos: PhotoSet, input_size: tuple[int, int]) -> np.ndarray:
    """Every view of every photo, stacked: uint8 (n, h, w, 3)."""
    return np.stack([view for path in photos.paths for view in views(path, input_size)])


def quantize(
    model: Any,
    samples: np.ndarray,
    preprocess: Callable[[np.ndarray], np.ndarray],
    preset: str = DEFAULT_PRESET,
) -> Any:
    """Post-training INT8 quantisation of an `openvino.Model` with NNCF.

    `samples` are uint8 pixels; `preprocess` maps a uint8 batch to the model's float input.
    Every sample is used (subset_size = len(samples)), one at a time.
    """
    if preset not in PRESETS:
        raise ModelLoadError(f"INT8 preset must be one of {PRESETS}, got {preset!r}")
    # NNCF ships no type information: imported by name, it is Any to mypy.
    nncf: Any = importlib.import_module("nncf")

    def transform(sample: np.ndarray) -> np.ndarray:
        return preprocess(sample[None])

    dataset = nncf.Dataset(list(samples), transform)
    try:
        return nncf.quantize(
            model,
            dataset,
            preset=nncf.QuantizationPreset(preset),
            subset_size=len(samples),
        )
    except Exception as exc:
        raise ModelLoadError(f"INT8 quantisation with NNCF failed: {exc}") from exc


# A top-1 lead over the runner-up smaller than this share of the top-1 score is a tie as far as
# the gate is concerned (relative: a 1000-class softmax spreads its mass thin).
DECIDED_MARGIN = 1e-3


@dataclass(frozen=True)
class Agreement:
    """How far a candidate's rankings follow the reference's on the same images."""

    top1_agreement: float
    top5_overlap: float
    images: int
    # Largest difference in any served probability: reported, not gated (one image near a
    # decision boundary may move a lot while the ranking holds).
    max_prob_diff: float = 0.0
    # Share of images whose reference top-1 leads its runner-up by more than DECIDED_MARGIN of
    # the top-1 score: a
    # model that gives every image the same scores (random weights: uniform softmax) has no
    # ranking to keep, and would otherwise "agree" with anything that keeps its ties.
    decided: float = 1.0


def agreement(reference: np.ndarray, candidate: np.ndarray) -> Agreement:
    """Share of images with the same top-1 class, and the mean share of top-5 classes in
    common, between two (n, classes) score arrays."""
    if reference.shape != candidate.shape or reference.ndim != 2:
        raise ValueError(
            f"scores must be two arrays of the same (n, classes) shape, got "
            f"{reference.shape} and {candidate.shape}"
        )
    k = min(5, reference.shape[1])
    top_ref = np.argsort(-reference, axis=1, kind="stable")[:, :k]
    top_cand = np.argsort(-candidate, axis=1, kind="stable")[:, :k]
    same1 = float(np.mean(top_ref[:, 0] == top_cand[:, 0]))
    overlap = [len(set(a) & set(b)) / k for a, b in zip(top_ref, top_cand, strict=True)]
    diff = float(np.abs(reference - candidate).max())
    ordered = np.sort(reference, axis=1)
    margins = ordered[:, -1] - ordered[:, -2] if reference.shape[1] > 1 else ordered[:, -1]
    scale = np.maximum(np.abs(ordered[:, -1]), np.finfo(np.float32).tiny)
    decided = float(np.mean(margins > DECIDED_MARGIN * scale))
    return Agreement(same1, float(np.mean(overlap)), reference.shape[0], diff, decided)


@dataclass(frozen=True)
class Gate:
    """Minimum agreement of a reduced-precision model (int8, bf16) with the FP32 Keras model
    on held-out photos, both through the serving head."""

    top1_min: float = 0.99
    top5_min: float = 0.95
    # Least share of images the reference decides (see Agreement.decided); not asked of a gate
    # opened on purpose (top1_min 0: no agreement asked, so no ranking either).
    decided_min: float = 0.5

    def ranked(self, measured: Agreement) -> bool:
        return self.top1_min <= 0 or measured.decided >= self.decided_min

    def passes(self, measured: Agreement) -> bool:
        return (
            self.ranked(measured)
            and measured.top1_agreement >= self.top1_min
            and measured.top5_overlap >= self.top5_min
        )

    def check(self, measured: Agreement, precision: str = "int8") -> None:
        """Raise ModelLoadError, with the figures, when `measured` falls short."""
        if self.passes(measured):
            return
        if not self.ranked(measured):
            raise ModelLoadError(
                f"{precision.upper()} model failed its accuracy gate: the FP32 Keras model gives "
                f"{1 - measured.decided:.0%} of {measured.images} held-out images the same top "
                f"scores (a lead under {DECIDED_MARGIN:g} of the top score; needs at most "
                f"{1 - self.decided_min:.0%}), so there is no ranking to keep (random weights?); "
                "serve it in fp32, or train the model first"
            )
        raise ModelLoadError(
            f"{precision.upper()} model failed its accuracy gate on {measured.images} held-out images: "
            f"top-1 agreement with FP32 Keras {measured.top1_agreement:.2%} "
            f"(needs >= {self.top1_min:.0%}), mean top-5 overlap {measured.top5_overlap:.3f} "
            f"(needs >= {self.top5_min:.2f}); serve it in fp32 or calibrate on photos closer "
            f"to the traffic (--calibration-images)"
        )


def predict_all(
    predict: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray, batch: int
) -> np.ndarray:
    """`predict` over many images, `batch` at a time."""
    return np.concatenate([predict(pixels[i : i + batch]) for i in range(0, len(pixels), batch)])
