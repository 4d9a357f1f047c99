"""Pixels to PNG/JPEG: exact round trips through Pillow's decoder, and clear refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from kerasserve_client import encode_image
from kerasserve_client._uploads import Prepare, read_upload

RNG = np.random.default_rng(7)


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


@pytest.mark.parametrize(
    "shape", [(5, 7), (5, 7, 1), (5, 7, 2), (6, 4, 3), (3, 9, 4), (1, 1, 3), (64, 48, 3)]
)
def test_png_of_an_array_decodes_to_the_same_pixels(shape):
    array = RNG.integers(0, 256, size=shape, dtype=np.uint8)

    data = encode_image(array)

    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    expected = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
    np.testing.assert_array_equal(decode(data), expected)


def test_a_strided_view_is_encoded_as_what_it_shows():
    array = RNG.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)
    view = array[::2, ::3]

    np.testing.assert_array_equal(decode(encode_image(view)), view)


def test_png_of_a_smooth_photo_sized_array_is_compressed():
    y, x = np.mgrid[0:480, 0:640]
    array = np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)

    data = encode_image(array)

    assert len(data) < array.nbytes / 20  # the Sub filter turns gradients into runs
    np.testing.assert_array_equal(decode(data), array)


def test_jpeg_of_an_array_is_close_to_it():
    y, x = np.mgrid[0:64, 0:64]
    array = np.stack([x * 4, y * 4, np.full_like(x, 128)], axis=2).astype(np.uint8)

    data = encode_image(array, "jpeg", quality=95)

    assert data.startswith(b"\xff\xd8\xff")
    assert np.abs(decode(data).astype(int) - array).mean() < 3


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "CMYK", "I;16"])
def test_pil_images_of_any_mode_encode_to_what_pillow_reads(mode):
    image = Image.fromarray(RNG.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)).convert(mode)

    png, jpeg = encode_image(image), encode_image(image, "jpeg")

    assert decode(png).shape[:2] == (8, 8)
    assert decode(jpeg).shape[:2] == (8, 8)
    if mode in ("RGB", "RGBA", "L"):
        np.testing.assert_array_equal(decode(png), np.asarray(image))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (
            np.zeros((4, 4, 3), np.float32),
            r"must be uint8 pixels, got dtype float32 \(floats in 0..1",
        ),
        (np.zeros((4, 4, 3), np.int64), "must be uint8 pixels, got dtype int64$"),
        (
            np.zeros((2, 4, 4, 3), np.uint8),
            r"got shape \(2, 4, 4, 3\); for a batch pass list\(batch\)",
        ),
        (np.zeros((4, 4, 5), np.uint8), r"1 to 4 channels, got shape \(4, 4, 5\)"),
        (np.zeros((0, 4, 3), np.uint8), r"got shape \(0, 4, 3\)"),
        (np.zeros(4, np.uint8), r"got shape \(4,\)"),
    ],
)
def test_arrays_that_are_not_one_image_are_refused_with_what_to_pass(array, message):
    with pytest.raises(ValueError, match=message):
        encode_image(array)


def test_format_and_quality_are_checked():
    array = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="format must be 'png' or 'jpeg', got 'gif'"):
        encode_image(array, "gif")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="quality must be within 1..100, got 0"):
        encode_image(array, "jpeg", quality=0)


def test_an_array_upload_is_a_png_named_after_its_position_when_asked():
    upload = read_upload(np.zeros((3, 3, 3), np.uint8), 4, Prepare(pixels="png"))

    assert (upload.filename, upload.content_type) == ("image-4.png", "image/png")
    np.testing.assert_array_equal(decode(upload.content), np.zeros((3, 3, 3), np.uint8))


def test_png_of_an_array_needs_no_pillow(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['PIL'] = None\n"  # any `import PIL` now fails
        "import numpy as np\n"
        "from kerasserve_client import encode_image\n"
        "data = encode_image(np.zeros((2, 2, 3), np.uint8))\n"
        "print(data[:4] == b'\\x89PNG')\n"
        "try:\n"
        "    encode_image(np.zeros((2, 2, 3), np.uint8), 'jpeg')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    first, second = out.stdout.splitlines()
    assert first == "True"
    assert second.startswith("JPEG encoding needs Pillow, which kerasserve_client does not install")


def _jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 230)).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_a_large_photo_shrinks_to_1024_on_its_long_side_by_default():
    upload = read_upload(_jpeg((4000, 3000)), 0)

    picture = Image.open(io.BytesIO(upload.content))
    assert picture.size == (1024, 768)
    assert upload.content_type == "image/jpeg"


def test_max_side_none_sends_the_original_bytes():
    original = _jpeg((1600, 1200))

    assert read_upload(original, 0, Prepare(max_side=None)).content == original


def test_a_small_photo_and_undecodable_bytes_go_unchanged():
    small = _jpeg((640, 480))

    assert read_upload(small, 0).content == small
    assert read_upload(b"\xff\xd8\xff not really a jpeg", 0).content.endswith(b"a jpeg")


def test_a_transparent_png_shrinks_as_png_and_keeps_its_alpha():
    out = io.BytesIO()
    Image.new("RGBA", (2048, 512), (0, 0, 0, 0)).save(out, "PNG")

    upload = read_upload(out.getvalue(), 0)

    picture = Image.open(io.BytesIO(upload.content))
    assert (picture.format, picture.mode, picture.size) == ("PNG", "RGBA", (1024, 256))


def test_an_array_shrinks_too_and_max_side_is_checked():
    upload = read_upload(np.zeros((2000, 500, 3), np.uint8), 0)

    assert Image.open(io.BytesIO(upload.content)).size == (256, 1024)
    with pytest.raises(ValueError, match="max_side must be >= 32 pixels or None.*got 0"):
        Prepare(max_side=0)
