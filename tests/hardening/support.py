"""Helpers for the hardening suite: the bad-input corpus, raw HTTP, metrics and memory probes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.support.live_server import free_port

PREDICT = "/v1/models/MobileNetV2/predict"


# -- assertions ----------------------------------------------------------------------------
def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    """`response` is the `ErrorResponse` of `status`/`code`, with the request id echoed."""
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["code"] == code, body
    assert body["message"], body
    assert body["request_id"] == response.headers["x-request-id"], (body, response.headers)
    return body


# -- images ----------------------------------------------------------------------------------
def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def jpeg(size: tuple[int, int] = (96, 64), color: tuple[int, int, int] = (200, 30, 40)) -> bytes:
    return encode(Image.new("RGB", size, color), "JPEG", quality=90)


@functools.cache
def png_bomb(side: int = 30000, *, complete: bool = True) -> bytes:
    """A 1-bit black PNG of `side` x `side` pixels: ~110 KB that decode to `side`² bytes
    (900 MB at 30000), and to three times that as RGB. `complete=False` keeps only its
    first 2 KB of pixel data: a few-KB file with the same header."""
    if not complete:
        full = png_bomb(side)
        idat_at = full.index(b"IDAT")
        head, data = full[: idat_at - 4], full[idat_at + 4 : idat_at + 4 + 2048]
        return head + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
    row = b"\0" * (1 + (side + 7) // 8)
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(row * 1000) for _ in range(side // 1000))
    idat += deflate.compress(row * (side % 1000)) + deflate.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose SOF0 marker claims `width` x `height`."""
    data = bytearray(jpeg((8, 8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    """A small GIF whose screen and frame descriptors claim `width` x `height`."""
    data = bytearray(encode(Image.new("L", (8, 8)), "GIF"))
    size = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    data[6:10] = size
    frame = data.index(b"\x2c", 13)  # image descriptor: ',' left top width height
    data[frame + 5 : frame + 9] = size
    return bytes(data)


def tiff_claiming(width: int, height: int) -> bytes:
    """A small little-endian TIFF whose ImageWidth/ImageLength tags claim `width` x `height`."""
    data = bytearray(encode(Image.new("L", (8, 8)), "TIFF"))
    assert data[:2] == b"II"
    ifd = struct.unpack_from("<I", data, 4)[0]
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag = struct.unpack_from("<H", data, entry)[0]
        if tag in (256, 257):  # ImageWidth, ImageLength: rewrite as one LONG
            struct.pack_into("<HHII", data, entry, tag, 4, 1, width if tag == 256 else height)
    return bytes(data)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_16bit_rgb(pixels: np.ndarray) -> bytes:
    """A 48-bit RGB PNG (Pillow reads these but cannot write them): `pixels` is uint16 (h, w, 3)."""
    h, w, _ = pixels.shape
    rows = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def png_16bit_gray(pixels: np.ndarray) -> bytes:
    return encode(Image.fromarray(pixels.astype(np.uint16)), "PNG")


def cmyk_jpeg(cmyk: tuple[int, int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    return encode(Image.new("CMYK", size, cmyk), "JPEG", quality=95)


def palette_png_with_transparency() -> bytes:
    """Left half palette index 0 (transparent), right half index 1 (opaque red)."""
    img = Image.new("P", (16, 16), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    for x in range(8):
        for y in range(16):
            img.putpixel((x, y), 0)
    return encode(img, "PNG", transparency=0)


def frames(*colors: tuple[int, int, int], size: tuple[int, int] = (16, 16)) -> list[Image.Image]:
    return [Image.new("RGB", size, c) for c in colors]


def animated_gif() -> bytes:
    first, *rest = frames((255, 0, 0), (0, 255, 0), (0, 0, 255))
    return encode(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)


def multipage_tiff() -> bytes:
    first, *rest = frames((255, 0, 0), (0, 255, 0), (0, 0, 255))
    return encode(first, "TIFF", save_all=True, append_images=rest)


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


# -- raw multipart -----------------------------------------------------------------------------
BOUNDARY = "hardening-boundary-7f3a"


def multipart(*parts: tuple[bytes, bytes]) -> tuple[bytes, dict[str, str]]:
    """Body and headers from (part header lines, part data) pairs, byte for byte as given."""
    out = b""
    for headers, data in parts:
        out += b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n"
    out += b"--" + BOUNDARY.encode() + b"--\r\n"
    return out, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def file_part(data: bytes, *, name: bytes = b"image", filename: bytes = b"a.jpg") -> tuple:
    headers = (
        b'Content-Disposition: form-data; name="' + name + b'"; filename="' + filename + b'"\r\n'
        b"Content-Type: image/jpeg"
    )
    return headers, data


# -- raw sockets ------------------------------------------------------------------------------
@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool = False  # the server closed the connection after answering
    elapsed: float = 0.0


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return RawResponse(status, headers, body[:length])


def read_response(sock: socket.socket, deadline: float, close_within: float = 0) -> RawResponse:
    """Read one response (Content-Length framed); with `close_within`, also wait that long
    to see whether the server closes the connection after it."""
    start = time.monotonic()
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _framed_length(data):
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    response = parse_response(data)
    response.elapsed = time.monotonic() - start
    if close_within:
        sock.settimeout(close_within)
        try:
            response.closed = sock.recv(1) == b""
        except ConnectionResetError:
            response.closed = True
        except TimeoutError:
            response.closed = False
    return response


def _framed_length(data: bytes) -> int:
    head, sep, _ = data.partition(b"\r\n\r\n")
    if not sep:
        return 1 << 62
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length":
            return len(head) + 4 + int(value)
    return len(data)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- metrics ----------------------------------------------------------------------------------
@dataclass
class Metrics:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float:
        """Sum of the samples called `name` whose labels include `labels` (0 if none)."""
        want = set(labels.items())
        return sum(
            value
            for (sample, got), value in self.samples.items()
            if sample == name and want <= set(got)
        )


def parse_metrics(text: str) -> Metrics:
    metrics = Metrics()
    for family in text_string_to_metric_families(text):
        metrics.types[family.name] = family.type
        for s in family.samples:
            metrics.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return metrics


def scrape(base_url: str, headers: dict[str, str] | None = None) -> Metrics:
    r = httpx.get(f"{base_url}/metrics", headers=headers, timeout=30)
    r.raise_for_status()
    return parse_metrics(r.text)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    """Poll `predicate` until true; the bound is generous, the poll is only a wait."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


async def await_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


# -- process memory -------------------------------------------------------------------------
def proc_status_kb(pid: int, field_name: str) -> int:
    """`VmRSS` (now) or `VmHWM` (peak) of a process, in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


# -- an in-process server -------------------------------------------------------------------
@contextlib.contextmanager
def serve_in_thread(app: Any, ready_timeout: float = 240) -> Iterator[str]:
    """Run `app` under a real `uvicorn.Server` on 127.0.0.1 in a thread (httpx's pattern)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-in-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the in-process server failed to start; see the log above")
        if time.monotonic() > deadline:
            raise TimeoutError(f"in-process server not started after {ready_timeout}s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


class Gate:
    """A runtime `predict` that holds each batch until the test opens the gate.

    It wraps the real predict (the real model still runs); `fail_calls` names calls (1-based)
    that raise instead, `garbage_calls` calls that return a malformed result (one number per
    image, not a row), `wide_calls` rows wider than the labels, the top class past them.
    """

    def __init__(self, real: Callable[[np.ndarray], np.ndarray]) -> None:
        self.real = real
        self._open = threading.Event()
        self._open.set()
        self.batches: list[int] = []
        self.fail_calls: set[int] = set()
        self.garbage_calls: set[int] = set()
        self.wide_calls: set[int] = set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    @property
    def calls(self) -> int:
        return len(self.batches)

    @property
    def images(self) -> int:
        return sum(self.batches)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(len(batch))
        call = len(self.batches)
        if not self._open.wait(timeout=120):
            raise RuntimeError("the test never opened the gate")
        if call in self.fail_calls:
            raise RuntimeError(f"injected failure in model call {call}")
        if call in self.garbage_calls:
            return np.zeros(len(batch), np.float32)  # one number per image, not a row
        if call in self.wide_calls:
            wide = np.zeros((len(batch), 2000), np.float32)
            wide[:, 1500] = 1.0  # a class no label names
            return wide
        return self.real(batch)
