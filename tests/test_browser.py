"""The whole app in a real headless Chromium: start `streamlit run`, load a sample, visit every page, screenshot.

Uses Debian's chromium (never `playwright install`). Screenshots land in test-artifacts/ for a person to look at.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    env = dict(os.environ, ZSS_DATA_DIR=str(tmp_path_factory.mktemp("browser_data")), PYTHONUNBUFFERED="1")
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            break
    else:
        proc.kill()
        pytest.fail("streamlit did not start in 120 s")
    if proc.poll() is not None:
        log.seek(0)
        pytest.fail(f"streamlit exited: {log.read()[-2000:]}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.seek(0)
    server_log = log.read()
    assert "Traceback" not in server_log, server_log[-3000:]


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(180_000)
        yield pg
        browser.close()


def _wait_idle(pg) -> None:
    """Streamlit shows a 'Running…' status while a script runs; wait until it is gone."""
    pg.wait_for_timeout(500)
    pg.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=240_000)


def test_home_loads_sample_dataset(server, page):
    page.goto(server)
    page.get_by_text("is the active dataset").wait_for()
    # Choose another bundled sample through the real select box.
    # (the sidebar holds other select boxes, some inside collapsed expanders: pick this one by its label)
    page.get_by_test_id("stSelectbox").filter(has_text="Sample dataset").first.click()
    page.get_by_role("option", name="Support tickets").click()
    page.get_by_text("Support tickets is the active dataset").wait_for()
    _wait_idle(page)
    assert page.get_by_text("Gold-label distribution").is_visible()
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)
