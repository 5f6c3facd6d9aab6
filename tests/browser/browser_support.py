"""What both browser test files need: a live `streamlit run Home.py` on a free port, and Debian's Chromium.

One place for the start-up wait, the teardown and the "no traceback in the server log" check, so the hostile-input
browser test and the page tour start their servers the same way.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BROWSER_MARKS = [pytest.mark.browser,
                 pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(workdir: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Iterator[str]:
    """Serve the app; yields its URL; on exit stops it and fails if the server log holds a traceback."""
    port = free_port()
    full_env = dict(os.environ, ZSS_DATA_DIR=str(workdir / "data"), PYTHONUNBUFFERED="1", **(env or {}))
    log = open(workdir / "streamlit.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", *args],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        log.seek(0)
        pytest.fail(f"streamlit did not start: {log.read()[-2000:]}")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    log.seek(0)
    server_log = log.read()
    assert "Traceback" not in server_log, server_log[-3000:]


@contextmanager
def browser_page(timeout_ms: int) -> Iterator[object]:
    """A Playwright page in Debian's Chromium (never `playwright install`), 1400 x 1000."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        pg = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        pg.set_default_timeout(timeout_ms)
        try:
            yield pg
        finally:
            browser.close()
