"""Workshop mode: limits apply only when enabled, and their messages say what to change."""
from __future__ import annotations

import pytest

from llm_backend.core import workshop
from llm_backend.core.errors import DataError, LabelError, UserError
from llm_backend.data.files import SAMPLES_DIR


def test_no_limits_by_default():
    lim = workshop.limits()
    assert not lim.enabled and lim.describe() == "No workshop limits."
    workshop.check_rows(10**7)
    workshop.check_labels(10**4)
    workshop.check_writable_sample(SAMPLES_DIR / "support_tickets.csv")
    assert workshop.row_cap(50_000) == 50_000
    workshop.RunTimer().check()


def test_limits_when_enabled(monkeypatch):
    monkeypatch.setenv("ZSS_WORKSHOP_MODE", "1")
    lim = workshop.limits()
    assert (lim.enabled, lim.max_rows, lim.max_labels, lim.samples_read_only) == (True, 2000, 50, True)
    workshop.check_rows(2000)
    with pytest.raises(DataError, match="at most 2,000 rows.*has 2,001"):
        workshop.check_rows(2001)
    with pytest.raises(LabelError, match="at most 50 labels.*has 51"):
        workshop.check_labels(51)
    monkeypatch.setenv("ZSS_WORKSHOP_MAX_ROWS", "100")
    monkeypatch.setenv("ZSS_WORKSHOP_MAX_LABELS", "junk")  # a typo falls back to the default
    assert workshop.limits().max_rows == 100 and workshop.limits().max_labels == 50
    assert workshop.row_cap(5000) == 100
    with pytest.raises(UserError, match="read-only"):
        workshop.check_writable_sample(SAMPLES_DIR / "support_tickets.csv")
    assert "100 rows" in workshop.limits().describe()


def test_run_timer(monkeypatch):
    monkeypatch.setenv("ZSS_WORKSHOP_MODE", "1")
    monkeypatch.setenv("ZSS_WORKSHOP_MAX_RUN_SECONDS", "1")
    timer = workshop.RunTimer("Scoring")
    timer.check()
    timer.started -= 5
    with pytest.raises(workshop.WorkshopLimitError, match="Scoring was stopped after 1 s"):
        timer.check()


def test_home_page_caps_rows_in_workshop_mode(monkeypatch):
    """A participant loading a big file gets a seeded sample within the limit and is told why."""
    from tests.conftest import app_test
    from ui import state

    monkeypatch.setenv("ZSS_WORKSHOP_MODE", "1")
    monkeypatch.setenv("ZSS_WORKSHOP_MAX_ROWS", "100")
    at = app_test("app.py")
    at.run()
    assert not at.exception
    assert len(at.session_state[state.DATASET].df) == 100
    assert at.number_input(key="home_n_rows").max == 100
    assert any("Workshop mode" in i.value and "at most 100" in i.value for i in at.info)


def test_zero_shot_page_refuses_too_many_labels_in_workshop_mode(monkeypatch):
    from llm_backend.data.files import load_sample
    from tests.conftest import app_test
    from ui import state

    monkeypatch.setenv("ZSS_WORKSHOP_MODE", "1")
    monkeypatch.setenv("ZSS_WORKSHOP_MAX_LABELS", "3")
    df = load_sample("News headlines").df.head(20).reset_index(drop=True)
    at = app_test("pages/1_Zero-shot_labels.py")
    at.session_state[state.DATASET] = state.ActiveDataset(df, "News headlines", "text", "topic", len(df))
    at.run()
    at.text_area(key="zs_paste").input("politics\nsports\nbusiness\nscience").run()
    at.button(key="zs_paste_apply").click().run()
    at.button(key="zs_run").click().run()
    assert not at.exception
    assert any("at most 3 labels" in e.value for e in at.error), [e.value for e in at.error]
    assert state.PREDICTIONS not in at.session_state
