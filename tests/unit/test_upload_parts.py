"""The fast multipart reader finds exactly the parts python-multipart finds, or steps aside."""

from __future__ import annotations

import random

import pytest

from kerasserve.service.errors import InvalidRequest, TooManyImages
from kerasserve.service.http.upload import MAX_PART_HEADER, Part, _parse_form, canonical_parts

BOUNDARY = b"----kerasserve7f3a"


def body(*parts: tuple[bytes, bytes], boundary: bytes = BOUNDARY, epilogue: bytes = b"") -> bytes:
    out = b""
    for headers, data in parts:
        out += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n" + epilogue


def image(data: bytes, name: bytes = b"image", filename: bytes = b"a.jpg") -> tuple[bytes, bytes]:
    headers = (
        b'Content-Disposition: form-data; name="' + name + b'"; filename="' + filename + b'"\r\n'
        b"Content-Type: image/jpeg"
    )
    return headers, data


def field(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    return b'Content-Disposition: form-data; name="' + name + b'"', value


def seen(parts: list[Part]) -> list[tuple[str, str | None, str | None, bytes]]:
    return [(p.name, p.filename, p.content_type, p.data) for p in parts]


def slow(data: bytes, max_parts: int = 24) -> list[tuple[str, str | None, str | None, bytes]]:
    return seen(_parse_form(data, BOUNDARY, max_parts))


_rng = random.Random(0)
PHOTO = bytes(_rng.randrange(256) for _ in range(20_000))

CANONICAL = [
    body(image(PHOTO)),
    body(image(PHOTO), image(PHOTO[:10], filename=b"b.png"), field(b"top_k", b"3")),
    body(image(b"")),  # an empty file is a part (the decoder names the problem)
    body(image(PHOTO + b"\r\n--" + BOUNDARY[:-1])),  # data that almost holds the delimiter
    body(image(PHOTO), epilogue=b"trailing words after the close delimiter"),
    body(image(PHOTO, filename="照片.jpg".encode())),
    body((b"content-disposition:form-data; name=image; filename=x.jpg", PHOTO)),
]


@pytest.mark.parametrize("data", CANONICAL, ids=range(len(CANONICAL)))
def test_canonical_bodies_give_python_multiparts_parts(data: bytes) -> None:
    parts = canonical_parts(data, BOUNDARY, 24)
    assert parts is not None
    assert seen(parts) == slow(data)


@pytest.mark.parametrize(
    "data",
    [
        b"preamble\r\n" + body(image(PHOTO)),  # a preamble
        body(image(PHOTO)).replace(b"\r\n", b"\n"),  # bare LF line ends
        body((b"Content-Disposition: form-data;\r\n name=image", PHOTO)),  # a folded header
        body(image(PHOTO))[:-30],  # no close delimiter
        b"--" + BOUNDARY + b"\r\n\r\n" + PHOTO,  # a part without headers
        body(image(PHOTO), boundary=b"other"),
        b"garbage, not a form",
        b"",
    ],
    ids=["preamble", "lf", "folded", "unterminated", "no-headers", "boundary", "garbage", "empty"],
)
def test_anything_else_is_left_to_the_streaming_parser(data: bytes) -> None:
    assert canonical_parts(data, BOUNDARY, 24) is None


def test_part_limits_and_long_headers_are_left_to_the_streaming_parser() -> None:
    many = body(*[field(b"f%d" % i, b"v") for i in range(30)])
    assert canonical_parts(many, BOUNDARY, 24) is None
    with pytest.raises(TooManyImages):
        _parse_form(many, BOUNDARY, 24)
    exactly = body(*[field(b"f%d" % i, b"v") for i in range(24)])
    assert seen(canonical_parts(exactly, BOUNDARY, 24) or []) == slow(exactly)
    long_name = body(image(PHOTO, filename=b"a" * (MAX_PART_HEADER + 10)))
    assert canonical_parts(long_name, BOUNDARY, 24) is None
    with pytest.raises(InvalidRequest):
        _parse_form(long_name, BOUNDARY, 24)


def test_a_part_without_a_name_is_refused_as_before() -> None:
    data = body((b"Content-Disposition: form-data", PHOTO))
    with pytest.raises(InvalidRequest, match="lacks"):
        canonical_parts(data, BOUNDARY, 24)
    with pytest.raises(InvalidRequest, match="lacks"):
        _parse_form(data, BOUNDARY, 24)


def test_mutated_bodies_never_disagree_with_python_multipart() -> None:
    """Random byte edits of real forms: the fast reader gives python-multipart's parts, or
    None, or the same refusal; never different parts."""
    rng = random.Random(7)
    base = body(image(PHOTO[:300]), field(b"top_k", b"5"), image(PHOTO[300:500], filename=b"b"))
    tokens = [b"\r\n", b"\n", b"--", BOUNDARY, b":", b" ", b";", b'"', b"\r\n\r\n", b"x"]
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            if rng.random() < 0.5:
                del data[at : at + rng.randint(1, 4)]
            else:
                data[at:at] = rng.choice(tokens)
        mutated = bytes(data)
        try:
            expected: object = slow(mutated)
        except (InvalidRequest, TooManyImages) as exc:
            expected = type(exc)
        try:
            fast = canonical_parts(mutated, BOUNDARY, 24)
        except (InvalidRequest, TooManyImages) as exc:
            refused: type[Exception] | None = type(exc)
        else:
            refused = None
        if refused is not None:
            assert expected is refused, mutated
        elif fast is not None:
            assert seen(fast) == expected, mutated
