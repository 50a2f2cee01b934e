"""The dashboard in a real headless Chromium: `foveate dashboard` serves it against the real job service of
tests/dashboard_harness.py; the jobs table and attention drawings must render. Screenshots are saved
under the directory the test prints (FOVEATE_SCREENSHOTS, or a pytest temp dir).

Needs Debian's chromium and chromium-driver: `make browser` installs them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytest_plugins = ["dashboard_harness"]
pytestmark = [pytest.mark.browser, pytest.mark.ray, pytest.mark.slow]

CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if os.path.exists(p)), None)
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without these a headless Chromium in a sandboxed container waits on the network or the GPU.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1500,2400"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard_url(finished_jobs, tmp_path_factory):
    """`foveate dashboard` on a free port, pointed at the fixture's service, until the module ends."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("dashboard") / "streamlit.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "dashboard", "--server", finished_jobs.address, "--port", str(port)],
        env={**os.environ, "FOVEATE_TOKEN": finished_jobs.token}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log_path.read_text()
        with contextlib.suppress(OSError):
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        assert time.monotonic() < deadline, "the dashboard did not start:\n" + log_path.read_text()
        time.sleep(0.3)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)  # its own session: streamlit and nothing else
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or not os.path.exists(CHROMEDRIVER):
        pytest.fail("chromium and chromium-driver are not installed: run `make browser`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory, request) -> Path:
    out = Path(os.environ.get("FOVEATE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\ndashboard screenshots: {out}")
    return out


def _wait(driver, condition, timeout: float = 60, what: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.3).until(condition)
    except Exception:
        raise AssertionError(f"timed out waiting for {what}; page text:\n{_body(driver)[:2000]}") from None


def _body(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _settled(driver) -> bool:
    """Streamlit has finished the run: no 'Running...' status widget and no stale elements."""
    from selenium.webdriver.common.by import By

    return not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]') and not \
        driver.find_elements(By.CSS_SELECTOR, '[data-stale="true"]')


def test_jobs_table_renders_every_job_in_the_browser(dashboard_url, browser, shots, finished_jobs):
    from selenium.webdriver.common.by import By

    browser.get(dashboard_url + "/")
    # The table is a canvas grid; its accessible twin (role=grid) holds the cells as text.
    ids = (finished_jobs.ram, finished_jobs.racnn, finished_jobs.tune)
    _wait(browser, lambda d: all(i in d.page_source for i in ids), what="the job ids in the jobs table")
    grid = browser.find_element(By.CSS_SELECTOR, '[data-testid="stDataFrame"] table[role="grid"]')
    assert grid.get_attribute("aria-rowcount") and int(grid.get_attribute("aria-rowcount")) >= 4  # header + 3
    assert "SUCCEEDED" in browser.page_source and "Page not found" not in _body(browser)
    _wait(browser, _settled, what="the page to settle")
    browser.save_screenshot(str(shots / "jobs.png"))
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


@pytest.mark.parametrize("which, kind", [("ram", "glimpse"), ("racnn", "scale")])
def test_attention_images_render_in_the_browser(dashboard_url, browser, shots, finished_jobs, which, kind):
    from selenium.webdriver.common.by import By

    job_id = getattr(finished_jobs, which)
    browser.get(f"{dashboard_url}/attention?job={job_id}")

    def loaded_images(d):
        imgs = d.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')
        done = [i for i in imgs if d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)]
        return done if len(done) >= 5 and len(done) == len(imgs) else False

    imgs = _wait(browser, loaded_images, what="the attention images to load")
    _wait(browser, _settled, what="the page to settle")
    sizes = [browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", i) for i in imgs]
    assert all(w >= 96 and h >= 96 for w, h in sizes[:4]), sizes  # the probe grid, drawn scaled up
    text = _body(browser)
    assert "IoU" in text and job_id in browser.page_source, text
    assert ("glimpses 1–" in text) if kind == "glimpse" else ("scale 2 · predicts" in text)
    browser.save_screenshot(str(shots / f"attention-{which}.png"))
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
