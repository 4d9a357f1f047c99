"""Read an upload into memory with its limits enforced while the body streams in.

Starlette's form parser spools large files to disk; ours never writes a byte of an upload
anywhere, stops reading at the byte limit, and bounds the number of parts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from kerasserve.service.errors import (
    InvalidRequest,
    MissingImage,
    PayloadTooLarge,
    RequestTimeout,
    TooManyImages,
    UnsupportedMediaType,
)

IMAGE_FIELD = "image"
_RAW_TYPES = (b"image/", b"application/octet-stream")
# An upload over the limit is still read (and thrown away) up to this many bytes before the
# 413 goes out: a client that is still sending then reads the answer instead of a reset.
DISCARD_LIMIT = 64 * 1024 * 1024
DISCARD_IDLE_S = 1.0
# A part's header lines (Content-Disposition with its filename, Content-Type) are small; a
# megabyte-long filename is an attack on the parser, not a name.
MAX_PART_HEADER = 8 * 1024
# The header names `canonical_parts` reads itself (every client sends just these characters).
_HEADER_NAME = re.compile(rb"[A-Za-z0-9-]+")


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    chunks: list[bytes] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class Upload:
    images: list[Part]
    fields: dict[str, str]
    other_files: list[str]

    def require_images(self) -> tuple[list[bytes], list[str | None]]:
        """The images' bytes and file names, or `MissingImage` naming what the form held."""
        if not self.images:
            got = sorted(set(self.fields) | set(self.other_files))
            hint = f"; the form has {got}" if got else ""
            raise MissingImage(f"no file in the form field {IMAGE_FIELD!r}{hint}")
        return [p.data for p in self.images], [p.filename for p in self.images]


def _decode_header(raw: bytes) -> str:
    # Filenames arrive as raw bytes in whatever encoding the client used; never fail on them.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _new_part(headers: dict[bytes, bytes]) -> Part:
    """A part from its header lines (names in lower case), or why it is not a form field."""
    disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
    if disposition != b"form-data" or b"name" not in options:
        raise InvalidRequest("a multipart part lacks `Content-Disposition: form-data; name=...`")
    filename = options.get(b"filename")
    ctype = headers.get(b"content-type")
    return Part(
        name=_decode_header(options[b"name"]),
        filename=_decode_header(filename) if filename is not None else None,
        content_type=ctype.decode("latin-1") if ctype else None,
    )


def canonical_parts(body: bytes, boundary: bytes, max_parts: int) -> list[Part] | None:
    """The parts of a whole multipart body in the form every client sends (browsers, curl,
    httpx, requests, `wx.uploadFile`): no preamble, CRLF line ends, `Name: value` header
    lines. Found with `bytes.find`, several times faster than a byte-by-byte parser on a
    photo; None for anything else (too many parts, long headers, odd framing), which the
    streaming parser then reads and names what is wrong with."""
    delimiter = b"--" + boundary
    if not body.startswith(delimiter + b"\r\n"):
        return None
    separator = b"\r\n" + delimiter
    parts: list[Part] = []
    pos = len(delimiter) + 2
    while len(parts) < max_parts:
        if body.startswith(b"\r\n", pos):  # a part without headers
            return None
        head_end = body.find(b"\r\n\r\n", pos, pos + MAX_PART_HEADER)
        if head_end < 0:
            return None
        headers: dict[bytes, bytes] = {}
        for line in body[pos:head_end].split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if not colon or not _HEADER_NAME.fullmatch(name) or b"\r" in value or b"\n" in value:
                return None
            headers[name.lower()] = value.lstrip(b" \t")
        start = head_end + 4
        end = body.find(separator, start)
        if end < 0:
            return None
        part = _new_part(headers)
        part.chunks.append(body[start:end])
        parts.append(part)
        pos = end + len(separator)
        after = body[pos : pos + 2]
        if after == b"--":
            return parts
        if after != b"\r\n":
            return None
        pos += 2
    return None


class _FormCollector:
    def __init__(self, max_parts: int) -> None:
        self.max_parts = max_parts
        self.parts: list[Part] = []
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._current: Part | None = None

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_part_data": self._part_data,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }

    def _part_begin(self) -> None:
        if len(self.parts) >= self.max_parts:
            raise TooManyImages(
                f"the form has more than {self.max_parts} parts",
                extra={"max_parts": self.max_parts},
            )
        self._headers = {}
        self._current = None

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]
        self._check_header_size()

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._check_header_size()

    def _check_header_size(self) -> None:
        if len(self._header_field) + len(self._header_value) > MAX_PART_HEADER:
            raise InvalidRequest(
                f"a multipart part header is longer than {MAX_PART_HEADER:,} bytes "
                "(a filename that long is not a filename)",
                extra={"max_part_header": MAX_PART_HEADER},
            )

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = b""
        self._header_value = b""

    def _headers_finished(self) -> None:
        self._current = _new_part(self._headers)
        self.parts.append(self._current)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._current.chunks.append(data[start:end])


_NOTHING_SENT = (
    "the request has no body: send the image as multipart/form-data in a field named "
    f"{IMAGE_FIELD!r} (or as a raw image/* body)"
)


async def discard(request: Request, received: int, timeout_s: float) -> None:
    """Read and drop the rest of a refused body, so that curl, urllib and `wx.uploadFile`
    read the 413 rather than a connection reset; the error response then closes the
    connection (see service/http/errors.py). Bounded three ways: `DISCARD_LIMIT` bytes,
    `timeout_s` in all, and `DISCARD_IDLE_S` without a byte (a client that stalls or never
    ends its body gets its answer after that pause, not after the upload timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    chunks = request.stream().__aiter__()
    while received <= DISCARD_LIMIT:
        left = deadline - loop.time()
        if left <= 0:
            return
        try:
            chunk = await asyncio.wait_for(anext(chunks), min(left, DISCARD_IDLE_S))
        except (StopAsyncIteration, TimeoutError):
            return
        except Exception:  # a disconnect mid-body: nothing left to read
            return
        received += len(chunk)


async def _declared_length(request: Request, max_bytes: int, timeout_s: float) -> int | None:
    """The Content-Length, refused at once (the body read out first) when over the limit."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    try:
        length = int(declared)
    except ValueError:
        raise InvalidRequest(f"bad Content-Length {declared[:40]!r}") from None
    if length > max_bytes:
        await discard(request, 0, timeout_s)
        raise PayloadTooLarge(
            f"the body is {length:,} bytes; the limit is {max_bytes:,}",
            extra={"max_bytes": max_bytes},
        )
    return length


async def stream_body(
    request: Request, *, max_bytes: int, timeout_s: float, sink: Callable[[bytes], object]
) -> int:
    """Feed the body to `sink` as it arrives: 413 past `max_bytes` (the rest read out and
    dropped), 408 when it takes longer than `timeout_s`. Returns the bytes received."""
    received = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes:
                    break
                sink(chunk)
    except TimeoutError:
        raise RequestTimeout(
            f"the upload did not complete within {timeout_s:g} s ({received:,} bytes received)"
        ) from None
    if received > max_bytes:
        await discard(request, received, timeout_s)
        raise PayloadTooLarge(
            f"the body exceeds the limit of {max_bytes:,} bytes", extra={"max_bytes": max_bytes}
        )
    return received


async def read_body(request: Request, *, max_bytes: int, timeout_s: float) -> bytes:
    """The whole body of a non-multipart request (the v2 protocol's), with the same limits."""
    await _declared_length(request, max_bytes, timeout_s)
    chunks: list[bytes] = []
    await stream_body(request, max_bytes=max_bytes, timeout_s=timeout_s, sink=chunks.append)
    return b"".join(chunks)


async def read_upload(
    request: Request, *, max_bytes: int, max_images: int, timeout_s: float
) -> Upload:
    """Read the request's images: multipart parts named `image`, or a raw image body."""
    length = await _declared_length(request, max_bytes, timeout_s)
    if length is not None:
        if length == 0 and "content-type" not in request.headers:
            raise MissingImage(_NOTHING_SENT)
    elif "content-type" not in request.headers and "transfer-encoding" not in request.headers:
        raise MissingImage(_NOTHING_SENT)
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    raw = ctype.startswith(_RAW_TYPES)
    if not raw and ctype != b"multipart/form-data":
        raise UnsupportedMediaType(
            f"send the image as multipart/form-data in a field named {IMAGE_FIELD!r} "
            f"(or as a raw image/* body), not {ctype.decode('latin-1') or 'no Content-Type'}"
        )
    boundary = options.get(b"boundary")
    if not raw and not boundary:
        raise InvalidRequest("multipart/form-data without a boundary")
    chunks: list[bytes] = []
    await stream_body(request, max_bytes=max_bytes, timeout_s=timeout_s, sink=chunks.append)
    if raw:
        return Upload([Part(IMAGE_FIELD, None, ctype.decode("latin-1"), chunks)], {}, [])
    # Images, plus a few small fields (top_k, model...) a form may carry.
    max_parts = max_images + 8
    body = b"".join(chunks)
    parts = canonical_parts(body, boundary or b"", max_parts)
    if parts is None:
        parts = _parse_form(body, boundary or b"", max_parts)
    images = [p for p in parts if p.name == IMAGE_FIELD]
    fields = {
        p.name: p.data.decode("utf-8", "replace")[:1000]
        for p in parts
        if p.name != IMAGE_FIELD and p.filename is None
    }
    others = [p.name for p in parts if p.name != IMAGE_FIELD and p.filename is not None]
    if len(images) > max_images:
        raise TooManyImages(
            f"{len(images)} images in one request; the limit is {max_images}",
            extra={"max_images": max_images},
        )
    return Upload(images, fields, others)


def _parse_form(body: bytes, boundary: bytes, max_parts: int) -> list[Part]:
    """Any multipart body python-multipart reads, with our limits; its errors as 422s."""
    collector = _FormCollector(max_parts=max_parts)
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidRequest(f"malformed multipart body: {exc}") from exc
    return collector.parts
