"""The zero-shot page end to end with AppTest, on a bundled sample and the real MiniLM."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from llm_backend.data.files import load_sample
from tests.conftest import APP_TIMEOUT
from ui import state
from ui.state import ActiveDataset

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "1_Zero-shot_labels.py")


def _app(rows: int = 60) -> AppTest:
    df = load_sample("News headlines").df.head(rows).reset_index(drop=True)
    at = AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT)
    at.session_state[state.DATASET] = ActiveDataset(df, "News headlines", "text", "topic", len(df))
    return at


def _plotly_keys(at: AppTest) -> list:
    return [el for el in at.get("plotly_chart")]


def test_run_metrics_filter_and_compare():
    at = _app()
    at.run()
    assert not at.exception
    # Default label set = the distinct gold labels.
    assert sorted(l.name for l in at.session_state[state.LABELS]) == sorted(
        load_sample("News headlines").df.head(60)["topic"].unique())
    at.button(key="zs_run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    metric_labels = [m.label for m in at.metric]
    assert "Accuracy" in metric_labels and "Macro-F1" in metric_labels
    acc = float(next(m.value for m in at.metric if m.label == "Accuracy"))
    assert acc > 1 / 6  # six topics: well above chance on news headlines
    assert len(_plotly_keys(at)) >= 2  # distribution bar + confusion heatmap
    preds = at.session_state[state.PREDICTIONS]
    assert preds["fingerprint"] == at.session_state[state.DATASET].fingerprint
    assert len(preds["pred"]) == 60 and preds["probs"].shape[0] == 60
    assert at.session_state["zs_run_count"] == 1

    # Filtering is display-only: no model rerun.
    first = preds["pred"][0]
    at.multiselect(key="zs_filter_labels").set_value([first]).run()
    assert not at.exception
    assert at.session_state["zs_run_count"] == 1
    assert any(f"of 60 rows shown" in c.value for c in at.caption)

    # Compare with another label set.
    at.radio(key="zs_compare_what").set_value("another label set").run()
    at.text_area(key="zs_compare_labels").input("politics\nhealth\nsports\nbusiness\nscience\nentertainment").run()
    at.button(key="zs_compare_btn").click().run()
    assert not at.exception, at.exception
    assert at.session_state["zs_run_count"] == 2
    assert "Agreement" in [m.label for m in at.metric]

    # Confusable labels analysis.
    at.button(key="zs_confusable_btn").click().run()
    assert not at.exception
    assert at.session_state["zs_confusable"]["suggest"]


@pytest.mark.parametrize("pasted, message", [("politics\npolitics", "Duplicate"), ("politics", "at least two")])
def test_bad_label_set_shows_message(pasted, message):
    at = _app(20)
    at.run()
    at.text_area(key="zs_paste").input(pasted).run()
    at.button(key="zs_paste_apply").click().run()
    assert not at.exception
    if message == "Duplicate":
        assert any(message in e.value for e in at.error)
        return
    at.button(key="zs_run").click().run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]


def test_a_run_is_recorded_in_the_experiment_store(_isolated_data_dir):
    """After a run the Experiments store holds it with the page's metrics (persistence is wired in)."""
    import pandas as pd

    from llm_backend.store.database import Store
    from tests.conftest import app_test
    from ui import state

    df = pd.read_csv("samples/news_headlines.csv").head(60)
    at = app_test("pages/1_Zero-shot_labels.py")
    at.session_state[state.DATASET] = state.ActiveDataset(df, "news", "text", "topic", source_rows=len(df))
    at.run()
    at.button(key="zs_run").click().run()
    assert not at.exception
    runs = Store().list_runs()
    assert len(runs) == 1 and runs[0].kind == "zero-shot" and runs[0].method == "embedding"
    shown = [m.value for m in at.metric if m.label == "Accuracy"]
    assert shown and abs(float(shown[0]) - runs[0].accuracy) < 1e-3 and runs[0].status == "done"
