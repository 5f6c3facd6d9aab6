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
    at = app_test("Home.py")
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


def _expire_soon(monkeypatch):
    """Workshop mode with a 1 s limit, and every RunTimer started 5 s in the past: the first check fires."""
    monkeypatch.setenv("ZSS_WORKSHOP_MODE", "1")
    monkeypatch.setenv("ZSS_WORKSHOP_MAX_RUN_SECONDS", "1")
    real_init = workshop.RunTimer.__init__

    def init(self, what="This run"):
        real_init(self, what)
        self.started -= 5

    monkeypatch.setattr(workshop.RunTimer, "__init__", init)


def test_time_limit_stops_prompt_runs_in_the_backend(monkeypatch, causal_lm):
    """The prompt page and `python -m llm_backend prompt` both run TemplateRun: the limit lives there."""
    from llm_backend.data.files import load_sample
    from llm_backend.prompts.runner import TemplateRun
    from llm_backend.prompts.templates import PromptTemplate

    df = load_sample("Product reviews").df.head(6)
    tpl = PromptTemplate("t", "Review: {{ text }}\nSentiment?", {"positive": ["great"], "negative": ["bad"],
                                                                  "neutral": ["okay"]})
    _expire_soon(monkeypatch)
    run = TemplateRun(tpl, df, "text", "sentiment", lm=causal_lm)
    with pytest.raises(workshop.WorkshopLimitError, match="prompt run was stopped after 1 s"):
        run.run_all()
    assert run.done == 0


def test_time_limit_stops_map_embedding_in_the_backend(monkeypatch, embedder):
    from llm_backend.maps.embedding_map import embed_positions

    import numpy as np

    texts = [f"text number {i}" for i in range(40)]
    _expire_soon(monkeypatch)
    with pytest.raises(workshop.WorkshopLimitError, match="Computing the map was stopped"):
        embed_positions(embedder, texts, np.arange(len(texts)))


def test_time_limit_stops_training_gracefully(monkeypatch, embedder):
    """Training polls should_stop between steps: at the limit it stops, keeps its weights and says why."""
    from llm_backend.training.trainer import TrainConfig, train

    texts = [f"refund my order {i}" for i in range(6)] + [f"where is my parcel {i}" for i in range(6)]
    labels = ["refund"] * 6 + ["shipping"] * 6
    _expire_soon(monkeypatch)
    result = train(texts, labels, TrainConfig(method="setfit", epochs=1), embedder)
    assert result.stopped and any("training run was stopped after 1 s" in n for n in result.notes), result.notes


def test_streamlit_upload_cap_is_the_documented_limit():
    """Streamlit refuses bigger uploads in the browser, before buffering them, at the same size the app documents."""
    import tomllib

    from llm_backend.core.config import Settings
    from tests.conftest import ROOT

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == Settings().max_upload_mb == 200
    assert "--server.maxUploadSize" in (ROOT / "scripts" / "run_app.sh").read_text()
