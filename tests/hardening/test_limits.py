"""Every limit is a setting, enforced where it must be: bytes while they stream in, pixels
before decoding, images and parts while the form is parsed, time while the body trickles.

Against the `tight` server: 1 MB bodies, 4 MP images, 3 images, 3 s uploads, API keys.
"""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from tests.hardening import support
from tests.hardening.conftest import UPLOAD_TIMEOUT_S
from tests.hardening.support import PREDICT, assert_error


def image_part(data: bytes, name: str = "a.jpg") -> tuple:
    return ("image", (name, data, "image/jpeg"))


def test_body_over_the_limit_is_413_and_the_answer_is_readable(tight):
    with tight.client() as c:
        r = c.post(PREDICT, files={"image": ("big.jpg", b"\xff\xd8\xff" + b"\0" * 1_200_000)})
        body = assert_error(r, 413, "payload_too_large")
        assert body["extra"]["max_bytes"] == tight.max_body_bytes
        assert c.post(PREDICT, files={"image": support.jpeg()}).status_code == 200


def test_body_limit_is_enforced_while_the_body_streams_in(tight):
    """A chunked body has no Content-Length: the server must stop at the limit and answer,
    not wait for the end (the client here never sends the end)."""
    head = support.request_head(
        "POST",
        PREDICT,
        {
            **tight.auth,
            "Content-Type": "image/jpeg",
            "Transfer-Encoding": "chunked",
        },
    )
    chunk = b"\xff" * 65536
    with support.connect(tight.port) as sock:
        sock.sendall(head)
        sent = 0
        while sent <= tight.max_body_bytes + 65536:
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
        response = support.read_response(sock, time.monotonic() + 20)
    assert response.status == 413
    assert b"payload_too_large" in response.body
    assert response.elapsed < 10


def test_declared_length_under_the_limit_but_body_never_comes_is_408(tight):
    head = support.request_head(
        "POST",
        PREDICT,
        {**tight.auth, "Content-Type": "image/jpeg", "Content-Length": "500000"},
    )
    with support.connect(tight.port) as sock:
        sock.sendall(head + b"\xff\xd8\xff")
        response = support.read_response(sock, time.monotonic() + 30, close_within=2)
    assert response.status == 408
    assert b"request_timeout" in response.body
    assert UPLOAD_TIMEOUT_S - 0.5 < response.elapsed < UPLOAD_TIMEOUT_S + 10
    # Closed at once (Connection: close), not by uvicorn's 5 s keep-alive timer.
    assert response.closed, "the server kept the connection of a timed-out upload open"


def test_slow_loris_upload_is_cut_off_by_the_upload_timeout(tight):
    body, headers = support.multipart(support.file_part(support.jpeg((320, 240))))
    head = support.request_head(
        "POST", PREDICT, {**tight.auth, **headers, "Content-Length": str(len(body))}
    )
    with support.connect(tight.port) as sock:
        sock.sendall(head)
        start = time.monotonic()
        sent = 0
        # A few bytes every 100 ms: the body would take minutes to arrive.
        while time.monotonic() - start < UPLOAD_TIMEOUT_S + 10:
            try:
                sock.sendall(body[sent : sent + 4])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 4
            sock.settimeout(0.1)
            try:
                data = sock.recv(65536, 2)  # MSG_PEEK: has the server answered?
            except TimeoutError:
                continue
            if data:
                break
        response = support.read_response(sock, time.monotonic() + 10, close_within=2)
    assert sent < len(body)
    assert response.status == 408
    assert b"request_timeout" in response.body
    assert time.monotonic() - start < UPLOAD_TIMEOUT_S + 15
    assert response.closed


def test_images_per_request_limit(tight):
    with tight.client() as c:
        three = [image_part(support.jpeg(), f"{i}.jpg") for i in range(3)]
        assert c.post(PREDICT, files=three).status_code == 200
        r = c.post(PREDICT, files=[*three, image_part(support.jpeg(), "3.jpg")])
        body = assert_error(r, 413, "too_many_images")
        assert body["extra"]["max_images"] == tight.max_images


def test_form_parts_are_bounded_while_parsing(tight):
    fields = [(b'Content-Disposition: form-data; name="f%d"' % i, b"v") for i in range(200)]
    body, headers = support.multipart(support.file_part(support.jpeg()), *fields)
    with tight.client() as c:
        r = c.post(PREDICT, content=body, headers=headers)
    assert_error(r, 413, "too_many_images")


def test_pixel_limit_is_a_setting(tight):
    at_limit = support.encode(Image.new("L", (2000, 2000)), "PNG")
    over = support.encode(Image.new("L", (2001, 2000)), "PNG")
    with tight.client() as c:
        assert c.post(PREDICT, files={"image": ("a.png", at_limit)}).status_code == 200
        body = assert_error(
            c.post(PREDICT, files={"image": ("b.png", over)}), 413, "image_too_large"
        )
    assert body["extra"] == {"width": 2001, "height": 2000, "max_pixels": tight.max_pixels}


def test_bomb_leaves_server_memory_flat(tight):
    """A 30000 x 30000 PNG would take 900 MB to decode (2.7 GB as RGB): the peak must not move."""
    pid = tight.server.process.pid
    bomb = support.png_bomb(30000)
    with tight.client() as c:
        assert c.post(PREDICT, files={"image": support.jpeg()}).status_code == 200
        before = support.proc_status_kb(pid, "VmHWM")
        for _ in range(3):
            assert_error(c.post(PREDICT, files={"image": ("b.png", bomb)}), 413, "image_too_large")
        grew_mib = (support.proc_status_kb(pid, "VmHWM") - before) / 1024
        assert c.post(PREDICT, files={"image": support.jpeg()}).status_code == 200
    assert grew_mib < 50, f"peak RSS grew {grew_mib:.0f} MiB refusing a bomb"


def test_limits_are_reported_in_the_model_description(tight):
    with tight.client() as c:
        batching = c.get("/v1/models/MobileNetV2").json()["batching"]
    assert batching["max_queue"] == tight.max_queue
    assert batching["max_batch_size"] == tight.max_batch_size


def test_noise_photo_under_the_body_limit_is_fine(tight):
    noise = np.random.default_rng(3).integers(0, 255, (600, 600, 3), dtype=np.uint8)
    data = support.encode(Image.fromarray(noise), "JPEG", quality=90)
    assert 300_000 < len(data) < tight.max_body_bytes
    with tight.client() as c:
        assert c.post(PREDICT, files={"image": ("n.jpg", data)}).status_code == 200
