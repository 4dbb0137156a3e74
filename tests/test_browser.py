"""The page of ``mnistnet serve`` in a real browser: headless Chromium driven by Selenium.

Draws three digits with pointer events (a vertical stroke for 1 with a
finger, a closed loop for 0 with the mouse, a 7 in two strokes with a pen),
checks the answer shown and the 28x28 preview, that the page asked nothing
of any other server and logged no error, that Esc clears it, that answers
come while a long stroke goes on, that a photo is read as ``predict`` reads
it, that it fits a phone's screen and that text from the model file is
shown as text.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run``
installs them when it can); skipped without them. Selenium is pointed at
``/usr/bin/chromedriver``, so it never downloads a driver.

``MNISTNET_SCREENSHOT=docs/serve.png pytest tests/test_browser.py`` also
saves the screenshot used in the README.
"""

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import serving
from synthetic import photo

from mnistnet import checkpoint
from mnistnet.datasets import load_split
from mnistnet.webapp import DigitReader

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = (
    "needs Chromium and its driver: `apt-get install chromium chromium-driver` "
    "(Debian, Ubuntu) and `pip install -e '.[test]'` (Selenium)"
)

webdriver = pytest.importorskip("selenium.webdriver", reason=INSTALL)
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(INSTALL, allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.actions.pointer_input import PointerInput  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

WIDTH, HEIGHT = 1200, 640  # the screenshot's size
WAIT = 20  # seconds, at most, for an answer (a busy CI machine); usually 0.2


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--force-device-scale-factor=1",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    # The screenshot shows exactly WIDTH x HEIGHT of page, whatever the window's frame.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page(browser, serve_model):
    with serving(serve_model) as server:
        browser.get(server.url)
        wait_for(browser, lambda: browser.find_elements("css selector", "#bars li"))
        yield browser, server.url


def wait_for(driver, condition, what="the page"):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def answers(driver):
    return int(driver.find_element("id", "app").get_attribute("data-answers"))


def draw(driver, strokes, kind):
    """Draw ``strokes`` (lists of (x, y) in -0.5..0.5 of the pad, centre 0) with a pointer.

    Returns once the page has an answer to the finished drawing.
    """
    before = answers(driver)
    pad = driver.find_element("id", "pad")
    side = pad.size["width"]
    for points in strokes:
        actions = ActionBuilder(driver, mouse=PointerInput(kind, kind), duration=0)
        pointer = actions.pointer_action
        for k, (x, y) in enumerate(points):
            pointer.move_to(pad, round(x * side), round(y * side))  # from the pad's centre
            if k == 0:
                pointer.pointer_down()
        pointer.pointer_up()
        actions.perform()
    app = driver.find_element("id", "app")
    wait_for(
        driver,
        lambda: answers(driver) > before and app.get_attribute("data-busy") == "false",
        "an answer",
    )
    return driver.find_element("id", "digit").text


def clear(driver):
    driver.find_element("id", "clear").click()


def preview_ink(driver):
    """Sum of the 28x28 preview's pixels as the page drew them (0 when empty)."""
    return driver.execute_script(
        """const c = document.getElementById('seen');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] > 40 ? d[i] : 0; return s;"""
    )


def line(a, b, n=4):
    return [(a[0] + (b[0] - a[0]) * t / n, a[1] + (b[1] - a[1]) * t / n) for t in range(n + 1)]


ONE = [line((0.02, -0.32), (-0.02, 0.32))]
ZERO = [
    [
        (0.2 * math.sin(2 * math.pi * t / 20), -0.3 * math.cos(2 * math.pi * t / 20))
        for t in range(21)
    ]
]
SEVEN = [line((-0.24, -0.3), (0.24, -0.3)), line((0.24, -0.3), (-0.02, 0.32))]


def test_drawn_digits_are_read(page, tmp_path):
    driver, url = page
    facts = driver.find_element("id", "facts").text
    assert "ten classes" in facts and "Test accuracy" in facts
    assert draw(driver, ONE, "touch") == "1"
    assert preview_ink(driver) > 0
    bars = driver.find_elements("css selector", "#bars li")
    assert [b.find_element("css selector", ".name").text for b in bars] == list("0123456789")
    clear(driver)
    assert driver.find_element("id", "digit").text == "?" and preview_ink(driver) == 0
    assert draw(driver, ZERO, "mouse") == "0"
    assert preview_ink(driver) > 0
    driver.find_element("tag name", "body").send_keys(Keys.ESCAPE)  # the key that clears
    assert driver.find_element("id", "digit").text == "?"
    assert draw(driver, SEVEN, "pen") == "7"
    best = driver.find_element("css selector", "#bars li.best .name").text
    assert best == "7"
    assert driver.find_element("id", "confidence").text.endswith("% sure")
    shot = Path(os.environ.get("MNISTNET_SCREENSHOT") or tmp_path / "serve.png")
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    assert_only_local_requests(driver, url)
    assert_no_errors(driver)


def assert_only_local_requests(driver, url):
    """Neither the browser's network log nor the page's own timing saw another server."""
    logged = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    requested = [
        m["params"]["request"]["url"] for m in logged if m["method"] == "Network.requestWillBeSent"
    ]
    timed = driver.execute_script(
        "return performance.getEntries().map(e => e.name).filter(n => n.includes('://'))"
    )
    assert f"{url}api/predict" in requested
    assert {f"{url}app.js", f"{url}style.css", f"{url}api/model"} <= set(timed)
    outside = [u for u in requested + timed if not u.startswith(url)]
    assert outside == []


def assert_no_errors(driver):
    """No JavaScript error, failed request or refused resource (CSP) in the console."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_answers_come_while_the_pen_is_still_down(page):
    """Live: a long stroke gets an answer before it ends (MAX_WAIT_MS), not only after."""
    driver, _ = page
    clear(driver)
    before = answers(driver)
    pad = driver.find_element("id", "pad")
    side = pad.size["width"]
    held = ActionBuilder(driver, mouse=PointerInput("mouse", "held"), duration=0)
    pointer = held.pointer_action
    pointer.move_to(pad, 0, round(-0.3 * side)).pointer_down()
    for k in range(1, 9):  # a slow downstroke: a move every 0.1 s, never a 120 ms pause
        pointer.move_to(pad, 0, round((-0.3 + 0.07 * k) * side)).pause(0.1)
    held.perform()
    assert answers(driver) > before  # while the button is still pressed
    release = ActionBuilder(driver, mouse=PointerInput("mouse", "held"), duration=0)
    release.pointer_action.pointer_up()
    release.perform()
    clear(driver)


def test_a_photo_is_read_as_predict_reads_it(page, serve_model, tmp_path):
    driver, _ = page
    split = load_split("mnist-sample", "test")
    body = photo(split.images[1], np.random.default_rng(1))
    (tmp_path / "photo.jpg").write_bytes(body)
    expected = DigitReader(serve_model).read(body, "image/jpeg")["predictions"][0]
    before = answers(driver)
    driver.find_element("id", "photo").send_keys(str(tmp_path / "photo.jpg"))
    wait_for(driver, lambda: answers(driver) > before, "the photo's answer")
    assert driver.find_element("id", "digit").text == expected["class_name"]
    assert driver.find_element("id", "status").text == "Read the photo photo.jpg."
    assert preview_ink(driver) > 0
    assert_no_errors(driver)
    clear(driver)


def test_controls_have_labels_and_fit_a_phone(page):
    driver, _ = page
    unlabelled = driver.execute_script(
        """return [...document.querySelectorAll('button, input, canvas')].filter(e =>
             !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
             && !e.textContent.trim()).map(e => e.id)"""
    )
    assert unlabelled == []
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        # (innerWidth grows with the content on a phone; clientWidth is the screen's.)
        overflow = driver.execute_script(
            "const html = document.documentElement; return html.scrollWidth - html.clientWidth"
        )
        assert overflow <= 0
        clear(driver)
        assert draw(driver, ONE, "pen") == "1"  # the pad still draws at a phone's size
    finally:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        clear(driver)


def test_text_from_the_model_file_is_shown_as_text(browser, serve_model, tmp_path):
    params, meta = checkpoint.load_model(serve_model)
    hostile = "<img src=x onerror=document.title='owned'>"
    names = [f"{d}{hostile}" for d in range(10)]
    meta = {**meta, "class_names": names, "config": {**meta["config"], "optimizer": hostile}}
    path = tmp_path / f"{hostile.replace('/', '')}.npz"
    checkpoint.save_model(path, params, meta)
    with serving(path) as server:
        browser.get(server.url)
        wait_for(browser, lambda: browser.find_elements("css selector", "#bars li"))
        assert browser.find_element("css selector", "#bars li .name").text == names[0]
        assert hostile in browser.find_element("id", "recipe").text
        assert browser.find_elements("css selector", "main img, aside img") == []
        assert browser.title != "owned"
    assert_no_errors(browser)
