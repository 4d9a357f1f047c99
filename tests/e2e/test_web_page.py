"""The web page at `/` in a real Chromium against a real server: photos in, predictions out.

Needs Debian's Chromium at /usr/bin/chromium and the `playwright` package (Playwright cannot
download its own browser here). Without them the tests skip, unless CI is set: then they fail.
Screenshots land in `test-artifacts/`.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.live_server import ROOT, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 60_000


def _need(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required when CI is set)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need(CHROMIUM.exists(), f"no Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "the playwright package is not installed: pip install playwright")
        raise
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real photographs from scikit-image's bundled data, saved as JPEG and PNG."""
    try:
        from skimage import data as skimage_data
    except ImportError:
        _need(False, "scikit-image is not installed: pip install scikit-image")
        raise
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name, fmt in (("chelsea", "JPEG"), ("astronaut", "PNG"), ("coffee", "JPEG")):
        path = folder / f"{name}.{'jpg' if fmt == 'JPEG' else 'png'}"
        Image.fromarray(getattr(skimage_data, name)()).save(path, fmt)
        out[name] = path
    return out


class PageWatch:
    """What the page did that it should not: requests off the server, uncaught exceptions."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.host = urlsplit(base_url).netloc
        self.foreign: list[str] = []
        self.exceptions: list[str] = []
        page.on("request", self._request)
        page.on("pageerror", lambda exc: self.exceptions.append(str(exc)))

    def _request(self, request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https") and parts.netloc != self.host:
            self.foreign.append(request.url)

    def check(self) -> None:
        assert self.foreign == [], "the page loaded something from outside the server"
        assert self.exceptions == [], "the page threw"


def _open(browser: Any, server: LiveServer, **context_args: Any) -> tuple[Any, Any, PageWatch]:
    context = browser.new_context(**context_args)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch = PageWatch(page, server.base_url)
    page.goto(f"{server.base_url}/")
    return context, page, watch


@pytest.fixture
def desktop(browser: Any, server: LiveServer) -> Iterator[tuple[Any, PageWatch]]:
    context, page, watch = _open(browser, server, viewport={"width": 1100, "height": 900})
    yield page, watch
    context.close()


@pytest.fixture
def phone(browser: Any, server: LiveServer) -> Iterator[tuple[Any, PageWatch]]:
    context, page, watch = _open(
        browser,
        server,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield page, watch
    context.close()


def _screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    # Grow the viewport to the page rather than `full_page=True`: Chromium's full-page capture
    # drops touch emulation, and the phone's camera button would vanish from the picture.
    size = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    return path


def _wait_models(page: Any) -> None:
    select = page.get_by_test_id("model-select")
    page.wait_for_function("!document.getElementById('model').disabled")
    assert select.input_value() == "MobileNetV2"


def _assert_predictions(page: Any, top_k: int = 5) -> list[tuple[str, float]]:
    rows = page.get_by_test_id("prediction")
    rows.first.wait_for()
    assert rows.count() == top_k
    found = []
    for i in range(top_k):
        row = rows.nth(i)
        label = row.locator(".label").inner_text().strip()
        value = row.locator(".value").inner_text().strip()
        match = re.fullmatch(r"(\d+(?:\.\d)?)%", value)
        assert label, "a prediction without a label"
        assert match, f"bad percentage {value!r}"
        width = row.locator(".bar span").evaluate("el => el.style.width")
        assert width.endswith("%")
        assert float(width[:-1]) == pytest.approx(float(match.group(1)), abs=0.051)
        found.append((label, float(match.group(1))))
    percents = [p for _, p in found]
    assert percents == sorted(percents, reverse=True)
    assert all(0 <= p <= 100 for p in percents)
    return found


def _assert_timing(page: Any) -> None:
    timing = page.get_by_test_id("timing")
    assert timing.is_visible()
    assert int(page.locator("#t-batch").inner_text()) >= 1
    for cell in ("#t-queue", "#t-inference"):
        assert re.fullmatch(r"\d+\.\d ms", page.locator(cell).inner_text()), cell
    assert float(page.locator("#t-inference").inner_text().split()[0]) > 0


def test_a_photo_gets_predictions_timing_and_the_weights_warning(desktop, photos):
    page, watch = desktop
    _wait_models(page)
    warning = page.get_by_test_id("weights-warning")
    assert warning.is_visible()
    assert "random weights" in warning.inner_text().lower()

    page.get_by_test_id("file-input").set_input_files(str(photos["chelsea"]))
    _assert_predictions(page)
    _assert_timing(page)
    preview = page.get_by_test_id("preview")
    assert preview.is_visible()
    assert preview.evaluate("img => img.complete && img.naturalWidth") == 451
    assert page.locator("#result-model").inner_text() == "MobileNetV2"
    assert page.get_by_test_id("error").is_hidden()
    assert page.get_by_test_id("status").is_hidden()
    _screenshot(page, "web-predictions.png")
    watch.check()


def test_a_text_file_shows_the_servers_error(desktop):
    page, watch = desktop
    _wait_models(page)
    page.get_by_test_id("file-input").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"this is not a photo\n"}
    )
    error = page.get_by_test_id("error")
    error.wait_for()
    assert error.get_attribute("data-code") == "unsupported_media_type"
    assert page.locator("#error-title").inner_text() == (
        "This is not an image format the server reads. Use a JPEG, PNG or WebP photo."
    )
    assert page.locator("#error-detail").inner_text()  # the server's own explanation
    assert "request id:" in page.locator("#error-meta").inner_text()
    assert page.get_by_test_id("result").is_hidden()
    _screenshot(page, "web-error.png")
    watch.check()

    # The next good photo clears the error.
    page.get_by_test_id("file-input").set_input_files(
        {"name": "ok.png", "mimeType": "image/png", "buffer": _png_bytes()}
    )
    _assert_predictions(page)
    assert error.is_hidden()


def test_drag_and_drop_a_photo(desktop, photos):
    page, watch = desktop
    _wait_models(page)
    data = list(photos["astronaut"].read_bytes())
    transfer = page.evaluate_handle(
        """bytes => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], 'astronaut.png', {type: 'image/png'}));
            return dt;
        }""",
        data,
    )
    page.dispatch_event("#drop", "dragenter", {"dataTransfer": transfer})
    assert "dragging" in (page.get_by_test_id("drop-zone").get_attribute("class") or "")
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    _assert_predictions(page)
    assert "astronaut.png" in page.locator("#filename").inner_text()
    assert "dragging" not in (page.get_by_test_id("drop-zone").get_attribute("class") or "")
    watch.check()


def test_paste_a_photo(desktop):
    page, watch = desktop
    _wait_models(page)
    page.evaluate(
        """bytes => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], 'pasted.png', {type: 'image/png'}));
            document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt}));
        }""",
        list(_png_bytes()),
    )
    _assert_predictions(page)
    assert "pasted.png" in page.locator("#filename").inner_text()
    watch.check()


def test_a_phone_gets_the_camera_button(phone, photos):
    page, watch = phone
    _wait_models(page)
    camera = page.get_by_test_id("camera-button")
    assert camera.is_visible()
    assert page.get_by_test_id("camera-input").get_attribute("capture") == "environment"
    page.get_by_test_id("camera-input").set_input_files(str(photos["coffee"]))
    _assert_predictions(page)
    _screenshot(page, "web-phone.png")
    watch.check()


def test_the_desktop_has_no_camera_button(desktop):
    page, _ = desktop
    assert page.get_by_test_id("camera-button").is_hidden()
    assert page.get_by_test_id("choose-button").is_visible()


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (
            503,
            {"code": "overloaded", "message": "queue full", "request_id": "r1", "retry_after": 2},
            {"Retry-After": "2"},
            "The server is busy right now. Try again in 2 s.",
        ),
        (
            413,
            {"code": "image_too_large", "message": "70,000,000 pixels", "request_id": "r2"},
            {},
            "This photo has too many pixels for the server. Choose a smaller one.",
        ),
        (502, "<html>Bad Gateway</html>", {}, "The server answered with an error (HTTP 502)."),
        (200, "not json", {}, "The server sent an answer this page cannot read."),
    ],
)
def test_answers_a_proxy_or_a_busy_server_may_give_are_explained(
    desktop, photos, status, body, headers, expected
):
    """Answers the real server will not give on demand, fulfilled in the browser."""
    import json

    page, _ = desktop
    _wait_models(page)
    text = body if isinstance(body, str) else json.dumps(body)
    ctype = "text/html" if isinstance(body, str) else "application/json"
    page.route(
        "**/predict*",
        lambda route: route.fulfill(status=status, body=text, content_type=ctype, headers=headers),
    )
    page.get_by_test_id("file-input").set_input_files(str(photos["chelsea"]))
    page.get_by_test_id("error").wait_for()
    assert page.locator("#error-title").inner_text() == expected


def test_a_server_that_went_away_is_explained(desktop, photos):
    page, _ = desktop
    _wait_models(page)
    page.route("**/predict*", lambda route: route.abort("connectionrefused"))
    page.get_by_test_id("file-input").set_input_files(str(photos["chelsea"]))
    page.get_by_test_id("error").wait_for()
    assert page.get_by_test_id("error").get_attribute("data-code") == "network"
    assert "Cannot reach the server" in page.locator("#error-title").inner_text()


def test_a_model_list_that_fails_is_explained(browser, server):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.route(
        "**/v1/models",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"code": "not_ready", "message": "MobileNetV2 is warming up", "request_id": "r3"}',
        ),
    )
    page.goto(f"{server.base_url}/")
    page.get_by_test_id("error").wait_for()
    assert page.locator("#error-title").inner_text() == (
        "The server is still starting up. Try again in a moment."
    )
    assert page.locator("#error-detail").inner_text() == "MobileNetV2 is warming up"
    assert page.get_by_test_id("model-select").is_disabled()
    context.close()


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buf, "PNG")
    return buf.getvalue()
