"""`decode_image` on the valid-but-unusual inputs phones and scanners send, on bombs and on garbage."""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
from PIL import Image, ImageOps

from kerasserve.service.errors import (
    EmptyFile,
    ImageTooLarge,
    InvalidImage,
    ServiceError,
    UnsupportedMediaType,
)
from kerasserve.service.inference.imaging import decode_image
from tests.hardening import support
from tests.support.live_server import ROOT

BIG = 10**9  # no pixel limit in the tests of valid images


def decode(data: bytes, size: tuple[int, int] = (16, 16)) -> np.ndarray:
    out = decode_image(data, size, BIG)
    assert out.dtype == np.uint8
    assert out.shape == (*size, 3)
    return out


def test_16_bit_grayscale_png_keeps_its_levels():
    levels = np.zeros((16, 16), np.uint16)
    levels[:, 8:] = 0xFFFF
    levels[8:, :8] = 0x8000
    out = decode(support.png_16bit_gray(levels))
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[0, 15].tolist() == [255, 255, 255]
    assert out[15, 0].tolist() == [128, 128, 128]


def test_16_bit_rgb_png_keeps_its_colours():
    pixels = np.zeros((16, 16, 3), np.uint16)
    pixels[..., 0] = 0xFFFF  # red
    pixels[8:, :, 2] = 0x8080  # lower half: plus half blue
    out = decode(support.png_16bit_rgb(pixels))
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[15, 0].tolist() == [255, 0, 128]


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [((255, 0, 0, 0), (0, 255, 255)), ((0, 0, 0, 0), (255, 255, 255)), ((0, 0, 0, 255), (0, 0, 0))],
)
def test_cmyk_jpeg_becomes_the_right_rgb(cmyk, rgb):
    out = decode(support.cmyk_jpeg(cmyk))
    assert np.abs(out[16 // 2, 16 // 2].astype(int) - rgb).max() <= 3, out[8, 8]


def test_palette_png_transparency_is_composited_over_white():
    out = decode(support.palette_png_with_transparency())
    assert out[8, 1].tolist() == [255, 255, 255]  # transparent half
    assert out[8, 14].tolist() == [255, 0, 0]  # opaque red half


def test_animated_gif_gives_its_first_frame():
    out = decode(support.animated_gif())
    assert np.abs(out.astype(int) - (255, 0, 0)).max() <= 2


def test_multipage_tiff_gives_its_first_page():
    out = decode(support.multipage_tiff())
    assert out.reshape(-1, 3).tolist().count([255, 0, 0]) == 16 * 16


def test_exif_orientation_is_applied():
    # 20 wide x 10 high, left half red, right half blue; EXIF 6 = rotate 90 degrees clockwise.
    img = Image.new("RGB", (20, 10), (255, 0, 0))
    img.paste((0, 0, 255), (10, 0, 20, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = decode(support.encode(img, "JPEG", exif=exif.tobytes(), quality=95), size=(20, 10))
    assert np.abs(out[2, 5].astype(int) - (255, 0, 0)).max() <= 8  # top: what was left
    assert np.abs(out[17, 5].astype(int) - (0, 0, 255)).max() <= 8  # bottom: what was right


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows_exif_transpose(orientation):
    # Four colours in the quadrants of a 48x32 photo; every orientation must put each
    # where Pillow's exif_transpose puts it (the fast JPEG path turns arrays itself).
    img = Image.new("RGB", (48, 32), (255, 0, 0))
    img.paste((0, 255, 0), (24, 0, 48, 16))
    img.paste((0, 0, 255), (0, 16, 24, 32))
    img.paste((255, 255, 0), (24, 16, 48, 32))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = support.encode(img, "JPEG", exif=exif.tobytes(), quality=95)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    size = (upright.height, upright.width)
    out = decode(data, size=size)
    expected = np.asarray(upright.convert("RGB"))
    for y in (4, size[0] - 5):
        for x in (4, size[1] - 5):
            assert np.abs(out[y, x].astype(int) - expected[y, x]).max() <= 10, (y, x)


def test_a_small_photo_takes_the_scaled_decode_and_matches_pillow():
    # 640x427 for a 224x224 model: decoded at 5/8 by libjpeg-turbo, resized bilinearly;
    # Pillow's full decode with antialiased resize gives nearly the same pixels.
    from tests.support.models import photos

    data = photos(1, size=(427, 640), seed=3)[0]
    out = decode(data, size=(224, 224))
    ref = np.asarray(
        Image.open(io.BytesIO(data)).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
    )
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.mean() < 4, diff.mean()


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "1", "I", "F", "P"])
def test_every_pillow_mode_decodes_to_rgb(mode):
    fmt = "TIFF" if mode in ("I", "F") else "PNG"
    decode(support.encode(Image.new(mode, (8, 8)), fmt))


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (support.SVG, "SVG"),
        (support.HEIC, "HEIC"),
        (support.PDF, "PDF"),
        (b"just some text, named cat.jpg", None),
        (b"\x00\x00\x00\x1cftypavif" + b"\0" * 40, "AVIF"),
        (b"8BPS\x00\x01" + b"\0" * 40, "PSD"),
    ],
)
def test_formats_we_do_not_decode_are_415_naming_what_was_detected(data, detected):
    with pytest.raises(UnsupportedMediaType) as info:
        decode(data)
    assert info.value.extra is not None
    assert info.value.extra["detected"] == detected


def test_empty_file_is_empty_file():
    with pytest.raises(EmptyFile):
        decode(b"")


@pytest.mark.parametrize(
    "data",
    [
        support.jpeg()[:200],  # truncated
        b"\xff\xd8\xff\xe0" + b"\x00" * 300,  # corrupt header
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 50,  # PNG signature, no chunks
        b"GIF89a\x01",  # GIF signature, nothing more
    ],
)
def test_broken_images_are_invalid_image_with_a_readable_message(data):
    with pytest.raises(InvalidImage) as info:
        decode(data)
    assert "<_io" not in info.value.message  # no object reprs in what the client reads


@pytest.mark.parametrize(
    "bomb",
    [
        pytest.param(lambda: support.png_bomb(30000, complete=False), id="png-30000x30000-2KB"),
        pytest.param(lambda: support.png_bomb(30000), id="png-30000x30000-complete"),
        pytest.param(lambda: support.jpeg_claiming(65000, 65000), id="jpeg-65000x65000"),
        pytest.param(lambda: support.gif_claiming(20000, 20000), id="gif-20000x20000"),
        pytest.param(lambda: support.tiff_claiming(30000, 30000), id="tiff-30000x30000"),
    ],
)
def test_decompression_bombs_are_refused_from_their_header(bomb):
    data = bomb()
    assert len(data) < 200_000
    with pytest.raises(ImageTooLarge) as info:
        decode_image(data, (224, 224), 50_000_000)
    assert info.value.extra is not None
    assert info.value.extra["max_pixels"] == 50_000_000
    assert info.value.extra["width"] * info.value.extra["height"] >= 400_000_000


def test_decompression_bomb_costs_no_memory():
    """A 30000 x 30000 PNG (900 MB decoded) is refused with the process' peak RSS barely moved."""
    script = textwrap.dedent(
        """
        import json, resource, sys
        from kerasserve.service.errors import ImageTooLarge
        from kerasserve.service.inference.imaging import decode_image
        data = open(sys.argv[1], "rb").read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            decode_image(data, (224, 224), 50_000_000)
        except ImageTooLarge:
            refused = True
        else:
            refused = False
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"refused": refused, "grew_kb": after - before}))
        """
    )
    with tempfile.NamedTemporaryFile(suffix=".png") as bomb:
        bomb.write(support.png_bomb(30000))
        bomb.flush()
        out = subprocess.run(
            [sys.executable, "-c", script, bomb.name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["refused"] is True
    assert result["grew_kb"] < 20 * 1024, result  # a decode would add ~900 MB


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_mutated_images_fail_only_with_service_errors(fmt):
    """Regression for decoder exceptions leaking as 500s: mutate valid files byte by byte."""
    rng = random.Random(fmt)
    pixels = np.random.default_rng(1).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    seed = support.encode(Image.fromarray(pixels), fmt)
    for _ in range(250):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(data))
            op = rng.random()
            if op < 0.6:
                data[pos] = rng.randrange(256)
            elif op < 0.8:
                del data[pos : pos + rng.randint(1, 40)]
            else:
                data[pos:pos] = rng.randbytes(rng.randint(1, 16))
        with contextlib.suppress(ServiceError):
            decode_image(bytes(data), (16, 16), 10**6)
