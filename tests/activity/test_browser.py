"""The page in a real browser: Debian's chromium, headless, driven by Selenium through
/usr/bin/chromedriver (never a downloaded driver). Loads the page, waits for a look to
appear without a reload, searches, unlocks, starts and cancels a watch; checks the DOM
text and that the console log stays empty; keeps screenshots under the test's tmp dir."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from pipeline.app.process import App
from tests.support.model_server import ScriptedModelServer
from tests.support.web_app import HTML_REASONING, TOKEN, answer

ROOT = Path(__file__).resolve().parents[2]
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    assert CHROMEDRIVER.exists() and CHROMIUM.exists(), (
        "install Debian's chromium and chromium-driver: bash scripts/install-system-deps"
    )
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync", "--window-size=1280,1000",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _console(driver: webdriver.Chrome) -> list[dict[str, object]]:
    return list(driver.get_log("browser"))


def test_the_page_in_chromium(
    browser: webdriver.Chrome,
    app_factory: Callable[..., App],
    model_server: ScriptedModelServer,
    tmp_path: Path,
) -> None:
    model_server.default = answer(next_run_in=2)
    app = app_factory(model_server)
    assert app.services is not None and app.services.web is not None
    url = f"http://127.0.0.1:{app.services.web.port}/"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)

    browser.get(url)
    assert browser.find_element(By.CSS_SELECTOR, '[data-camera="walkway"] h3').text == "walkway"
    # a look appears without a reload (the page polls /api/state)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline .kind-look .text"))
    look_text = browser.find_element(By.CSS_SELECTOR, "#timeline .kind-look .text").text
    assert look_text == HTML_REASONING  # the HTML in the reasoning is text in the DOM
    assert not browser.find_elements(By.CSS_SELECTOR, "#timeline b")  # and no element
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '[data-watch="heron"] .reasoning').text)
    row = browser.find_element(By.CSS_SELECTOR, '[data-watch="heron"]')
    assert row.find_element(By.CSS_SELECTOR, ".status").text == "running"
    assert row.find_element(By.CSS_SELECTOR, ".reasoning").text == HTML_REASONING
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline .kind-look img"))
    browser.save_screenshot(str(shots / "page.png"))

    # search the timeline by a word of the reasoning
    box = browser.find_element(By.ID, "search")
    box.send_keys("heron")
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait.until(lambda d: "q=heron" in d.current_url)
    hits = browser.find_elements(By.CSS_SELECTOR, "#timeline .entry .text")
    assert hits and all("heron" in h.text for h in hits)
    browser.save_screenshot(str(shots / "search.png"))

    # unlock, start a watch, see it, cancel it
    browser.get(url)
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#unlock-form button").click()
    wait.until(lambda d: d.find_elements(By.ID, "start-form"))
    browser.find_element(By.ID, "watch-name").send_keys("gate")
    Select(browser.find_element(By.ID, "watch-camera")).select_by_value("walkway")
    browser.find_element(By.ID, "watch-condition").send_keys("the gate is open")
    browser.find_element(By.ID, "start-watch").click()
    wait.until(lambda d: d.find_elements(By.ID, "flash"))
    assert browser.find_element(By.ID, "flash").text == "started gate"
    gate = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '[data-watch="gate"]'))
    assert gate.find_element(By.CSS_SELECTOR, ".name").text == "gate"
    assert "gate" in app.pipeline.watches
    browser.save_screenshot(str(shots / "started.png"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-watch="gate"] button'))
    browser.find_element(By.CSS_SELECTOR, '[data-watch="gate"] button').click()
    wait.until(lambda d: "cancelled gate" in d.find_element(By.ID, "flash").text)
    assert "gate" not in app.pipeline.watches
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-watch="gate"]')  # gone for good
    browser.save_screenshot(str(shots / "cancelled.png"))

    log = _console(browser)
    assert log == [], log
    assert all((shots / n).stat().st_size > 1000 for n in ("page.png", "search.png"))
    docs = ROOT / "docs" / "web-page.png"
    if docs.parent.is_dir() and not docs.exists():
        shutil.copyfile(shots / "page.png", docs)  # the README's picture, made once
