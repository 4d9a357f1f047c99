"""Turn what users pass as an image (a path, bytes, a file, pixels) into one multipart file part."""

from __future__ import annotations

import io
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeAlias

from kerasserve_client._encode import ImageFormat, Pixels, encode_image, is_pixels, pillow_or_none

DEFAULT_MAX_SIDE = 1024
"""Uploads shrink to this many pixels on their long side (models read 224 to 600)."""
SHRUNK_JPEG_QUALITY = 90

ImageInput: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | Pixels
"""A path to an image file, its encoded bytes, a file object opened in binary mode, or pixels:
a uint8 numpy array (height, width[, channels]) or a PIL image, sent as JPEG (PNG without Pillow)."""


@dataclass(frozen=True)
class Prepare:
    """How inputs become uploads: shrunk to `max_side` (None: originals), pixels as `pixels`.

    Shrinking needs Pillow (`pip install 'kerasserve-client[images]'`); without it files go as
    they are. Pixels go as JPEG by default (PNG when Pillow is missing: PNG needs only numpy).
    """

    max_side: int | None = DEFAULT_MAX_SIDE
    pixels: ImageFormat = "jpeg"

    def __post_init__(self) -> None:
        if self.max_side is not None and self.max_side < 32:
            raise ValueError(
                f"max_side must be >= 32 pixels or None (send originals), got {self.max_side}"
            )
        if self.pixels not in ("png", "jpeg"):
            raise ValueError(f"pixels must be 'png' or 'jpeg', got {self.pixels!r}")


DEFAULT_PREPARE = Prepare()

# Magic numbers of the formats a server may decode, so bytes without a name get a content type.
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
    (b"BM", "image/bmp", ".bmp"),
    (b"II*\x00", "image/tiff", ".tif"),
    (b"MM\x00*", "image/tiff", ".tif"),
)


@dataclass(frozen=True)
class Upload:
    filename: str
    content: bytes
    content_type: str

    def part(self) -> tuple[str, tuple[str, bytes, str]]:
        """The `files=` entry httpx expects; the server reads every part named `image`."""
        return ("image", (self.filename, self.content, self.content_type))


def sniff(content: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the first bytes, or None for a format we do not know."""
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp", ".webp"
    for magic, content_type, extension in _SIGNATURES:
        if content.startswith(magic):
            return content_type, extension
    return None


def read_upload(image: ImageInput, index: int = 0, prepare: Prepare = DEFAULT_PREPARE) -> Upload:
    """Read one image input; bytes get the name `image-<index>` so results can be matched up.

    Photos larger than `prepare.max_side` are shrunk first (with Pillow, when installed).
    """
    name: str | None = None
    if isinstance(image, bytes | bytearray | memoryview):
        content = bytes(image)
    elif isinstance(image, str | os.PathLike):
        path = Path(image)
        content = path.read_bytes()
        name = path.name
    elif is_pixels(image):
        content = _encode_pixels(image, prepare)
    elif hasattr(image, "read"):
        content = image.read()
        if not isinstance(content, bytes):
            raise TypeError(
                f"the file object for image {index} returned {type(content).__name__}, not bytes; "
                "open it in binary mode: open(path, 'rb')"
            )
        file_name = getattr(image, "name", None)
        name = os.path.basename(file_name) if isinstance(file_name, str) else None
    else:
        raise TypeError(
            f"image {index} is a {type(image).__name__}; pass a path, bytes, a file opened 'rb', "
            "a uint8 numpy array or a PIL image"
        )
    if prepare.max_side is not None and not is_pixels(image):
        content = shrink(content, prepare.max_side)
    sniffed = sniff(content)
    if name is None:
        name = f"image-{index}{sniffed[1] if sniffed else ''}"
    if sniffed:
        content_type = sniffed[0]
    else:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Upload(name, content, content_type)


def needs_thread(image: ImageInput, prepare: Prepare = DEFAULT_PREPARE) -> bool:
    """Whether reading this input touches the disk, decodes or encodes (the async client does
    those in a thread). Bytes under 64 KiB shrink in well under a millisecond, if at all."""
    if not isinstance(image, bytes | bytearray | memoryview):
        return True
    shrinking = prepare.max_side is not None and pillow_or_none() is not None
    return shrinking and len(image) > _SMALL_BYTES


_SMALL_BYTES = 64 * 1024


def _encode_pixels(image: Pixels, prepare: Prepare) -> bytes:
    pil = pillow_or_none()
    if pil is None:
        return encode_image(image, "png")
    picture: Any = image if _is_pil_image(image) else pil.Image.fromarray(_squeeze(image))
    if prepare.max_side is not None and max(picture.size) > prepare.max_side:
        picture = picture.copy()
        picture.thumbnail((prepare.max_side, prepare.max_side), pil.Image.Resampling.LANCZOS)
    return encode_image(picture, prepare.pixels)


def _is_pil_image(image: object) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "save")


def _squeeze(image: object) -> object:
    """A (height, width, 1) array as (height, width): Pillow has no one-channel 3-D mode."""
    import numpy as np  # pixels that are not a PIL image are an array: numpy is there

    array = np.asarray(image)
    return array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array


def shrink(content: bytes, max_side: int) -> bytes:
    """The photo re-encoded with its long side at most `max_side`, or `content` unchanged.

    Unchanged when Pillow is missing, the photo is small enough, or Pillow cannot read it (the
    server will say what is wrong with it). JPEGs decode at a reduced scale (`draft`), so a
    12-megapixel photo never needs its full-size pixels in memory.
    """
    pil = pillow_or_none()
    if pil is None:
        return content
    try:
        with pil.Image.open(io.BytesIO(content)) as picture:
            if max(picture.size) <= max_side or getattr(picture, "n_frames", 1) > 1:
                return content
            has_alpha = "A" in picture.getbands() or "transparency" in picture.info
            if picture.format == "JPEG":
                picture.draft("RGB", (max_side, max_side))
            picture = pil.ImageOps.exif_transpose(picture)
            picture.thumbnail((max_side, max_side), pil.Image.Resampling.LANCZOS)
            out = io.BytesIO()
            if has_alpha:
                picture.save(out, format="PNG")
            else:
                picture.convert("RGB").save(out, format="JPEG", quality=SHRUNK_JPEG_QUALITY)
            return out.getvalue()
    except (OSError, ValueError, SyntaxError, pil.Image.DecompressionBombError):
        return content
