"""Encode pixels (a numpy array or a PIL image) as PNG or JPEG bytes, numpy and Pillow optional.

PNG needs only numpy for arrays (the encoder is zlib and a few chunks), so arrays upload without
Pillow; JPEG, and anything about a PIL image, uses Pillow, which the caller has if they hold one.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeGuard

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

ImageFormat = Literal["png", "jpeg"]
DEFAULT_JPEG_QUALITY = 95

# PNG colour type by channel count: grey, grey + alpha, RGB, RGBA.
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


class Pixels(Protocol):
    """A numpy array or a PIL image: both expose the array interface."""

    @property
    def __array_interface__(self) -> object: ...


def is_pixels(image: object) -> TypeGuard[Pixels]:
    return _is_pil(image) or hasattr(image, "__array_interface__") or hasattr(image, "__array__")


def encode_image(
    image: Pixels, format: ImageFormat = "png", *, quality: int = DEFAULT_JPEG_QUALITY
) -> bytes:
    """PNG (lossless, the default) or JPEG bytes of a PIL image or a uint8 array.

    Arrays are `(height, width)` grey or `(height, width, channels)` with 1 to 4 channels (RGB
    order, as Pillow and Keras use). PNG of an array needs only numpy; JPEG needs Pillow.

    >>> client.predict(encode_image(frame, "jpeg", quality=90))  # smaller uploads than PNG
    """
    if format not in ("png", "jpeg"):
        raise ValueError(f"format must be 'png' or 'jpeg', got {format!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be within 1..100, got {quality}")
    if _is_pil(image):
        return _encode_pil(image, format, quality)
    pixels = _as_uint8_image(image)
    if format == "png":
        return _png(pixels)
    pil = _pillow("JPEG encoding")
    grey_or_colour = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    return _encode_pil(pil.Image.fromarray(grey_or_colour), format, quality)


def _is_pil(image: object) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "save")


def _pillow(purpose: str) -> Any:
    try:
        import PIL.Image
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs Pillow, which kerasserve_client does not install: pip install "
            "pillow (or send PNG, which arrays get without Pillow)"
        ) from exc
    return PIL


def pillow_or_none() -> Any:
    """The `PIL` package with `Image` and `ImageOps` loaded, or None when Pillow is missing."""
    try:
        import PIL.Image
        import PIL.ImageOps
    except ImportError:
        return None
    return PIL


def _encode_pil(image: Any, format: ImageFormat, quality: int) -> bytes:
    buffer = io.BytesIO()
    if format == "jpeg":
        # JPEG has no alpha and no palette: flatten to what it can hold.
        if image.mode not in ("L", "RGB", "CMYK"):
            image = image.convert("RGB")
        image.save(buffer, format="JPEG", quality=quality)
    else:
        if image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def _as_uint8_image(image: object) -> npt.NDArray[np.uint8]:
    """The array as (height, width, channels) uint8, or a ValueError that says what to pass."""
    try:
        import numpy as np
    except ImportError as exc:  # an object with __array__ but no numpy: a stranger's array type
        raise ImportError(
            f"a {type(image).__name__} is encoded through numpy: pip install numpy"
        ) from exc
    array = np.asarray(image)
    if array.dtype != np.uint8:
        hint = (
            " (floats in 0..1: (x * 255).round().astype('uint8'))"
            if array.dtype.kind == "f"
            else ""
        )
        raise ValueError(f"an image array must be uint8 pixels, got dtype {array.dtype}{hint}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in _COLOUR_TYPES or 0 in array.shape:
        batch = "; for a batch pass list(batch)" if array.ndim == 4 else ""
        raise ValueError(
            "an image array must be (height, width) or (height, width, channels) with 1 to 4 "
            f"channels, got shape {tuple(array.shape)}{batch}"
        )
    return np.ascontiguousarray(array)


def _png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """A PNG of (height, width, channels) uint8 pixels, every row with the Sub filter."""
    import numpy as np

    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    # Sub filter: each byte minus the same channel of the pixel to its left, modulo 256 (uint8
    # arithmetic wraps); photos compress markedly better than unfiltered.
    filtered = np.empty((height, 1 + width * channels), dtype=np.uint8)
    filtered[:, 0] = 1
    filtered[:, 1 : 1 + channels] = rows[:, :channels]
    filtered[:, 1 + channels :] = rows[:, channels:] - rows[:, :-channels]
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
