"""The bad-input corpus: each case gets its 4xx and an `ErrorResponse`; the server stays fine.

Runs against the shared default server (10 MB bodies, 50 MP images, 32 images, 30 s uploads).
Cases that need small limits or short timeouts are in test_limits.py.
"""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest

from tests.hardening import support
from tests.hardening.support import PREDICT, assert_error


@pytest.fixture(autouse=True)
def still_serving(client):
    """After every case the server must still classify an image."""
    yield
    r = client.post(PREDICT, files={"image": ("ok.jpg", support.jpeg(), "image/jpeg")})
    assert r.status_code == 200, r.text


def post_file(client, data: bytes, filename: str = "x.jpg", ctype: str = "image/jpeg", **kw):
    return client.post(PREDICT, files={"image": (filename, data, ctype)}, **kw)


def post_raw(client, body: bytes, headers: dict[str, str], path: str = PREDICT):
    return client.post(path, content=body, headers=headers)


# Each case: (id, request function, status, code).
CASES = [
    ("empty-file", lambda c: post_file(c, b""), 400, "empty_file"),
    (
        "zero-byte-multipart-body",
        lambda c: post_raw(c, b"", {"Content-Type": "multipart/form-data; boundary=x"}),
        422,
        "missing_image",
    ),
    (
        "zero-byte-raw-body",
        lambda c: post_raw(c, b"", {"Content-Type": "image/jpeg"}),
        400,
        "empty_file",
    ),
    ("no-body-at-all", lambda c: c.post(PREDICT), 422, "missing_image"),
    (
        "truncated-jpeg",
        lambda c: post_file(c, support.jpeg((640, 480))[:1500]),
        400,
        "invalid_image",
    ),
    (
        "jpeg-corrupt-header",
        lambda c: post_file(c, b"\xff\xd8\xff\xe0" + b"\x00" * 500),
        400,
        "invalid_image",
    ),
    (
        "png-bomb",
        lambda c: post_file(c, support.png_bomb(), "bomb.png", "image/png"),
        413,
        "image_too_large",
    ),
    (
        "jpeg-header-bomb",
        lambda c: post_file(c, support.jpeg_claiming(65000, 65000)),
        413,
        "image_too_large",
    ),
    (
        "svg",
        lambda c: post_file(c, support.SVG, "a.svg", "image/svg+xml"),
        415,
        "unsupported_media_type",
    ),
    (
        "heic",
        lambda c: post_file(c, support.HEIC, "a.heic", "image/heic"),
        415,
        "unsupported_media_type",
    ),
    (
        "pdf",
        lambda c: post_file(c, support.PDF, "a.pdf", "application/pdf"),
        415,
        "unsupported_media_type",
    ),
    (
        "text-named-jpg",
        lambda c: post_file(c, b"Dear diary, today I uploaded a text file.", "cat.jpg"),
        415,
        "unsupported_media_type",
    ),
    (
        "wrong-field-name",
        lambda c: c.post(PREDICT, files={"file": ("a.jpg", support.jpeg(), "image/jpeg")}),
        422,
        "missing_image",
    ),
    (
        "form-without-file",
        lambda c: c.post(PREDICT, files={"top_k": (None, "3")}),
        422,
        "missing_image",
    ),
    (
        "ten-thousand-tiny-fields",
        lambda c: post_raw(
            c,
            *support.multipart(
                *[(b'Content-Disposition: form-data; name="f%d"' % i, b"v") for i in range(10_000)]
            ),
        ),
        413,
        "too_many_images",
    ),
    (
        "urlencoded-form",
        lambda c: c.post(PREDICT, data={"image": "x" * 100}),
        415,
        "unsupported_media_type",
    ),
    (
        "json-body",
        lambda c: c.post(PREDICT, json={"image": "aGVsbG8="}),
        415,
        "unsupported_media_type",
    ),
    (
        "multipart-without-boundary",
        lambda c: post_raw(c, b"--x\r\n", {"Content-Type": "multipart/form-data"}),
        422,
        "invalid_request",
    ),
    (
        "malformed-multipart",
        lambda c: post_raw(
            c, b"garbage, not a form", {"Content-Type": "multipart/form-data; boundary=zz"}
        ),
        422,
        "invalid_request",
    ),
    (
        "part-without-name",
        lambda c: post_raw(
            c, *support.multipart((b"Content-Disposition: form-data", support.jpeg()))
        ),
        422,
        "invalid_request",
    ),
    (
        "megabyte-filename",
        lambda c: post_raw(
            c, *support.multipart(support.file_part(support.jpeg(), filename=b"a" * 1_000_000))
        ),
        422,
        "invalid_request",
    ),
    (
        "top-k-zero",
        lambda c: post_file(c, support.jpeg(), params={"top_k": 0}),
        422,
        "invalid_request",
    ),
    (
        "top-k-billion",
        lambda c: post_file(c, support.jpeg(), params={"top_k": 10**9}),
        422,
        "invalid_request",
    ),
    (
        "top-k-10e30",
        lambda c: post_file(c, support.jpeg(), params={"top_k": "1" + "0" * 30}),
        422,
        "invalid_request",
    ),
    (
        "top-k-negative",
        lambda c: post_file(c, support.jpeg(), params={"top_k": -5}),
        422,
        "invalid_request",
    ),
    (
        "unknown-model",
        lambda c: c.post("/v1/models/NoSuchNet/predict", files={"image": support.jpeg()}),
        404,
        "model_not_found",
    ),
    (
        "model-name-too-long",
        lambda c: c.post("/v1/models/" + "m" * 500 + "/predict", files={"image": support.jpeg()}),
        422,
        "invalid_request",
    ),
    (
        "traversal-encoded-slashes",
        lambda c: c.post(
            "/v1/models/..%2F..%2Fetc%2Fpasswd/predict", files={"image": support.jpeg()}
        ),
        404,
        "not_found",
    ),
    (
        "traversal-dot-dot-model",
        lambda c: c.post("/v1/models/%2e%2e/predict", files={"image": support.jpeg()}),
        404,
        "model_not_found",
    ),
    ("traversal-get-model", lambda c: c.get("/v1/models/..%2F..%2Fetc%2Fpasswd"), 404, "not_found"),
]


@pytest.mark.parametrize(
    ("send", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_gets_its_4xx_error_response(client, send, status, code):
    try:
        response = send(client)
    except httpx.HTTPError as exc:  # pragma: no cover - the assertion says what happened
        pytest.fail(f"no HTTP answer: {exc!r}")
    assert_error(response, status, code)


def test_heic_says_clearly_it_is_not_supported(client):
    body = assert_error(
        post_file(client, support.HEIC, "IMG_0001.HEIC", "image/heic"),
        415,
        "unsupported_media_type",
    )
    assert "HEIC" in body["message"]
    assert "JPEG" in body["message"]  # and what to send instead


def test_ten_thousand_fields_are_refused_without_parsing_them_all(client):
    body, headers = support.multipart(
        *[(b'Content-Disposition: form-data; name="f%d"' % i, b"v") for i in range(10_000)]
    )
    start = time.perf_counter()
    r = post_raw(client, body, headers)
    assert_error(r, 413, "too_many_images")
    assert r.json()["extra"]["max_parts"] < 100
    assert time.perf_counter() - start < 10  # generous; parsing 10k parts is not the point


@pytest.mark.parametrize(
    ("name", "data", "filename", "ctype"),
    [
        (
            "16-bit-png",
            lambda: support.png_16bit_gray(np.full((40, 30), 0x8000)),
            "a.png",
            "image/png",
        ),
        (
            "48-bit-png",
            lambda: support.png_16bit_rgb(np.full((40, 30, 3), 0x8000)),
            "a.png",
            "image/png",
        ),
        ("cmyk-jpeg", lambda: support.cmyk_jpeg((0, 255, 255, 0)), "a.jpg", "image/jpeg"),
        ("palette-png-transparency", support.palette_png_with_transparency, "a.png", "image/png"),
        ("animated-gif", support.animated_gif, "a.gif", "image/gif"),
        ("multipage-tiff", support.multipage_tiff, "a.tif", "image/tiff"),
        ("jpeg-sent-as-octet-stream", support.jpeg, "blob", "application/octet-stream"),
        ("jpeg-with-wrong-content-type", support.jpeg, "a.png", "text/plain"),
    ],
)
def test_unusual_but_valid_images_are_classified(client, name, data, filename, ctype):
    r = post_file(client, data(), filename, ctype)
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert result["filename"] == filename
    assert len(result["predictions"]) == 5


def test_non_utf8_filename_is_echoed_not_fatal(client):
    body, headers = support.multipart(
        support.file_part(support.jpeg(), filename=b"caf\xe9 \xff\xfe.jpg")
    )
    r = post_raw(client, body, headers)
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert result["filename"] == "caf\xe9 \xff\xfe.jpg"  # read as Latin-1, never a decode error


def test_huge_content_length_with_a_small_body_is_413_at_once(server):
    """The declared length is over the limit: refused from the headers, no waiting for bytes."""
    head = support.request_head(
        "POST",
        PREDICT,
        {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(10**12)},
    )
    with support.connect(server.port) as sock:
        sock.sendall(head + b"--x\r\n")
        response = support.read_response(sock, time.monotonic() + 20)
    assert response.status == 413
    assert response.elapsed < 5
    body = json.loads(response.body)
    assert body["code"] == "payload_too_large"
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["extra"]["max_bytes"] == 10 * 1024 * 1024


def test_raw_path_traversal_never_serves_a_file(server):
    for path in ("/../../etc/passwd", "/v1/models/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"):
        with support.connect(server.port) as sock:
            sock.sendall(support.request_head("GET", path, {"Connection": "close"}))
            response = support.read_response(sock, time.monotonic() + 20)
        assert response.status in (400, 404), (path, response)
        assert b"root:" not in response.body, path


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", PREDICT, 405, "POST"),
        ("DELETE", PREDICT, 405, "POST"),
        ("GET", "/predict", 405, "POST"),
        ("POST", "/v1/models", 405, "GET"),
        ("TRACE", "/healthz", 405, "GET"),
        ("PUT", "/metrics", 405, "GET"),
        ("POST", "/", 405, "GET, HEAD"),
        ("POST", "/v1/models/a/b/predict", 404, None),
        ("POST", "/no/such/thing", 404, None),
        ("GET", "/no/such/thing", 404, None),
    ],
)
def test_wrong_method_is_405_with_the_routes_own_allow_and_no_route_is_404(
    client, method, path, status, allow
):
    """Regression: the web page's StaticFiles mount at `/` answered every path no route took
    in full: 404 to `GET` on POST routes, 405 "Allow: GET, HEAD" to `TRACE /healthz` and to
    `POST` on paths that do not exist at all."""
    r = client.request(method, path)
    assert_error(r, status, "method_not_allowed" if status == 405 else "not_found")
    assert r.headers.get("allow") == allow
