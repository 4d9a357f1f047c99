"""The web page at `/` in a real Chromium against real servers: many photos in, answers out.

Needs Debian's Chromium at /usr/bin/chromium and the `playwright` package (Playwright cannot
download its own browser here). Without them the tests skip, unless CI is set: then they fail.
Accessibility is checked with axe-core, vendored in `tests/e2e/vendor/` and injected into the
page. Screenshots land in `test-artifacts/`.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.live_server import ROOT, LiveServer, live_server

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
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
TIMEOUT_MS = 60_000
API_KEY = "web-page-test-key"
SETTLED = "[data-testid=photo]:is([data-state=done], [data-state=failed])"


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
    """Real photographs from scikit-image's bundled data, a large one, and two bad files."""
    try:
        from skimage import data as skimage_data
    except ImportError:
        _need(False, "scikit-image is not installed: pip install scikit-image")
        raise
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name, fmt in (("chelsea", "JPEG"), ("astronaut", "PNG"), ("coffee", "JPEG")):
        path = folder / f"{name}.{'jpg' if fmt == 'JPEG' else 'png'}"
        Image.fromarray(getattr(skimage_data, name)()).save(path, fmt)
        out[name] = path
    # 3000x1500, noisy enough that its upload takes a while on a throttled link.
    rng = np.random.default_rng(0)
    big = Image.fromarray(getattr(skimage_data, "astronaut")()).resize((3000, 1500))  # noqa: B009
    noisy = np.clip(
        np.asarray(big, dtype=np.int16) + rng.integers(-40, 40, (1500, 3000, 3)), 0, 255
    )
    out["large"] = folder / "large.jpg"
    Image.fromarray(noisy.astype(np.uint8)).save(out["large"], "JPEG", quality=95)
    out["notes"] = folder / "notes.txt"
    out["notes"].write_bytes(b"this is not a photo\n")
    out["broken"] = folder / "broken.jpg"
    out["broken"].write_bytes(out["chelsea"].read_bytes()[:600])  # a JPEG cut short
    return out


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that wants an API key, serving a small multi-label model (four sigmoid units)."""
    folder = tmp_path_factory.mktemp("multilabel")
    model_path = folder / "Tags.keras"
    labels_path = folder / "tags.txt"
    _save_multilabel_model(model_path)
    labels_path.write_text("outdoor\nanimal\nperson\nvehicle\n")
    with live_server(
        "--model-file",
        str(model_path),
        "--labels",
        str(labels_path),
        "--preprocess",
        "none",
        "--api-key",
        API_KEY,
        "--max-batch-size",
        "4",
    ) as srv:
        yield srv


def _save_multilabel_model(path: Path) -> None:
    """Four independent sigmoid outputs whose biases fix them near 0.88, 0.62, 0.38 and 0.12."""
    import keras
    import numpy as np

    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="sigmoid", name="tags")(x)
    model = keras.Model(inputs, outputs)
    dense = model.get_layer("tags")
    dense.set_weights([np.zeros((3, 4), "float32"), np.array([2.0, 0.5, -0.5, -2.0], "float32")])
    model.save(path)


class PageWatch:
    """What the page did: its API requests, requests off the server, uncaught exceptions."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.host = urlsplit(base_url).netloc
        self.foreign: list[str] = []
        self.exceptions: list[str] = []
        self.predicts: list[Any] = []
        page.on("request", self._request)
        page.on("pageerror", lambda exc: self.exceptions.append(str(exc)))

    def _request(self, request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https") and parts.netloc != self.host:
            self.foreign.append(request.url)
        if request.method == "POST" and parts.path.endswith("/predict"):
            self.predicts.append(request)

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


def _wait_models(page: Any, name: str = "MobileNetV2") -> None:
    page.wait_for_function("!document.getElementById('model').disabled")
    assert page.get_by_test_id("model-select").input_value() == name


def _wait_settled(page: Any, count: int) -> None:
    page.wait_for_function(f"document.querySelectorAll({SETTLED!r}).length === {count}")


def _card(page: Any, name: str) -> Any:
    return page.get_by_test_id("photo").filter(has=page.locator(".card-title", has_text=name))


def _assert_predictions(card: Any, top_k: int = 5) -> list[tuple[str, float]]:
    """Each row: a label, a percentage, and a <meter> holding the same probability."""
    assert card.get_attribute("data-state") == "done", card.inner_text()
    rows = card.get_by_test_id("prediction")
    assert rows.count() == top_k
    found = []
    for i in range(top_k):
        row = rows.nth(i)
        label = row.locator(".label").inner_text().strip()
        value = row.locator(".value").inner_text().strip()
        match = re.fullmatch(r"(\d+(?:\.\d)?)%", value)
        assert label, "a prediction without a label"
        assert match, f"bad percentage {value!r}"
        meter = row.locator("meter")
        assert meter.evaluate("m => [m.min, m.max]") == [0, 1]
        assert meter.evaluate("m => m.value") * 100 == pytest.approx(
            float(match.group(1)), abs=0.051
        )
        # The meter is named by its label, so a screen reader says what the bar measures.
        assert meter.evaluate("m => m.labels.length === 1 && m.labels[0].innerText") == label
        found.append((label, float(match.group(1))))
    percents = [p for _, p in found]
    assert percents == sorted(percents, reverse=True)
    assert all(0 <= p <= 100 for p in percents)
    return found


def _assert_timing(card: Any) -> None:
    timing = card.get_by_test_id("timing")
    assert timing.is_visible()
    names = timing.locator("dt").all_inner_texts()
    cells = dict(zip(names, timing.locator("dd").all_inner_texts(), strict=True))
    assert int(cells["Batch"]) >= 1
    for name in ("Queue", "Inference"):
        assert re.fullmatch(r"\d+\.\d ms", cells[name]), name
    assert float(cells["Inference"].split()[0]) > 0


def _axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (WCAG 2.1 A/AA and best practices)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))  # inlined: no request leaves the page
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
                resultTypes: ['violations'],
            });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ')),
            }));
        }"""
    )
    return violations


def _assert_accessible(page: Any) -> None:
    violations = _axe(page)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)
    assert violations == [], json.dumps(violations, indent=1)


def _tab_stops(page: Any, limit: int = 40) -> list[dict[str, Any]]:
    """Press Tab from the top of the page until focus leaves it; describe every stop."""
    _focus_start(page)
    stops: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = page.evaluate(
            """() => {
                const el = document.activeElement;
                if (!el || el === document.body) return null;
                const r = el.getBoundingClientRect();
                const style = getComputedStyle(el);
                return {
                    tag: el.tagName.toLowerCase(), id: el.id, testid: el.dataset.testid || '',
                    text: (el.matches('input, select') ? el.value : el.textContent)
                        .replace(/\\s+/g, " ").trim().slice(0, 40),
                    width: r.width, height: r.height,
                    inViewport: r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth,
                    visible: el.checkVisibility({opacityProperty: true, visibilityProperty: true}),
                    outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
                };
            }"""
        )
        if stop is None:
            break
        stops.append(stop)
    return stops


def _focus_start(page: Any) -> None:
    """Put the keyboard at the top of the page: Tab goes to the first control next."""
    # A click on plain text (the heading) is how a browser sets where Tab starts; blur() is not.
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("h1").click()


def _assert_every_stop_is_seen(stops: list[dict[str, Any]]) -> None:
    assert stops, "no tab stops at all"
    for stop in stops:
        assert stop["visible"], f"an invisible tab stop: {stop}"
        assert stop["inViewport"], f"a tab stop off the screen: {stop}"
        assert min(stop["width"], stop["height"]) >= 16, f"a tab stop too small to see: {stop}"
        assert stop["outline"], f"a tab stop without a focus ring: {stop}"


def _record_uploads(page: Any) -> None:
    """Keep each multipart body the page hands to XMLHttpRequest (Chromium does not report them)."""
    page.evaluate(
        """() => {
            window.sentBodies = [];
            const send = XMLHttpRequest.prototype.send;
            XMLHttpRequest.prototype.send = function (body) {
                if (body instanceof FormData) window.sentBodies.push(body.getAll('image'));
                return send.call(this, body);
            };
        }"""
    )


def _uploads(page: Any) -> list[list[tuple[str, bytes]]]:
    """Per request, the (file name, bytes) of each `image` part it carried."""
    encoded = page.evaluate(
        """() => Promise.all(window.sentBodies.map((files) => Promise.all(files.map((f) =>
            new Promise((resolve) => {
                const reader = new FileReader();
                reader.onload = () => resolve([f.name, reader.result.split(',')[1]]);
                reader.readAsDataURL(f);
            })))))"""
    )
    return [[(name, base64.b64decode(data)) for name, data in files] for files in encoded]


def _drop(page: Any, files: list[tuple[str, str, bytes]], target: str = "#drop") -> None:
    transfer = page.evaluate_handle(
        """files => {
            const dt = new DataTransfer();
            for (const [name, type, bytes] of files) dt.items.add(new File([new Uint8Array(bytes)], name, {type}));
            return dt;
        }""",
        [[name, mime, list(data)] for name, mime, data in files],
    )
    page.dispatch_event(target, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(target, "drop", {"dataTransfer": transfer})


# ---- several photos ----------------------------------------------------------------------------


def test_several_photos_each_get_their_own_answer_and_a_bad_file_its_own_error(desktop, photos):
    page, watch = desktop
    _wait_models(page)
    warning = page.get_by_test_id("weights-warning")
    assert warning.is_visible()
    assert "random weights" in warning.inner_text().lower()

    names = ["chelsea", "notes", "astronaut", "broken", "coffee"]
    _record_uploads(page)
    page.get_by_test_id("file-input").set_input_files([str(photos[n]) for n in names])
    _wait_settled(page, 5)
    assert page.get_by_test_id("photo").all_inner_texts()  # cards exist, in the order chosen
    assert page.locator(".card-title").all_inner_texts() == [photos[n].name for n in names]

    for good in ("chelsea.jpg", "astronaut.png", "coffee.jpg"):
        card = _card(page, good)
        _assert_predictions(card)
        _assert_timing(card)
        assert "MobileNetV2" in card.get_by_test_id("answered-by").inner_text()
        assert card.get_by_test_id("photo-error").is_hidden()
        assert card.get_by_test_id("retry").is_hidden()
        assert (
            card.get_by_test_id("photo-preview").evaluate("img => img.complete && img.naturalWidth")
            > 0
        )
    expected_errors = {
        "notes.txt": (
            "unsupported_media_type",
            "This is not an image format the server reads. Use a JPEG, PNG or WebP photo.",
        ),
        "broken.jpg": ("invalid_image", "This file could not be read as an image."),
    }
    for bad, (code, title) in expected_errors.items():
        card = _card(page, bad)
        assert card.get_attribute("data-state") == "failed"
        error = card.get_by_test_id("photo-error")
        assert error.get_attribute("data-code") == code
        assert card.get_by_test_id("photo-error-title").inner_text() == title
        assert card.get_by_test_id("photo-error-detail").inner_text()  # the server's own words
        assert "request id:" in card.get_by_test_id("photo-error-meta").inner_text()
        assert card.get_by_test_id("retry").is_visible()
        assert card.get_by_test_id("prediction").count() == 0
    assert page.get_by_test_id("summary").inner_text() == "5 photos · 3 answered · 2 failed"
    assert page.get_by_test_id("error").is_hidden()  # a bad photo is its own card's business

    # One request per photo, each carrying exactly one image.
    assert len(watch.predicts) == 5
    for request in watch.predicts:
        assert urlsplit(request.url).path == "/v1/models/MobileNetV2/predict"
    assert sorted(len(files) for files in _uploads(page)) == [1] * 5
    _assert_accessible(page)
    _screenshot(page, "web-gallery.png")
    watch.check()


def test_a_large_photo_is_shrunk_in_the_browser_and_a_small_one_sent_untouched(desktop, photos):
    from PIL import Image

    page, watch = desktop
    _wait_models(page)
    _record_uploads(page)
    page.get_by_test_id("file-input").set_input_files(
        [str(photos["large"]), str(photos["chelsea"])]
    )
    _wait_settled(page, 2)
    _assert_predictions(_card(page, "large.jpg"))
    sent = dict(file for files in _uploads(page) for file in files)
    assert set(sent) == {"large.jpg", "chelsea.jpg"}
    assert Image.open(io.BytesIO(sent["large.jpg"])).size == (1024, 512)
    assert len(sent["large.jpg"]) < photos["large"].stat().st_size / 4
    assert sent["chelsea.jpg"] == photos["chelsea"].read_bytes()  # 451x300: no re-encoding
    meta = _card(page, "large.jpg").get_by_test_id("photo-meta").inner_text()
    assert meta.startswith("3000×1500, sent at 1024×512")
    assert (
        _card(page, "chelsea.jpg").get_by_test_id("photo-meta").inner_text().startswith("451×300")
    )
    watch.check()


def test_upload_progress_is_shown_while_a_photo_goes_up(browser, server, photos):
    context, page, watch = _open(browser, server, viewport={"width": 1100, "height": 900})
    _wait_models(page)
    page.evaluate(
        """() => {
            window.progressSeen = [];
            new MutationObserver((records) => {
                for (const r of records) if (r.target.matches('progress')) window.progressSeen.push(r.target.value);
            }).observe(document.getElementById('cards'), {subtree: true, attributes: true, attributeFilter: ['value']});
        }"""
    )
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    # About 1 MB/s: the shrunk photo (~0.5 MB of noise) takes a fraction of a second to go up.
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 1_000_000},
    )
    page.get_by_test_id("file-input").set_input_files(str(photos["large"]))
    _wait_settled(page, 1)
    _assert_predictions(_card(page, "large.jpg"))
    seen = page.evaluate("window.progressSeen")
    assert any(0 < v < 100 for v in seen), f"no progress between 0 and 100: {seen}"
    assert seen == sorted(seen)
    assert _card(page, "large.jpg").get_by_test_id("photo-progress").is_hidden()
    watch.check()
    context.close()


def test_top_k_sets_how_many_classes_each_photo_shows(desktop, photos):
    page, watch = desktop
    _wait_models(page)
    page.get_by_test_id("file-input").set_input_files(str(photos["chelsea"]))
    _wait_settled(page, 1)
    _assert_predictions(_card(page, "chelsea.jpg"), 5)

    top_k = page.get_by_test_id("top-k")
    top_k.fill("0")
    assert top_k.get_attribute("aria-invalid") == "true"
    assert "whole number from 1 to 100" in page.get_by_test_id("top-k-help").inner_text()
    top_k.fill("3")
    top_k.dispatch_event("change")
    assert top_k.get_attribute("aria-invalid") is None
    page.wait_for_function("document.querySelectorAll('[data-testid=prediction]').length === 3")
    _wait_settled(page, 1)
    _assert_predictions(_card(page, "chelsea.jpg"), 3)
    top_k.fill("12")
    top_k.dispatch_event("change")
    page.wait_for_function("document.querySelectorAll('[data-testid=prediction]').length === 12")
    _assert_predictions(_card(page, "chelsea.jpg"), 12)
    # The answer holds the server's top 100: top-k shows more or fewer without a new upload.
    assert len(watch.predicts) == 1
    assert parse_qs(urlsplit(watch.predicts[0].url).query)["top_k"] == ["100"]
    watch.check()


def test_retry_sends_the_photo_again_and_keeps_its_preview(desktop, photos):
    page, watch = desktop
    _wait_models(page)
    attempts: list[str] = []

    def first_fails(route: Any) -> None:
        attempts.append(route.request.url)
        if len(attempts) == 1:
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route("**/predict*", first_fails)
    page.get_by_test_id("file-input").set_input_files(str(photos["chelsea"]))
    _wait_settled(page, 1)
    card = _card(page, "chelsea.jpg")
    assert card.get_by_test_id("photo-error").get_attribute("data-code") == "network"
    assert "Cannot reach the server" in card.get_by_test_id("photo-error-title").inner_text()
    preview = card.get_by_test_id("photo-preview")
    src = preview.get_attribute("src")
    assert preview.evaluate("img => img.naturalWidth") == 451

    card.get_by_test_id("retry").click()
    page.wait_for_function("document.querySelector('[data-testid=photo]').dataset.state === 'done'")
    _assert_predictions(card)
    assert len(attempts) == 2
    assert preview.get_attribute("src") == src  # the same preview, not a new one
    assert preview.is_visible()
    assert card.get_by_test_id("photo-error").is_hidden()
    watch.check()


def test_remove_one_photo_and_then_all(desktop, photos):
    page, watch = desktop
    _wait_models(page)
    page.get_by_test_id("file-input").set_input_files(
        [str(photos["chelsea"]), str(photos["coffee"])]
    )
    _wait_settled(page, 2)
    _card(page, "chelsea.jpg").get_by_test_id("remove").click()
    assert page.locator(".card-title").all_inner_texts() == ["coffee.jpg"]
    assert page.get_by_test_id("summary").inner_text() == "1 photo · 1 answered"
    # Focus moves to the next card's button, not to the top of the page.
    assert page.evaluate("document.activeElement.dataset.testid") == "remove"
    page.get_by_test_id("clear").click()
    assert page.get_by_test_id("photo").count() == 0
    assert page.get_by_test_id("gallery").is_hidden()
    assert page.evaluate("document.activeElement.id") == "choose"
    watch.check()


# ---- choosing, dropping, pasting ---------------------------------------------------------------


def test_drag_and_drop_several_photos(desktop, photos):
    page, watch = desktop
    _wait_models(page)
    transfer = page.evaluate_handle(
        """bytes => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], 'astronaut.png', {type: 'image/png'}));
            return dt;
        }""",
        list(photos["astronaut"].read_bytes()),
    )
    page.dispatch_event("#drop", "dragenter", {"dataTransfer": transfer})
    assert "dragging" in (page.get_by_test_id("drop-zone").get_attribute("class") or "")
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    _drop(page, [("coffee.jpg", "image/jpeg", photos["coffee"].read_bytes())], target="h1")
    _wait_settled(page, 2)
    _assert_predictions(_card(page, "astronaut.png"))
    _assert_predictions(_card(page, "coffee.jpg"))  # dropped on the heading: the page takes it
    assert "dragging" not in (page.get_by_test_id("drop-zone").get_attribute("class") or "")
    assert page.url.endswith("/")  # a drop never navigates away
    watch.check()


def test_a_drop_with_no_file_is_explained(desktop):
    page, _ = desktop
    _wait_models(page)
    _drop(page, [])
    assert page.get_by_test_id("error").get_attribute("data-code") == "no_file"
    assert page.locator("#error-title").inner_text() == "Nothing to classify: drop image files."


def test_paste_photos(desktop):
    page, watch = desktop
    _wait_models(page)
    page.evaluate(
        """bytes => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], 'pasted.png', {type: 'image/png'}));
            dt.items.add(new File([new Uint8Array(bytes)], 'pasted-too.png', {type: 'image/png'}));
            document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt}));
        }""",
        list(_png_bytes()),
    )
    _wait_settled(page, 2)
    _assert_predictions(_card(page, "pasted.png"))
    _assert_predictions(_card(page, "pasted-too.png"))
    watch.check()


def test_a_phone_gets_the_camera_button(phone, photos):
    page, watch = phone
    _intercept_file_chooser(page)
    _wait_models(page)
    camera = page.get_by_test_id("camera-button")
    assert camera.is_visible()
    assert page.get_by_test_id("camera-input").get_attribute("capture") == "environment"
    with page.expect_file_chooser() as chooser:
        camera.tap()
    assert chooser.value.element.get_attribute("capture") == "environment"
    chooser.value.set_files(str(photos["coffee"]))
    _wait_settled(page, 1)
    _assert_predictions(_card(page, "coffee.jpg"))
    _screenshot(page, "web-phone.png")
    watch.check()


def test_the_desktop_has_no_camera_button(desktop):
    page, _ = desktop
    assert page.get_by_test_id("camera-button").is_hidden()
    assert page.get_by_test_id("choose-button").is_visible()


# ---- the model list ----------------------------------------------------------------------------


def test_a_photo_dropped_before_the_model_list_waits_for_it(browser, server, photos):
    """Regression: such a photo was posted to a model named "Loading models…"."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch = PageWatch(page, server.base_url)
    held: list[Any] = []
    page.route("**/v1/models", lambda route: held.append(route))
    page.goto(f"{server.base_url}/")
    page.wait_for_function("document.getElementById('model').disabled")
    while not held:
        page.wait_for_timeout(20)
    assert page.get_by_test_id("model-select").locator("option").all_inner_texts() == [
        "Loading models…"
    ]

    _drop(page, [("astronaut.png", "image/png", photos["astronaut"].read_bytes())])
    card = _card(page, "astronaut.png")
    status = card.get_by_test_id("photo-status")
    page.wait_for_function(
        "document.querySelector('[data-testid=photo]').dataset.state === 'waiting'"
    )
    assert status.inner_text() == "Waiting for the model list…"
    page.wait_for_timeout(300)
    assert watch.predicts == [], "a photo went out before there was a model to send it to"

    held[0].continue_()
    _wait_settled(page, 1)
    _assert_predictions(card)
    assert [urlsplit(r.url).path for r in watch.predicts] == ["/v1/models/MobileNetV2/predict"]
    watch.check()
    context.close()


def test_a_model_list_that_fails_refuses_waiting_photos_clearly_then_reloads(
    browser, server, photos
):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch = PageWatch(page, server.base_url)
    held: list[Any] = []
    page.route("**/v1/models", lambda route: held.append(route))
    page.goto(f"{server.base_url}/")
    while not held:
        page.wait_for_timeout(20)
    _drop(page, [("astronaut.png", "image/png", photos["astronaut"].read_bytes())])
    page.wait_for_function(
        "document.querySelector('[data-testid=photo]').dataset.state === 'waiting'"
    )
    held[0].fulfill(
        status=503,
        content_type="application/json",
        body='{"code": "not_ready", "message": "MobileNetV2 is warming up", "request_id": "r3"}',
    )
    page.get_by_test_id("error").wait_for()
    assert page.locator("#error-title").inner_text() == (
        "The server is still starting up. Try again in a moment."
    )
    assert page.locator("#error-detail").inner_text() == "MobileNetV2 is warming up"
    assert page.get_by_test_id("model-select").is_disabled()
    card = _card(page, "astronaut.png")
    assert card.get_attribute("data-state") == "failed"
    assert card.get_by_test_id("photo-error").get_attribute("data-code") == "no_models"
    assert card.get_by_test_id("photo-error-title").inner_text() == (
        "Not sent: the model list did not load, so there is no model to ask."
    )
    assert watch.predicts == []

    page.unroute("**/v1/models")
    page.get_by_test_id("reload-models").click()
    _wait_models(page)
    _wait_settled(page, 1)
    _assert_predictions(card)  # it went by itself once there was a model
    assert page.get_by_test_id("error").is_hidden()
    watch.check()
    context.close()


def test_a_model_that_failed_to_load_cannot_be_chosen_and_says_why(browser, server):
    """The real model list with a failed model added in the browser (this server has none)."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()

    def add_failed_model(route: Any) -> None:
        listing = route.fetch().json()
        broken = {**listing["models"][0], "name": "Broken", "state": "failed"}
        broken["error"] = "Broken v3: cannot read weights.h5"
        listing["models"].insert(0, broken)
        listing["default_model"] = "Broken"
        route.fulfill(json=listing)

    page.route("**/v1/models", add_failed_model)
    page.goto(f"{server.base_url}/")
    _wait_models(page)  # the first model that loaded, not the failed default
    option = page.get_by_test_id("model-select").locator("option", has_text="Broken")
    assert option.is_disabled()
    assert "failed" in option.inner_text()
    assert page.get_by_test_id("model-failures").inner_text() == (
        "Broken failed to load: Broken v3: cannot read weights.h5"
    )
    context.close()


# ---- keyboard and assistive technology ---------------------------------------------------------


def _intercept_file_chooser(page: Any) -> None:
    """Have Playwright take the file dialog from now on, well before a key or tap opens it.

    `expect_file_chooser` alone turns interception on without waiting for Chromium to confirm,
    so a dialog opened at once may still go to the (headless, invisible) native chooser.
    """
    page.on("filechooser", lambda chooser: None)
    page.evaluate("1")


def test_keyboard_only_from_choosing_photos_to_retry_and_remove(desktop, photos):
    page, watch = desktop
    _intercept_file_chooser(page)
    _wait_models(page)
    stops = _tab_stops(page)
    _assert_every_stop_is_seen(stops)
    assert [s["id"] or s["text"] for s in stops] == [
        "model",
        "top-k",
        "choose",
        "teach-name",
        "teach-base",
        "teach-key",
        "teach-label-1",
        "teach-files-1",
        "teach-label-2",
        "teach-files-2",
        "teach-add",
        "teach-folder-button",
        "teach-submit",
        "API docs",
        "models (JSON)",
        "metrics",
    ]

    _focus_start(page)
    page.keyboard.press("Tab")  # the model
    page.keyboard.press("Tab")  # top-k
    assert page.evaluate("document.activeElement.id") == "top-k"
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    page.keyboard.press("Tab")  # leaving the field applies it
    assert page.evaluate("document.activeElement.id") == "choose"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    assert chooser.value.is_multiple()
    chooser.value.set_files([str(photos["chelsea"]), str(photos["notes"])])
    _wait_settled(page, 2)
    _assert_predictions(_card(page, "chelsea.jpg"), 3)
    bad = _card(page, "notes.txt")
    first_id = bad.get_by_test_id("photo-error-meta").inner_text()

    # Every control of the gallery is reachable, and seen when reached.
    stops = _tab_stops(page)
    _assert_every_stop_is_seen(stops)
    names = [s["text"] for s in stops if s["testid"] in ("clear", "remove", "retry")]
    assert names == [
        "Remove all",
        "Remove: chelsea.jpg",
        "Try again: notes.txt",
        "Remove: notes.txt",
    ]

    _focus_start(page)
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.testid") == "retry":
            break
    page.keyboard.press("Enter")
    # The button went away while the photo is sent; the keyboard stays on its card.
    assert page.evaluate("document.activeElement.textContent") == "notes.txt"
    page.wait_for_function(
        "([el, before]) => el.dataset.state === 'failed' && el.innerText.includes('request id') "
        "&& !el.innerText.includes(before)",
        arg=[bad.element_handle(), first_id],
    )
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "retry"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "remove"
    page.keyboard.press("Enter")
    assert page.locator(".card-title").all_inner_texts() == ["chelsea.jpg"]
    assert page.get_by_test_id("summary").inner_text() == "1 photo · 1 answered"
    watch.check()


def test_axe_finds_nothing_in_light_or_dark(browser, server, photos):
    for scheme in ("light", "dark"):
        context, page, watch = _open(
            browser, server, viewport={"width": 1100, "height": 900}, color_scheme=scheme
        )
        _wait_models(page)
        _assert_accessible(page)
        page.get_by_test_id("file-input").set_input_files(
            [str(photos["coffee"]), str(photos["notes"])]
        )
        _wait_settled(page, 2)
        page.get_by_test_id("top-k").fill("200")
        _assert_accessible(page)  # done and failed cards, an invalid top-k
        if scheme == "dark":
            _screenshot(page, "web-dark.png")
        watch.check()
        context.close()


# ---- API key -----------------------------------------------------------------------------------


def test_a_401_asks_for_a_key_kept_in_session_storage_and_sent_as_x_api_key(
    browser, keyed_server, photos
):
    context, page, watch = _open(browser, keyed_server, viewport={"width": 1100, "height": 900})
    auth = page.get_by_test_id("auth")
    auth.wait_for()
    assert "asks for an API key" in page.get_by_test_id("auth-text").inner_text()
    assert page.evaluate("document.activeElement.id") == "api-key"  # nothing else to do yet
    assert page.get_by_test_id("api-key").get_attribute("type") == "password"
    _assert_accessible(page)

    # A photo added now waits for the key rather than going nowhere.
    _drop(page, [("astronaut.png", "image/png", photos["astronaut"].read_bytes())])
    card = _card(page, "astronaut.png")
    page.wait_for_function(
        "document.querySelector('[data-testid=photo]').dataset.state === 'waiting'"
    )
    assert card.get_by_test_id("photo-status").inner_text() == "Waiting for an API key…"

    page.keyboard.type("not-the-key")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('[data-testid=auth-text]').dataset.refused === 'true'"
    )
    assert "refused" in page.get_by_test_id("auth-text").inner_text()
    assert watch.predicts == []

    page.get_by_test_id("api-key").fill(API_KEY)
    page.get_by_test_id("use-key").click()
    _wait_models(page, "Tags")
    _wait_settled(page, 1)
    assert card.get_attribute("data-state") == "done", card.inner_text()
    assert [r.headers.get("x-api-key") for r in watch.predicts] == [API_KEY]
    assert page.evaluate("sessionStorage.getItem('kerasserve.apiKey')") == API_KEY
    assert page.evaluate("localStorage.length") == 0
    assert context.cookies() == []
    assert page.get_by_test_id("forget-key").is_visible()

    # The same tab keeps it across a reload; another tab does not have it.
    page.reload()
    _wait_models(page, "Tags")
    assert auth.is_visible()
    assert page.get_by_test_id("forget-key").is_visible()
    other = context.new_page()
    other.goto(f"{keyed_server.base_url}/")
    other.get_by_test_id("api-key").wait_for()
    assert other.evaluate("sessionStorage.length") == 0

    # Forgotten, the next photo is turned away with 401, then goes by itself once a key is in.
    page.get_by_test_id("forget-key").click()
    assert page.evaluate("sessionStorage.getItem('kerasserve.apiKey')") is None
    page.get_by_test_id("file-input").set_input_files(str(photos["coffee"]))
    coffee = _card(page, "coffee.jpg")
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=photo]')[0]?.dataset.state === 'failed'"
    )
    assert coffee.get_by_test_id("photo-error").get_attribute("data-code") == "unauthorized"
    assert (
        coffee.get_by_test_id("photo-error-title").inner_text() == "The server requires an API key."
    )
    page.get_by_test_id("api-key").fill(API_KEY)
    page.get_by_test_id("api-key").press("Enter")
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=photo]')[0]?.dataset.state === 'done'"
    )
    watch.check()
    context.close()


# ---- what the answers mean ---------------------------------------------------------------------


def test_multi_label_answers_are_independent_likelihoods(browser, keyed_server, photos):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.add_init_script(f"sessionStorage.setItem('kerasserve.apiKey', {json.dumps(API_KEY)})")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch = PageWatch(page, keyed_server.base_url)
    page.goto(f"{keyed_server.base_url}/")
    _wait_models(page, "Tags")
    assert "independent labels" in page.get_by_test_id("model-info").inner_text()
    top_k = page.get_by_test_id("top-k")
    top_k.fill("4")
    top_k.dispatch_event("change")
    page.get_by_test_id("file-input").set_input_files(str(photos["chelsea"]))
    _wait_settled(page, 1)
    card = _card(page, "chelsea.jpg")
    found = _assert_predictions(card, 4)
    assert [label for label, _ in found] == ["Outdoor", "Animal", "Person", "Vehicle"]
    # sigmoid(2), sigmoid(0.5), sigmoid(-0.5), sigmoid(-2): they add up to 200%, not 100%.
    assert [p for _, p in found] == pytest.approx([88.1, 62.2, 37.8, 11.9], abs=0.051)
    assert sum(p for _, p in found) == pytest.approx(200, abs=0.2)
    note = card.get_by_test_id("kind-note").inner_text()
    assert "judged on its own" in note
    assert "need not add up to 100%" in note
    verdicts = card.locator(".verdict").all_inner_texts()
    assert verdicts == ["likely", "likely", "unlikely", "unlikely"]
    assert card.get_by_test_id("answer").get_attribute("data-kind") == "multi_label"
    _assert_accessible(page)
    _screenshot(page, "web-multi-label.png")
    watch.check()
    context.close()


@pytest.mark.parametrize(
    ("locale", "lang"), [("zh-CN", "zh-CN"), ("zh-TW", "zh-CN"), ("en-GB", "en"), ("fr-FR", "en")]
)
def test_labels_come_in_the_browsers_language(browser, server, photos, locale, lang):
    context, page, watch = _open(browser, server, locale=locale)
    _wait_models(page)
    page.get_by_test_id("file-input").set_input_files(str(photos["chelsea"]))
    _wait_settled(page, 1)
    card = _card(page, "chelsea.jpg")
    found = _assert_predictions(card)
    assert parse_qs(urlsplit(watch.predicts[0].url).query)["lang"] == [lang]
    labels = card.locator(".label")
    assert set(labels.evaluate_all("els => els.map(e => e.lang)")) == {lang}
    chinese = [bool(re.search(r"[\u4e00-\u9fff]", label)) for label, _ in found]
    assert all(chinese) if lang == "zh-CN" else not any(chinese)
    watch.check()
    context.close()


# ---- what can go wrong -------------------------------------------------------------------------


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
        (
            503,
            {"code": "model_unavailable", "message": "Tags v2 failed to load", "request_id": "r4"},
            {},
            "This model is not available right now. Choose another one or try again later.",
        ),
        (502, "<html>Bad Gateway</html>", {}, "The server answered with an error (HTTP 502)."),
        (200, "not json", {}, "The server sent an answer this page cannot read."),
    ],
)
def test_answers_a_proxy_or_a_busy_server_may_give_are_explained(
    desktop, photos, status, body, headers, expected
):
    """Answers the real server will not give on demand, fulfilled in the browser."""
    page, _ = desktop
    _wait_models(page)
    text = body if isinstance(body, str) else json.dumps(body)
    ctype = "text/html" if isinstance(body, str) else "application/json"
    page.route(
        "**/predict*",
        lambda route: route.fulfill(status=status, body=text, content_type=ctype, headers=headers),
    )
    page.get_by_test_id("file-input").set_input_files(str(photos["chelsea"]))
    _wait_settled(page, 1)
    card = _card(page, "chelsea.jpg")
    assert card.get_by_test_id("photo-error-title").inner_text() == expected
    assert card.get_by_test_id("retry").is_visible()


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buf, "PNG")
    return buf.getvalue()


# ---- issue 19 §4 and issue 18 §3: Chinese, many large photos, retries, export, Teach ------------

ADMIN_KEY = "web-teach-admin-key"


def _jpeg_file(
    folder: Path, name: str, size: tuple[int, int], colour: tuple[int, int, int]
) -> Path:
    """A photo-sized JPEG: a colour with a gradient and a noisy band, so it is not trivial."""
    import numpy as np
    from PIL import Image

    width, height = size
    rng = np.random.default_rng(sum(colour) + width)
    ramp = np.linspace(0.6, 1.0, width, dtype=np.float32)[None, :, None]
    pixels = (np.array(colour, np.float32)[None, None, :] * ramp).repeat(height, axis=0)
    band = slice(height // 3, height // 3 + 64)
    pixels[band] += rng.normal(0, 25, pixels[band].shape).astype(np.float32)
    path = folder / name
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, "JPEG", quality=85)
    return path


def test_the_page_speaks_chinese_when_the_browser_asks(browser, server, photos):
    context, page, watch = _open(browser, server, locale="zh-CN")
    _wait_models(page)
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.get_by_test_id("choose-button").inner_text() == "选择照片"
    assert page.get_by_role("heading", name="教一个新的分类器").is_visible()
    page.get_by_test_id("file-input").set_input_files(str(photos["chelsea"]))
    _wait_settled(page, 1)
    assert page.get_by_test_id("summary").inner_text() == "1 张照片 · 1 张已识别"
    assert page.get_by_test_id("export-csv").inner_text() == "导出 CSV"
    assert "每张照片显示几个类别" in page.get_by_test_id("top-k-help").inner_text()
    _screenshot(page, "web-zh-CN.png")
    watch.check()
    context.close()


def _renderer_peak_mib(browser: Any, page: Any) -> float:
    """The page's renderer process' peak resident memory (VmHWM), from its pid via CDP."""
    session = browser.new_browser_cdp_session()
    info = session.send("SystemInfo.getProcessInfo")
    session.detach()
    renderers = [p["id"] for p in info["processInfo"] if p["type"] == "renderer"]
    peaks = []
    for pid in renderers:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
            peaks.append(int(line.split()[1]) / 1024)
    assert peaks, f"no renderer process found among {info['processInfo']}"
    return max(peaks)


# Measured here (Debian Chromium, headless, 2 busy cores), 50 photos of 4000x3000: renderer peak
# 359 MiB, JS heap peak 4.8 MiB. The page before this bound (every photo decoded at full size, all
# at once, then drawn smaller) peaked at 2584 MiB in the same test.
RENDERER_PEAK_BOUND_MIB = 900
JS_HEAP_BOUND_MIB = 64


def test_fifty_large_photos_are_decoded_small_and_memory_stays_bounded(browser, server, tmp_path):
    sizes = [(4000, 3000) if i % 2 else (3000, 4000) for i in range(50)]
    files = [
        _jpeg_file(tmp_path, f"phone-{i:02d}.jpg", size, (40 + 4 * i, 200 - 3 * i, 90))
        for i, size in enumerate(sizes)
    ]
    context, page, watch = _open(browser, server, viewport={"width": 1100, "height": 900})
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    _wait_models(page)
    heap_peak = 0.0
    page.get_by_test_id("file-input").set_input_files([str(f) for f in files])
    while page.locator(SETTLED).count() < len(files):
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        heap_peak = max(heap_peak, metrics["JSHeapUsedSize"] / 2**20)
        page.wait_for_timeout(250)
    assert page.locator("[data-testid=photo][data-state=done]").count() == len(files)
    renderer_peak = _renderer_peak_mib(browser, page)
    print(
        f"50 photos of 4000x3000: renderer peak {renderer_peak:.0f} MiB, JS heap peak {heap_peak:.1f} MiB"
    )
    assert renderer_peak < RENDERER_PEAK_BOUND_MIB
    assert heap_peak < JS_HEAP_BOUND_MIB
    metas = page.get_by_test_id("photo-meta").all_inner_texts()
    assert all(re.search(r"sent at (1024×768|768×1024)", m) for m in metas), metas[:3]
    assert len(watch.predicts) == len(files)
    watch.check()
    context.close()


def test_a_busy_server_is_asked_again_after_its_retry_after(desktop, photos):
    page, watch = desktop
    _wait_models(page)
    busy = {"code": "overloaded", "message": "queue full", "request_id": "r1", "retry_after": 1}
    answered = []

    def once_busy(route: Any) -> None:
        if not answered:
            answered.append(503)
            route.fulfill(status=503, body=json.dumps(busy), headers={"Retry-After": "1"})
        else:
            route.continue_()

    page.route("**/predict*", once_busy)
    page.get_by_test_id("file-input").set_input_files(str(photos["chelsea"]))
    card = _card(page, "chelsea.jpg")
    page.wait_for_function(
        "document.querySelector('[data-testid=photo]').dataset.state === 'retrying'"
    )
    assert "trying again in 1 s" in card.get_by_test_id("photo-status").inner_text()
    _wait_settled(page, 1)
    assert card.get_attribute("data-state") == "done"
    assert len(watch.predicts) == 2
    watch.check()


def test_retry_all_failed_sends_every_failed_photo_again(desktop, photos):
    page, watch = desktop
    _wait_models(page)
    page.route(
        "**/predict*",
        lambda route: route.fulfill(
            status=500, body=json.dumps({"code": "internal_error", "message": "boom"})
        ),
    )
    page.get_by_test_id("file-input").set_input_files(
        [str(photos["chelsea"]), str(photos["coffee"])]
    )
    _wait_settled(page, 2)
    assert page.locator("[data-testid=photo][data-state=failed]").count() == 2
    retry_all = page.get_by_test_id("retry-failed")
    assert retry_all.is_visible()
    page.unroute("**/predict*")
    retry_all.click()
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=photo][data-state=done]').length === 2"
    )
    assert retry_all.is_hidden()
    assert len(watch.predicts) == 4
    watch.check()


def test_heic_is_refused_before_upload_with_a_clear_message(desktop, tmp_path):
    page, watch = desktop
    _wait_models(page)
    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 512)
    page.get_by_test_id("file-input").set_input_files(str(heic))
    _wait_settled(page, 1)
    card = _card(page, "IMG_0001.HEIC")
    title = card.get_by_test_id("photo-error-title").inner_text()
    assert "cannot read HEIC photos" in title
    assert "Convert it to JPEG" in title
    assert card.get_by_test_id("photo-error").get_attribute("data-code") == "unsupported_format"
    assert watch.predicts == []
    assert page.get_by_test_id("retry-failed").is_hidden()  # sending it again cannot help
    watch.check()


def test_results_export_as_csv_and_json(desktop, photos):
    page, watch = desktop
    _wait_models(page)
    page.get_by_test_id("file-input").set_input_files(
        [str(photos["chelsea"]), str(photos["coffee"])]
    )
    _wait_settled(page, 2)
    page.get_by_test_id("top-k").fill("2")
    page.get_by_test_id("top-k").dispatch_event("change")
    with page.expect_download() as csv_download:
        page.get_by_test_id("export-csv").click()
    text = Path(csv_download.value.path()).read_bytes().decode("utf-8-sig")
    rows = text.strip().split("\r\n")
    assert rows[0] == "file,model,version,rank,label,class_id,probability,error_code,error"
    assert len(rows) == 1 + 2 * 2  # two classes shown for each photo
    assert {r.split(",")[0] for r in rows[1:]} == {"chelsea.jpg", "coffee.jpg"}
    with page.expect_download() as json_download:
        page.get_by_test_id("export-json").click()
    records = json.loads(Path(json_download.value.path()).read_text(encoding="utf-8"))
    assert [r["file"] for r in records] == ["chelsea.jpg", "coffee.jpg"]
    assert all(r["ok"] and len(r["predictions"]) == 2 for r in records)
    assert records[0]["model"]["name"] == "MobileNetV2"
    watch.check()


@pytest.fixture(scope="module")
def admin_server() -> Iterator[LiveServer]:
    """MobileNetV2 (random weights) with an admin key, so classifiers can be taught."""
    with live_server(
        "--model", "MobileNetV2", "--weights", "none", "--max-batch-size", "8",
        "--admin-key", ADMIN_KEY,
    ) as srv:  # fmt: skip
        yield srv


def test_the_teach_panel_teaches_a_classifier_and_classifies_with_it(
    browser, admin_server, tmp_path
):
    colours = {"红色": (220, 30, 30), "blue": (30, 40, 220)}
    examples = {
        label: [
            _jpeg_file(tmp_path, f"{i}-{n}.jpg", (320, 240), tuple(max(0, c - 12 * n) for c in rgb))
            for n in range(4)
        ]
        for i, (label, rgb) in enumerate(colours.items())
    }
    held_out = _jpeg_file(tmp_path, "held-out-red.jpg", (320, 240), (200, 45, 40))
    context, page, watch = _open(browser, admin_server, locale="zh-CN")
    _wait_models(page)
    page.get_by_test_id("teach-name").fill("colours")
    page.get_by_test_id("teach-key").fill(ADMIN_KEY)
    rows = page.get_by_test_id("teach-label")
    for row, (label, files) in zip(rows.all(), examples.items(), strict=True):
        row.get_by_test_id("teach-label-name").fill(label)
        row.get_by_test_id("teach-label-files").set_input_files([str(f) for f in files])
    with page.expect_response("**/v1/classifiers/colours*") as posted:
        page.get_by_test_id("teach-submit").click()
    assert posted.value.status == 200, posted.value.text()
    request = posted.value.request
    assert request.headers["x-api-key"] == ADMIN_KEY
    accuracy = page.get_by_test_id("teach-accuracy")
    accuracy.wait_for()
    assert re.match(r"colours v1：留一法准确率 \d+\.\d%，共 8 张照片", accuracy.inner_text())
    assert page.get_by_test_id("teach-classes").locator("meter").count() == 2
    confusion = page.get_by_test_id("teach-confusion")
    assert confusion.locator("tr").count() == 3  # a header and one row per label
    cells = [int(x) for x in confusion.locator("td").all_inner_texts()]
    assert len(cells) == 4, cells
    assert sum(cells) == 8, cells  # every photo, once
    assert "混淆矩阵" in confusion.locator("caption").inner_text()
    page.wait_for_function("document.getElementById('model').value === 'colours'")
    page.get_by_test_id("file-input").set_input_files(str(held_out))
    _wait_settled(page, 1)
    labels = (
        _card(page, "held-out-red.jpg")
        .locator(".label")
        .evaluate_all("els => els.map(e => e.textContent)")
    )
    assert set(labels) == {"红色", "blue"}
    assert labels[0] == "红色"
    _screenshot(page, "web-teach.png")
    watch.check()
    context.close()


def test_the_teach_panel_without_the_admin_key_says_so(browser, admin_server, tmp_path):
    context, page, watch = _open(browser, admin_server)
    _wait_models(page)
    page.get_by_test_id("teach-name").fill("colours2")
    for n, row in enumerate(page.get_by_test_id("teach-label").all()):
        row.get_by_test_id("teach-label-name").fill(f"c{n}")
        files = [
            _jpeg_file(tmp_path, f"k{n}-{m}.jpg", (64, 48), (90 * n, 60, 30)) for m in range(2)
        ]
        row.get_by_test_id("teach-label-files").set_input_files([str(f) for f in files])
    page.get_by_test_id("teach-submit").click()
    status = page.get_by_test_id("teach-status")
    page.wait_for_function("document.getElementById('teach-status').classList.contains('warning')")
    assert status.inner_text().startswith("The server requires an API key.") or (
        "admin" in status.inner_text()
    )
    watch.check()
    context.close()
