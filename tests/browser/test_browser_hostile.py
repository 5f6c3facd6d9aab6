"""The bad-input corpus through a live server in a real browser: hostile uploads, templates, label files, imports.

A separate `streamlit run` (so the friendly browser test keeps its own session), driven by Debian's Chromium through
Playwright (never `playwright install`). Every input must end in a message on the page — never a traceback — and the
server must still answer afterwards. Screenshots land in test-artifacts/hostile_*.png for a person to look at.
"""
from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser.browser_support import (
    BROWSER_MARKS,
    browser_page,
    streamlit_server,
)
from tests.conftest import ROOT
from tests.browser.test_browser import _open_page, _shot, _wait_idle

BAD = ROOT / "tests" / "bad_inputs"
DATA_EXT = {".csv", ".tsv", ".txt", ".xlsx", ".xls", ".json", ".jsonl", ".parquet"}
TEMPLATE_TIMEOUT_S = 2.0

#: Templates typed into the live preview (issue 13, item 1), each with the message it must end in (in an order where
#: consecutive messages differ, so a stale message from the previous one cannot pass).
HOSTILE_TEMPLATES = {
    "nested loops": ("{% set big=[1]*100000 %}{% for a in big %}{% for b in big %}{% endfor %}{% endfor %}{{ text }}",
                     "loops ran more than"),
    "repeat": ("{{ (text ~ ' ')*1000000 }}", "repeated with \\* would be"),
    "loop steps": ("{% set big=[1]*9000 %}{% for a in big %}{% for b in big %}{% endfor %}{% endfor %}{{ text }}",
                   "loops ran more than"),
    "center": ("{{ text|center(1000000000) }}", "center\\(1,000,000,000\\)"),
    "doubling": ("{% set s = text %}" + "{% set s = s ~ s %}" * 40 + "{{ s|length }}", "memory|took longer"),
    "escape": ("{{ ''.__class__.__mro__[1].__subclasses__() }}{{ text }}", "not allowed"),
}

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    env = {"ZSS_TEMPLATE_TIMEOUT_S": str(TEMPLATE_TIMEOUT_S), "ZSS_MAX_UPLOAD_MB": "5"}
    with streamlit_server(tmp_path_factory.mktemp("hostile"), env, ("--server.maxUploadSize", "5")) as url:
        yield url


@pytest.fixture(scope="module")
def hostile_page(hostile_server):
    with browser_page(120_000) as pg:
        yield pg


def _alerts(pg) -> str:
    return " | ".join(a.inner_text() for a in pg.locator('[data-testid="stAlert"]').all())


def _settle(pg) -> None:
    """Wait for the rerun to finish and the page to stop changing (short reruns never show the status widget)."""
    _wait_idle(pg)
    before = _alerts(pg)
    for _ in range(30):
        pg.wait_for_timeout(800)
        _wait_idle(pg)
        now = _alerts(pg)
        if now == before:
            return
        before = now


def _clean(pg, what: str) -> str:
    """No exception box and no traceback text on screen; returns the page's alert texts (errors, warnings)."""
    assert pg.locator('[data-testid="stException"]').count() == 0, (what, pg.locator(
        '[data-testid="stException"]').first.inner_text()[:1500])
    body = pg.locator("body").inner_text()
    assert "Traceback" not in body and 'File "' not in body, (what, body[-1500:])
    return _alerts(pg)


def _upload(pg, uploader_label: str, path: Path) -> None:
    """Upload through the real widget and wait until the rerun it starts has finished."""
    box = pg.get_by_test_id("stFileUploader").filter(has_text=uploader_label).first
    box.locator('input[type="file"]').set_input_files(str(path))
    # the file's chip shows its name (long names are cut in the middle: match its start and its end)
    try:
        pg.get_by_test_id("stFileUploader").filter(has_text=uploader_label).filter(
            has_text=path.name[:5]).filter(has_text=path.name[-7:]).first.wait_for(timeout=30_000)
    except Exception:
        _shot(pg, f"hostile_failed_{path.stem}.png", height=1400)
        raise
    pg.wait_for_timeout(700)  # the upload's rerun starts after the file is shown
    _settle(pg)


def test_hostile_uploads_on_home(hostile_server, hostile_page):
    pg = hostile_page
    pg.goto(hostile_server)
    pg.get_by_text("is the active dataset").wait_for()
    pg.get_by_text("Upload a file").click()
    _wait_idle(pg)
    files = sorted(p for p in BAD.iterdir() if p.suffix.lower() in DATA_EXT)
    assert len(files) >= 30
    messages = {}
    for path in files:
        _upload(pg, "CSV, TSV, XLSX", path)
        messages[path.name] = _clean(pg, path.name)
        if path.name == "png_renamed.csv":
            _shot(pg, "hostile_upload_png.png", height=1400)
            assert "PNG image" in messages[path.name], messages[path.name]
        if path.name == "gzip_renamed.csv":
            assert "gzip-compressed" in messages[path.name], messages[path.name]
    silent = [name for name, text in messages.items() if not text and name not in {
        "numbers_as_text.csv", "empty_texts.csv", "nul_bytes.csv", "utf16_no_bom.csv"}]
    assert not silent, f"no message for {silent}"
    assert urllib.request.urlopen(f"{hostile_server}/_stcore/health", timeout=5).status == 200


def test_hostile_templates_in_live_preview(hostile_server, hostile_page):
    pg = hostile_page
    pg.goto(hostile_server)  # a fresh session: the bundled sample is the active dataset
    pg.get_by_text("is the active dataset").wait_for()
    _wait_idle(pg)
    _open_page(pg, "Prompt templates", "Prompt templates")
    pg.get_by_text("tokens for").first.wait_for(timeout=300_000)  # the preview's LM is loaded (first use)
    box = pg.get_by_role("textbox", name="Template", exact=True)
    for name, (source, expect) in HOSTILE_TEMPLATES.items():
        box.fill(source)
        start = time.monotonic()
        box.press("Control+Enter")
        try:
            pg.get_by_test_id("stAlert").filter(has_text=re.compile(expect)).first.wait_for(timeout=90_000)
        except Exception:
            _shot(pg, f"hostile_failed_template_{name.replace(' ', '_')}.png", height=2000)
            raise
        took = time.monotonic() - start
        _settle(pg)
        _clean(pg, name)
        # the render is killed at its time limit; generous slack for the page rerun on a 2-core machine
        assert took < TEMPLATE_TIMEOUT_S + 30, (name, took)
        if name == "nested loops":
            _shot(pg, "hostile_template.png", height=1800)
        box.fill("{{ text }}")  # a good template in between: the next message must be new
        box.press("Control+Enter")
        pg.get_by_test_id("stAlert").filter(has_text=re.compile(expect)).first.wait_for(state="detached")
    pg.get_by_text("Template library").first.click()  # its uploader: a YAML alias bomb is refused fast
    _upload(pg, "Upload a template", BAD / "yaml_alias_bomb_template.yaml")
    assert "aliases" in _clean(pg, "template alias bomb")


def test_hostile_label_files_and_imports(hostile_server, hostile_page, tmp_path):
    pg = hostile_page
    pg.goto(hostile_server)
    pg.get_by_text("is the active dataset").wait_for()
    _wait_idle(pg)
    _open_page(pg, "Zero-shot labels", "Zero-shot label testing")
    pg.get_by_role("tab", name="Load / save").click()
    for name, expect in (("yaml_alias_bomb_labels.yaml", "aliases"), ("deep_nesting_labels.yaml", "nested"),
                         ("zero_width_labels.yaml", "Duplicate labels")):
        _upload(pg, "Load a label set", BAD / name)
        pg.get_by_role("button", name="Load this file").click()
        _settle(pg)
        assert expect in _clean(pg, name)
    _open_page(pg, "Experiments", "Experiments")
    pg.get_by_role("tab", name="Import / export").click()
    project = {"format": "zero-shot-studio/project", "version": 1, "project": {"name": "x" * 10_000}}
    cases = {  # file -> (content, the message it must end in)
        "deep.json": (b'{"format": "zero-shot-studio/project", "version": 1, "project": {}, "runs": '
                      + b"[" * 5000 + b"]" * 5000 + b"}", "nested"),
        "types.json": (json.dumps({**project, "project": {"name": "p"}, "runs": [{"id": "one", "kind": 3}]}).encode(),
                       "runs\\[0\\].id must be a whole number"),
        "long_name.json": (json.dumps(project).encode(), "characters long; the limit is 200"),
        "body.json": (json.dumps({**project, "project": {"name": "p"}, "templates": [
            {"id": 1, "name": "t", "version": 1, "body": "not a mapping"}]}).encode(), "must be a template object"),
    }
    for name, (payload, expect) in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        _upload(pg, "Project JSON exported", path)
        pg.get_by_role("button", name="Import", exact=True).click()
        pg.get_by_test_id("stAlert").filter(has_text=re.compile(expect)).first.wait_for(timeout=60_000)
        _settle(pg)
        _clean(pg, name)
    _shot(pg, "hostile_import.png", height=1400)
    # The server still answers and the app still works after all of it.
    assert urllib.request.urlopen(f"{hostile_server}/_stcore/health", timeout=5).status == 200
    pg.goto(hostile_server)
    pg.get_by_text("is the active dataset").wait_for()
    _clean(pg, "home after the corpus")
