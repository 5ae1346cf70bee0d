"""The web app in a real browser: `orgsim app` on a free local port, driven by headless Chromium (Debian's
``chromium``) through Playwright. Screenshots go to results/test-artifacts/ (not committed).

Without Chromium or Playwright these tests skip, with the reason; CI sets ORGSIM_REQUIRE_BROWSER=1 (.ci/run), and
then they fail instead, so that a machine without a browser can never pass them silently.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sim.app.paths import PROJECT

CHROMIUM = Path(os.environ.get("ORGSIM_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = PROJECT / "results" / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 30_000


def _browser_missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _browser_missing()
    if missing:
        if os.environ.get("ORGSIM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (ORGSIM_REQUIRE_BROWSER=1) but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app(browser, tmp_path_factory):
    """The app's address; its server runs `orgsim app` as a user would, with its jobs in a temporary folder."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    jobs = tmp_path_factory.mktemp("jobs")
    log = open(jobs / "server.log", "w+")
    server = subprocess.Popen([sys.executable, "-m", "sim.cli", "app", "--port", str(port), "--jobs", str(jobs)],
                              stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert server.poll() is None and time.time() < deadline, (jobs / "server.log").read_text()
            time.sleep(0.3)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield url
    server.terminate()
    server.wait(10)
    log.seek(0)
    # every file the pages need comes from this machine (solara-assets): nothing was fetched from a CDN
    assert "Could not load URL" not in log.read()
    shutil.rmtree(jobs, ignore_errors=True)


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    page.close()


def shoot(page, name: str) -> None:
    page.wait_for_timeout(700)         # let the last redraw settle (Solara dims the page while it computes)
    page.screenshot(path=str(ARTIFACTS / f"app_{name}.png"), full_page=True)


def commit(field) -> None:
    """Type into a Vuetify field and leave it, as a user does (the value is taken when the field loses focus)."""
    field.press("Tab")


def test_every_page_loads_and_the_live_model_steps(app, page):
    for path, text in (("", "Run the what-if"), ("readiness", "Run the readiness report"),
                       ("results", "Open a results folder")):
        page.goto(app + path)
        page.get_by_text(text).first.wait_for(timeout=WAIT_MS)
        shoot(page, path or "whatif")
    page.goto(app + "live")
    page.get_by_text("Time: 0.0").first.wait_for(timeout=WAIT_MS)     # SolaraViz's clock of the model
    page.get_by_role("button", name="Step").click()
    page.get_by_text(re.compile(r"Time: [1-9]")).first.wait_for(timeout=WAIT_MS)   # it stepped
    page.locator(".reporter-table").first.wait_for(timeout=WAIT_MS)   # the weekly reporters, shown after the step
    shoot(page, "live")


def test_a_tiny_what_if_runs_as_a_job_shows_its_charts_and_survives_a_reload(app, page):
    page.goto(app)
    page.get_by_text("Run the what-if").wait_for(timeout=WAIT_MS)
    page.get_by_label("reflective routines").check(force=True)
    for label, value in (("parameter sets", "2"), ("replicates", "1"), ("scale", "0.1"),
                         ("stop at (YYYY-MM-DD; blank: the run's end)", "2016-12-31")):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        commit(field)
    page.get_by_text("4 runs at scale 0.1").wait_for(timeout=WAIT_MS)
    page.get_by_role("button", name="Run the what-if").click()
    page.locator(".job-done").wait_for(timeout=90_000)
    chart = page.locator(".figure-compare_series")
    chart.wait_for(timeout=WAIT_MS)
    assert page.locator(".figure-cqc_shares").is_visible() and page.locator(".figure-contributions").is_visible()
    assert "4 of 4 runs finished" in page.locator(".job-progress").inner_text()
    shoot(page, "whatif_result")
    page.reload()                                      # the job is read back from disk
    page.locator(".figure-compare_series").wait_for(timeout=WAIT_MS)
    assert "Cultural work changed" in page.locator(".job-panel").inner_text()


def test_a_bad_readiness_answer_shows_the_command_lines_message_under_its_question(app, page):
    page.goto(app + "readiness")
    staff = page.get_by_label("How many staff work there (headcount)?")
    staff.wait_for(timeout=WAIT_MS)
    staff.fill("-5")
    commit(staff)
    page.get_by_role("button", name="Run the readiness report").click()
    error = page.locator(".error-staff")
    error.wait_for(timeout=WAIT_MS)
    assert "question 'staff' (How many staff work there (headcount)?): Input should be greater than or equal to " \
           "200; allowed: a whole number, 200-100000" in error.inner_text()
    box, question = error.bounding_box(), staff.bounding_box()
    assert 0 < box["y"] - question["y"] < 150                        # right under the question it names
    error.scroll_into_view_if_needed()
    shoot(page, "readiness_error")


def test_results_open_a_report_folder_and_refuse_a_folder_outside(app, page):
    page.goto(app + "results")
    field = page.get_by_label("or type a folder (e.g. calibration/report_main)")
    field.wait_for(timeout=WAIT_MS)
    field.fill("../sim")
    commit(field)
    page.locator(".error-folder").wait_for(timeout=WAIT_MS)
    assert "only folders under results/, calibration/, docs/" in page.locator(".error-folder").inner_text()
    field.fill("calibration/report_main")
    commit(field)
    page.locator(".figure-trajectories").wait_for(timeout=WAIT_MS)
    page.get_by_text("ensemble_summary.json").first.wait_for(timeout=WAIT_MS)
    shoot(page, "results")
