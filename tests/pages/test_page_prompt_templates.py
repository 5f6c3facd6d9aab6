"""AppTest of the Prompt templates page on a 6-row slice of the bundled product reviews."""
from __future__ import annotations

import pandas as pd
from streamlit.testing.v1 import AppTest

from llm_backend.data.files import load_sample
from tests.conftest import APP_TIMEOUT, ROOT
from ui import state
from ui.state import ActiveDataset

PAGE = str(ROOT / "pages" / "2_Prompt_templates.py")


def _app() -> AppTest:
    df = load_sample("Product reviews").df
    df = pd.concat([g.head(2) for _, g in df.groupby("sentiment")]).reset_index(drop=True)
    at = AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT)
    at.session_state[state.DATASET] = ActiveDataset(df, "reviews", "text", "sentiment", len(df))
    return at


def test_preview_then_unknown_placeholder_message():
    at = _app().run()
    assert not at.exception
    first_text = at.session_state[state.DATASET].df.loc[0, "text"]
    assert any(first_text in c.value for c in at.code)  # the live preview shows row 0 rendered
    assert any("tokens for SmolLM2" in c.value for c in at.caption)
    at.text_area(key="pt_template").input("Review: {{ text }} {{ stars_count }}").run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "Unknown placeholder" in errors and "stars_count" in errors


def test_run_two_templates_and_compare():
    at = _app().run()
    at.number_input(key="pt_rows").set_value(6).run()
    at.button(key="pt_run").click().run()
    assert not at.exception, at.exception
    assert "My template" in at.session_state["pt_results"]
    assert any(m.label == "Accuracy" for m in at.metric)
    at.text_input(key="pt_name").input("Second").run()
    at.text_area(key="pt_template").input("{{ text }}\nIs this positive, negative or neutral?").run()
    at.button(key="pt_run").click().run()
    assert not at.exception, at.exception
    results = at.session_state["pt_results"]
    assert set(results) == {"My template", "Second"} and all(len(r.rows) == 6 for r in results.values())
    assert any("Compare templates" in h.value for h in at.subheader)
    summary = at.dataframe[-3].value if len(at.dataframe) >= 3 else None
    assert summary is not None and set(summary["template"]) == {"My template", "Second"}
    assert len(at.code) >= 3  # preview + the two prompts side by side


def test_finished_runs_are_saved_with_their_template(_isolated_data_dir):
    from llm_backend.store.database import Store

    at = _app().run()
    at.number_input(key="pt_rows").set_value(6).run()
    at.button(key="pt_run").click().run()
    assert not at.exception, at.exception
    runs = Store().list_runs()
    assert len(runs) == 1
    run = runs[0]
    assert (run.kind, run.method, run.status) == ("prompt", "score", "done")
    assert run.settings["n_rows"] == 6 and "calibration" in run.settings
    shown = float(next(m.value for m in at.metric if m.label == "Accuracy"))
    assert abs(run.metrics["accuracy"] - shown) < 1e-3
    store = Store()
    tpl = store.list_templates(store.ensure_project("default"))
    assert [t.name for t in tpl] == ["My template"] and "{{ text }}" in tpl[0].content["template"]


def test_rerun_with_the_same_name_keeps_both_and_shows_the_newest():
    """Issue 18: a second run under the same template name used to overwrite the first; the panel kept the old."""
    at = _app().run()
    at.number_input(key="pt_rows").set_value(4).run()
    at.button(key="pt_run").click().run()
    at.selectbox(key="pt_show").set_value("My template").run()
    at.number_input(key="pt_rows").set_value(6).run()
    at.button(key="pt_run").click().run()
    assert not at.exception, at.exception
    results = at.session_state["pt_results"]
    assert list(results) == ["My template", "My template #2"]
    assert [len(r.rows) for r in results.values()] == [4, 6]
    assert at.selectbox(key="pt_show").value == "My template #2"
