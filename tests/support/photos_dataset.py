"""Labelled photos for training tests: DATA_DIR/<label>/*.jpg|png, one colour and texture a class.

Each class has its own hue and its own texture (stripes, dots, checks, rings), jittered in
shade, scale, phase and size on a noisy background, so a classifier must generalise a little to
the held-out photos rather than memorise pixels. Labels are the caller's: any text a folder
name can hold (Chinese included).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

TEXTURES = ("stripes", "dots", "checks", "rings")
COLOURS = ((215, 35, 35), (35, 190, 50), (40, 70, 215), (225, 205, 40))
DEFAULT_LABELS = ("red_stripes", "green_dots", "blue_checks", "yellow_rings")


def draw(kind: int, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """One photo (uint8 RGB, `size` = (height, width)) of class number `kind` (0-3)."""
    from PIL import Image, ImageDraw

    h, w = size
    hue = np.asarray(COLOURS[kind], dtype=np.float64) + rng.integers(-30, 31, 3)
    # The class colour tints the whole photo (a random base's features keep global colour far
    # better than texture), the texture is drawn over it in a darker shade of the same hue.
    tint = rng.uniform(0.45, 0.7)
    background = tint * hue + (1 - tint) * rng.integers(90, 171)
    noisy = rng.normal(background, 14, (h, w, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(noisy)
    pen = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in np.clip(hue * rng.uniform(0.45, 0.75), 0, 255))
    step = int(rng.integers(max(6, min(h, w) // 12), max(8, min(h, w) // 5)))
    shift = int(rng.integers(0, step))
    texture = TEXTURES[kind]
    if texture == "stripes":
        for x in range(-h + shift, w, step):
            pen.line([(x, 0), (x + h, h)], fill=colour, width=max(1, step // 2))
    elif texture == "dots":
        r = max(1, step // 3)
        for y in range(shift, h, step):
            for x in range(shift, w, step):
                pen.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    elif texture == "checks":
        for y in range(0, h, step):
            for x in range(0, w, step):
                if (x // step + y // step) % 2 == 0:
                    pen.rectangle([x + shift, y, x + shift + step - 1, y + step - 1], fill=colour)
    else:
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        for r in range(step // 2, 2 * max(h, w), step):
            pen.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=max(1, step // 3))
    return np.asarray(image)


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def write_dataset(
    directory: Path,
    per_class: int,
    *,
    labels: tuple[str, ...] = DEFAULT_LABELS,
    seed: int = 0,
    size: tuple[int, int] = (72, 96),
) -> dict[str, list[Path]]:
    """`per_class` photos of each label under `directory/<label>/`, JPEG and PNG alternating.

    Up to 4 labels (one per texture); sizes vary around `size` so the reader must resize.
    """
    if not 1 <= len(labels) <= len(TEXTURES):
        raise ValueError(f"1 to {len(TEXTURES)} labels, got {len(labels)}: {labels!r}")
    rng = np.random.default_rng(seed)
    written: dict[str, list[Path]] = {}
    for kind, label in enumerate(labels):
        folder = directory / label
        folder.mkdir(parents=True, exist_ok=True)
        written[label] = []
        for i in range(per_class):
            h = int(size[0] * rng.uniform(0.8, 1.25))
            w = int(size[1] * rng.uniform(0.8, 1.25))
            fmt, suffix = ("JPEG", "jpg") if i % 2 == 0 else ("PNG", "png")
            path = folder / f"{label}_{i:03d}.{suffix}"
            path.write_bytes(encode(draw(kind, rng, (h, w)), fmt))
            written[label].append(path)
    return written
