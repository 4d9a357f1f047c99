"""A photo folder checked before training: its classes, the photos that decode, those that do not.

`DATA_DIR/<label>/*.jpg|png|webp` is the layout of `keras.utils.image_dataset_from_directory`.
Every file is decoded once with Pillow here, so a broken file is listed and skipped instead of
stopping TensorFlow's reader mid-epoch; the readable ones are staged (linked, or converted to PNG
for formats TensorFlow cannot read, such as WebP) into a folder Keras reads.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from kerasserve.service.training.errors import InvalidDataset

# What tf.io.decode_image reads as is; other formats Pillow decodes are converted to PNG.
TF_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "GIF": ".gif"}
MIN_PER_CLASS = 2


@dataclass
class PhotoFolder:
    """The classes (sorted, as Keras orders them), their usable photos, and what was skipped."""

    root: Path
    classes: list[str]
    photos: dict[str, list[Path]]
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {label: len(self.photos[label]) for label in self.classes}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def fingerprint(self) -> str:
        """sha256 over every used photo's class, name and bytes: the same folder, the same value."""
        digest = hashlib.sha256()
        for label in self.classes:
            for path in self.photos[label]:
                digest.update(f"{label}/{path.name}\0".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def _decodes(path: Path) -> tuple[str | None, str | None]:
    """(Pillow's format name, None) when the whole image decodes, else (None, why)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            fmt = img.format
            img.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:120]}"
    except Image.DecompressionBombError as exc:
        return None, f"too many pixels: {str(exc)[:120]}"
    return fmt or "unknown", None


def scan(root: Path) -> PhotoFolder:
    """Read `root`; raise `InvalidDataset` (saying what to do) when it cannot train a classifier."""
    if not root.is_dir():
        raise InvalidDataset(
            f"DATA_DIR {str(root)!r} is not a directory; expected DATA_DIR/<label>/*.jpg, one "
            "folder of photos per class"
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    ignored = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    photos: dict[str, list[Path]] = {}
    unreadable: list[tuple[Path, str]] = []
    for folder in folders:
        good = []
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or any(part.startswith(".") for part in path.parts[-2:]):
                continue
            _, why = _decodes(path)
            if why is not None:
                unreadable.append((path, why))
            else:
                good.append(path)
        if good:
            photos[folder.name] = good
    found = PhotoFolder(root, sorted(photos), photos, unreadable, ignored)
    _check(found, folders)
    return found


def _check(found: PhotoFolder, folders: list[Path]) -> None:
    root = str(found.root)
    skipped = f" ({len(found.unreadable)} unreadable files skipped)" if found.unreadable else ""
    if not found.classes:
        raise InvalidDataset(
            f"DATA_DIR {root!r} holds no readable photos{skipped}: found "
            f"{len(folders)} class folders. Put one folder per class in it, e.g. "
            f"{root}/cat/1.jpg and {root}/dog/1.jpg"
        )
    if len(found.classes) < 2:
        raise InvalidDataset(
            f"DATA_DIR {root!r} has one class with photos ({found.classes[0]!r}){skipped}; a "
            "classifier needs at least 2: add a folder of photos for another class"
        )
    few = {label: n for label, n in found.counts.items() if n < MIN_PER_CLASS}
    if few:
        shown = ", ".join(f"{label!r}: {n}" for label, n in few.items())
        raise InvalidDataset(
            f"every class needs at least {MIN_PER_CLASS} readable photos; too few in {shown}"
            f"{skipped}. Add photos to those folders or remove them from {root!r}"
        )


def stage(found: PhotoFolder, into: Path) -> Path:
    """A folder Keras can read: the usable photos only, linked (or converted to PNG)."""
    from PIL import Image

    for label in found.classes:
        target = into / label
        target.mkdir(parents=True)
        for i, path in enumerate(found.photos[label]):
            with Image.open(path) as img:
                suffix = TF_FORMATS.get(img.format or "")
                if suffix is None:
                    img.convert("RGB").save(target / f"{i:06d}.png")
                    continue
            os.symlink(path.resolve(), target / f"{i:06d}{suffix}")
    return into
