"""The dashboard in a real headless Chromium: `foveate dashboard` serves it against the real job service of
tests/dashboard_harness.py. Every page is opened with a finished train job, a running tune job and a finished
tune job; each must render without an exception, a "None", protobuf text, a label cut short or Streamlit's
Deploy button, and is saved as a full-page screenshot under the directory the test prints
(FOVEATE_SCREENSHOTS, or a pytest temp dir). Then what the browser keeps: the probe picker's label after
the epoch changes, the job picker's after a cancel.

Needs Debian's chromium and chromium-driver: `make browser` installs them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from dashboard_harness import long_train_job

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
    """`condition(driver)` once it is truthy; AssertionError with the page's text after `timeout` seconds.
    An element that a rerun replaced while the condition read it is read again at the next poll."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.3,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}; page text:\n{_body(driver)[:2000]}") from None


def _body(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _settled(driver) -> bool:
    """Streamlit has finished the run: no 'Running...' status widget and no stale elements."""
    from selenium.webdriver.common.by import By

    return not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]') and not \
        driver.find_elements(By.CSS_SELECTOR, '[data-stale="true"]')


# What a page must never show: Python's None for a missing value, and the proto's own text for a spec or state.
NONE = re.compile(r"\bNone\b")
PROTO_TEXT = re.compile(r"JOB_KIND_|JOB_STATE_|int_value|intValue|float_value|string_value|list_value")
# The page's visible text without the job's log (the driver's own output may print None) and with what the
# text fields and pickers show (the value of their input, not text), every table's
# cells (a canvas grid, with an accessible twin in the DOM), and the widget labels and buttons cut short.
_TEXTS_JS = """
const log = document.querySelector('.st-key-log_tail');
const inputs = [...document.querySelectorAll('input[type="text"], textarea')].map(e => e.value);  // pickers' choices
const page = (log ? document.body.innerText.replace(log.innerText, "") : document.body.innerText)
  + "\\n" + inputs.join("\\n");
const grids = [...document.querySelectorAll('[data-testid="stDataFrame"] table')].map(t => t.textContent);
const cut = [...document.querySelectorAll(
    '[data-testid="stWidgetLabel"] p, [data-testid="stCheckbox"] p, button p, [data-testid="stMetricLabel"] p')]
  .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent);
return [page, grids.join("\\n"), cut];
"""


def _loaded_images(d, at_least: int = 1):
    from selenium.webdriver.common.by import By

    imgs = d.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')
    done = [i for i in imgs if d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)]
    return done if len(done) >= at_least and len(done) == len(imgs) else False


def _charts_drawn(d) -> bool:
    from selenium.webdriver.common.by import By

    charts = d.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')
    return bool(charts) and all(c.find_elements(By.CSS_SELECTOR, "canvas, svg") for c in charts)


def check_page(driver, shots: Path, name: str, ready, what: str) -> str:
    """Wait for `ready` and a settled run, save the whole page as `name`.png, and check what it shows;
    returns the page's visible text."""
    from selenium.webdriver.common.by import By

    _wait(driver, ready, what=what)
    _wait(driver, _settled, what=f"{name} to settle")
    text, grids, cut = driver.execute_script(_TEXTS_JS)
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), text[:2000]
    assert "This page failed" not in text and "Page not found" not in text, text[:2000]
    assert not NONE.search(text) and not NONE.search(grids), (name, NONE.findall(text + grids))
    assert not PROTO_TEXT.search(text + grids), (name, PROTO_TEXT.findall(text + grids))
    assert not cut, f"{name}: labels cut short: {cut}"
    assert "Deploy" not in text and not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAppDeployButton"]')
    # The whole page in one picture: the window as tall as the page's main column, then back.
    height = driver.execute_script('return document.querySelector(\'[data-testid="stMain"]\').scrollHeight')
    driver.set_window_size(1500, max(1200, height + 120))
    _wait(driver, _settled, what=f"{name} to settle at full height")
    driver.save_screenshot(str(shots / f"{name}.png"))
    driver.set_window_size(1500, 2400)
    return text


def _number_input(driver, label: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="stNumberInput"] input[aria-label="{label}"]')


def _click(driver, text: str) -> bool:
    """Click the visible button labelled `text`, found and clicked in one script (a live panel may redraw the
    page's other buttons meanwhile); False when there is none yet."""
    return driver.execute_script("""
        const b = [...document.querySelectorAll('button')].find(
            b => b.offsetParent !== null && b.innerText.trim() === arguments[0]);
        if (b) b.click();
        return Boolean(b);
    """, text)


def _row_cells(driver, job_id: str) -> dict[str, str]:
    """The jobs table's row of `job_id` as {column: cell text}, from the grid's accessible twin."""
    return driver.execute_script("""
        const grid = document.querySelector('[data-testid="stDataFrame"] table[role="grid"]');
        if (!grid) return {};
        const head = [...grid.querySelectorAll('thead th')].map(c => c.textContent.trim());
        const row = [...grid.querySelectorAll('tbody tr')].find(r => r.textContent.includes(arguments[0]));
        if (!row) return {};
        const cells = [...row.querySelectorAll('td')].map(c => c.textContent.trim());
        return Object.fromEntries(head.slice(head.length - cells.length).map((h, i) => [h, cells[i]]));
    """, job_id)


def test_a_job_submitted_in_the_browser_appears_at_once(dashboard_url, browser, shots, finished_jobs, running_tune):
    from selenium.webdriver.common.keys import Keys

    browser.get(dashboard_url + "/")
    # The table is a canvas grid; its accessible twin (role=grid) holds the cells as text.
    ids = (finished_jobs.ram, finished_jobs.racnn, finished_jobs.tune, running_tune)
    _wait(browser, lambda d: all(i in d.page_source for i in ids) and _settled(d), what="the jobs table")
    rows = browser.execute_script(  # read in one script: the live table is redrawn every 3 s
        'return document.querySelector(\'[data-testid="stDataFrame"] table[role="grid"]\').getAttribute("aria-rowcount")')
    assert int(rows) >= 5  # header + 4
    assert _row_cells(browser, running_tune)["state"] == "RUNNING"
    # The form starts from the latest RAM job's dataset; a job that runs until cancelled, in the driver.
    for label, value in (("Epochs", "500"), ("Workers", "0")):
        field = _number_input(browser, label)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(value, Keys.TAB)
    browser.execute_script("document.activeElement.blur()")  # no help tooltip left open by the focus
    # The service's verdict first: the spec as it would run, in YAML, wrapped rather than cut off at the right.
    _wait(browser, lambda d: _click(d, "Validate"), what="the Validate button")
    # The code block draws its text a moment after the success line: wait for the YAML itself.
    text = check_page(browser, shots, "jobs-verdict", lambda d: "The spec is valid" in _body(d)
                      and "epochs: 500" in _body(d), "the verdict")
    assert "kind: train" in text and "epochs: 500" in text and "num_workers: 0" in text
    assert browser.execute_script(
        'const pre = document.querySelector(\'[data-testid="stCode"] pre\');'
        "return pre.scrollWidth <= pre.clientWidth + 1")
    _wait(browser, lambda d: _click(d, "Submit"), what="the Submit button")
    _wait(browser, lambda d: re.search(r"Submitted (job-[0-9a-f]+)\.", _body(d)), what="the service's answer")
    job = re.search(r"Submitted (job-[0-9a-f]+)\.", _body(browser)).group(1)
    try:
        # In the table without a reload, its best metric a dash until it reports one.
        _wait(browser, lambda d: _row_cells(d, job), what=f"{job} in the jobs table")
        row = _row_cells(browser, job)
        # The canvas draws the missing best as "–" (AppTest checks the placeholder); its twin leaves it empty.
        assert row["state"] in ("QUEUED", "PENDING", "RUNNING") and row["best"] in ("", "–"), row
        check_page(browser, shots, "jobs", lambda d: _row_cells(d, job), "the jobs table")
    finally:
        finished_jobs.client.cancel(job)


def test_the_cluster_page_in_the_browser(dashboard_url, browser, shots, finished_jobs, running_tune):
    browser.get(dashboard_url + "/cluster")
    text = check_page(browser, shots, "cluster", lambda d: "CPUs in use" in _body(d) and running_tune in d.page_source,
                      "the cluster's metrics and the running tune job")
    assert "Running jobs" in text


JOBS = {"train": "ram", "tune-running": None, "tune": "tune"}  # None: the running tune job


def _job(finished_jobs, running_tune, which: str) -> str:
    return running_tune if JOBS[which] is None else getattr(finished_jobs, JOBS[which])


@pytest.mark.parametrize("which", list(JOBS))
def test_the_job_page_in_the_browser(dashboard_url, browser, shots, finished_jobs, running_tune, which):

    job = _job(finished_jobs, running_tune, which)
    browser.get(f"{dashboard_url}/job?job={job}")
    _wait(browser, lambda d: _charts_drawn(d) and "State history" in _body(d) and _settled(d), what="the curves")
    # The epoch table and the spec, open in the screenshot and checked with the page (opened by script: a
    # live panel may redraw the one inside it meanwhile).
    _wait(browser, lambda d: d.execute_script("""
        const shut = [...document.querySelectorAll('[data-testid="stExpander"] details:not([open]) > summary')];
        shut.forEach(s => s.click());
        return shut.length === 0 && document.querySelectorAll('[data-testid="stExpander"] details').length >= 2;
    """), what="the expanders to open")
    text = check_page(browser, shots, f"job-{which}", lambda d: "kind: " in _body(d), "the spec")
    assert job in text and "Log tail" in text
    if which != "train":
        assert (" · 3 trials · " if which == "tune-running" else " · 2 trials · ") in text


@pytest.mark.parametrize("which", list(JOBS))
def test_the_trials_page_in_the_browser(dashboard_url, browser, shots, finished_jobs, running_tune, which):
    job = _job(finished_jobs, running_tune, which)
    browser.get(f"{dashboard_url}/trials?job={job}")
    if which == "train":
        text = check_page(browser, shots, "trials-train", lambda d: "has no trials" in _body(d), "the page's answer")
        assert f"{job} is a train job: it has no trials" in text
        return
    text = check_page(browser, shots, f"trials-{which}", _charts_drawn, "the trials' charts")
    assert "Trials" in text and _selectbox_text(browser, "Job").startswith(f"{job} · ")


@pytest.mark.parametrize("which", list(JOBS))
def test_the_attention_page_in_the_browser(dashboard_url, browser, shots, finished_jobs, running_tune, which):
    job = _job(finished_jobs, running_tune, which)
    browser.get(f"{dashboard_url}/attention?job={job}")
    probes = 4 if which == "train" else 2
    text = check_page(browser, shots, f"attention-{which}", lambda d: _loaded_images(d, probes + 3),
                      "the attention images to load")
    assert "IoU" in text and "Drawn: one sampled glimpse path per image" in text and "glimpses 1–" in text


def test_attention_images_of_racnn_render_in_the_browser(dashboard_url, browser, shots, finished_jobs):
    job_id = finished_jobs.racnn
    browser.get(f"{dashboard_url}/attention?job={job_id}")
    check_page(browser, shots, "attention-racnn", lambda d: _loaded_images(d, 5), "the attention images to load")
    imgs = _wait(browser, lambda d: _loaded_images(d, 5), what="the attention images")
    sizes = [browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", i) for i in imgs]
    assert all(w >= 96 and h >= 96 for w, h in sizes[:4]), sizes  # the probe grid, drawn scaled up
    text = _body(browser)
    assert "IoU" in text and job_id in browser.page_source and "scale 2 · predicts" in text


def _selectbox_text(driver, label: str) -> str:
    """The choice a selectbox shows (its combobox input's value), found by its label; read in one script, so
    that a rerun replacing the widget meanwhile cannot leave a stale element in hand."""
    return driver.execute_script("""
        const box = [...document.querySelectorAll('[data-testid="stSelectbox"]')].find(
            b => b.querySelector('[data-testid="stWidgetLabel"]')?.textContent.trim() === arguments[0]);
        return box ? box.querySelector('input[role="combobox"]').value : "";
    """, label)


def test_the_probe_label_follows_the_epoch_in_the_browser(dashboard_url, browser, shots, finished_jobs):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from dashboard import drawing

    job = finished_jobs.ram
    first = {e: drawing.caption(drawing.record_from_row(finished_jobs.client.attention(job, epoch=e).to_pylist()[0]))
             for e in (0, 1)}
    browser.get(f"{dashboard_url}/attention?job={job}")
    _wait(browser, lambda d: _selectbox_text(d, "Probe image") == first[1], what=f"the probe picker at {first[1]!r}")
    _wait(browser, _settled, what="the page to settle")
    slider = browser.find_element(By.CSS_SELECTOR, '[data-testid="stSlider"] input[type="range"][aria-label="Epoch"]')
    browser.execute_script("arguments[0].focus()", slider)  # the range input is visually hidden: keys, not clicks
    ActionChains(browser).send_keys(Keys.HOME).perform()  # the first recorded epoch
    _wait(browser, lambda d: "epoch 0 · 4 probe images" in _body(d) and _settled(d), what="epoch 0's probes")
    assert _selectbox_text(browser, "Probe image") == first[0]
    browser.save_screenshot(str(shots / "attention-train-epoch0.png"))


def test_the_job_picker_follows_a_cancel_in_the_browser(dashboard_url, browser, shots, finished_jobs):
    job = long_train_job(finished_jobs, owner="eve")
    browser.get(f"{dashboard_url}/attention?job={job}")
    running = f"{job} · ram-cluttered60 · train · RUNNING"
    _wait(browser, lambda d: _selectbox_text(d, "Job") == running, what="the picker to show the job RUNNING")
    finished_jobs.client.cancel(job)
    # The page's live panel sees the state change and reruns the page; no click, no reload.
    cancelled = f"{job} · ram-cluttered60 · train · CANCELLED"
    _wait(browser, lambda d: _selectbox_text(d, "Job") == cancelled, timeout=90, what="the picker to show CANCELLED")
    browser.save_screenshot(str(shots / "attention-after-cancel.png"))
