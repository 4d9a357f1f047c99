"""The upload set: real photos shipped with scikit-learn and scikit-image, as JPEG bytes.

Two variants of each photo:
- "small": long side 640 px, JPEG q90 (50-100 KB), what a web page uploads;
- "phone": 4032x3024, JPEG q90, about 3 MB, what a phone camera (and the mini-program) sends.

The sources are 300-640 px, so a phone photo is the source cropped to 4:3, upscaled, and given
Gaussian grain calibrated until the file is ~3 MB: a camera's sensor noise is what makes a
12-MP JPEG that large, and the entropy-coded size is what a decoder has to chew through
(DCT-domain downscaling skips the inverse transform of most coefficients, not their decoding).
The files are cached in `bench/results/tmp/images/` (git-ignored), keyed by a version.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERSION = 1
SMALL_LONG_SIDE = 640
PHONE_SIZE = (4032, 3024)
PHONE_TARGET_BYTES = 3_000_000
QUALITY = 90
VARIANTS = ("small", "phone")
CACHE = Path(__file__).resolve().parent / "results" / "tmp" / "images"


@dataclass(frozen=True)
class Photo:
    name: str
    variant: str
    data: bytes

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.variant}.jpg"


def sources() -> dict[str, np.ndarray]:
    """Colour photos that ship inside the packages (no download)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sklearn.datasets import load_sample_images  # type: ignore[import-untyped]

        found: dict[str, np.ndarray] = {}
        sample = load_sample_images()
        for path, image in zip(sample.filenames, sample.images, strict=True):
            found[Path(path).stem] = image
        try:
            import skimage.data as data
        except ImportError:  # scikit-image is optional: two photos are enough to run
            return found
        for name in ("astronaut", "coffee", "chelsea", "rocket"):
            try:
                found[name] = np.asarray(getattr(data, name)())[..., :3]
            except Exception:  # a photo that would need a download is skipped
                continue
    return found


def _jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=QUALITY)
    return buf.getvalue()


def make_small(image: np.ndarray) -> bytes:
    from PIL import Image

    img = Image.fromarray(image).convert("RGB")
    w, h = img.size
    scale = SMALL_LONG_SIDE / max(w, h)
    img = img.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
    return _jpeg(np.asarray(img))


def make_phone(image: np.ndarray, seed: int) -> bytes:
    from PIL import Image

    img = Image.fromarray(image).convert("RGB")
    w, h = img.size
    tw, th = PHONE_SIZE
    if w / h > tw / th:
        nw = int(h * tw / th)
        box = ((w - nw) // 2, 0, (w - nw) // 2 + nw, h)
    else:
        nh = int(w * th / tw)
        box = (0, (h - nh) // 2, w, (h - nh) // 2 + nh)
    base = np.asarray(img.crop(box).resize(PHONE_SIZE, Image.Resampling.BICUBIC), np.float32)
    noise = np.random.default_rng(seed).standard_normal(base.shape, dtype=np.float32)
    sigma, data = 7.0, b""
    for _ in range(4):  # the size grows about linearly with sigma here; 2-3 steps converge
        data = _jpeg(np.clip(base + sigma * noise, 0, 255).astype(np.uint8))
        if abs(len(data) - PHONE_TARGET_BYTES) < 0.05 * PHONE_TARGET_BYTES:
            break
        sigma *= PHONE_TARGET_BYTES / len(data)
    return data


def load(variant: str, limit: int | None = None, cache: Path = CACHE) -> list[Photo]:
    """The photos of one variant, built on first use and cached."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    folder = cache / f"v{VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    photos: list[Photo] = []
    srcs: dict[str, np.ndarray] | None = None
    # Every source photo's name, written once: the photos already cached are not the whole set
    # when a first load asked for fewer (`limit`), and a run must not shrink to them.
    index = folder / "names.txt"
    if index.exists():
        names = index.read_text().split()
    else:
        srcs = sources()
        names = sorted(srcs)
        tmp = index.with_suffix(".part")
        tmp.write_text("\n".join(names) + "\n")
        tmp.replace(index)
    for seed, name in enumerate(names[:limit]):
        path = folder / f"{name}-{variant}.jpg"
        if not path.exists():
            if srcs is None:
                srcs = sources()
            image = srcs[name]
            data = make_small(image) if variant == "small" else make_phone(image, seed)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        photos.append(Photo(name, variant, path.read_bytes()))
    return photos


def describe(photos: list[Photo]) -> dict[str, object]:
    sizes = [len(p.data) for p in photos]
    return {
        "count": len(photos),
        "names": [p.name for p in photos],
        "bytes_min": min(sizes),
        "bytes_mean": int(sum(sizes) / len(sizes)),
        "bytes_max": max(sizes),
    }
