"""Turn what users pass as an image (a path, bytes, a file, pixels) into one multipart file part."""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeAlias

from kerasserve_client._encode import Pixels, encode_image, is_pixels

ImageInput: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | Pixels
"""A path to an image file, its encoded bytes, a file object opened in binary mode, or pixels:
a uint8 numpy array (height, width[, channels]) or a PIL image, sent as PNG."""

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


def read_upload(image: ImageInput, index: int = 0) -> Upload:
    """Read one image input; bytes get the name `image-<index>` so results can be matched up."""
    name: str | None = None
    if isinstance(image, bytes | bytearray | memoryview):
        content = bytes(image)
    elif isinstance(image, str | os.PathLike):
        path = Path(image)
        content = path.read_bytes()
        name = path.name
    elif is_pixels(image):
        content = encode_image(image)
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
    sniffed = sniff(content)
    if name is None:
        name = f"image-{index}{sniffed[1] if sniffed else ''}"
    if sniffed:
        content_type = sniffed[0]
    else:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Upload(name, content, content_type)


def needs_thread(image: ImageInput) -> bool:
    """Whether reading this input touches the disk or encodes pixels (the async client does those
    in a thread)."""
    return not isinstance(image, bytes | bytearray | memoryview)
