"""The zero-shot page end to end with AppTest, on a bundled sample and the real MiniLM."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from llm_backend.data.files import load_sample
from tests.conftest import APP_TIMEOUT
from ui import state
from ui.state import ActiveDataset

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "1_Zero-shot_labels.py")


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
    assert "pairs" in at.session_state["zs_confusable"]


def test_wording_help_shows_the_effect_and_accepting_keeps_the_names():
    at = _app(160)  # the whole sample: science_technology needs a few confident rows to draw words from
    at.run()
    at.button(key="zs_run").click().run()
    at.button(key="zs_wording_btn").click().run()
    assert not at.exception, at.exception
    wh = at.session_state["zs_wording"]["help"]
    names = [l.name for l in at.session_state[state.LABELS]]
    assert [c.name for c in wh.checks] == names
    shown = {m.label: m.value for m in at.metric}
    assert shown["Rows whose label would change"] == f"{wh.changed_rows:,} of 160"
    assert "Macro-F1 against your gold column if you accept" in shown  # the sample has a gold column
    assert wh.n_accepted >= 1  # one-word names: words from their rows are offered
    assert ("Accept the proposal" if wh.recommended else "Accept the additions anyway") in [
        b.label for b in at.button]
    at.button(key="zs_wording_accept").click().run()
    assert not at.exception, at.exception
    accepted = at.session_state[state.LABELS]
    assert [l.name for l in accepted] == names
    assert [l.name for l in accepted if l.description] == [c.name for c in wh.checks if c.proposal]
    # a spelled-out name survives the label editor (its "reads as" column) after accepting
    assert [l.display for l in accepted] == [c.phrase for c in wh.checks]


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
    assert len(runs) == 1 and runs[0].kind == "zero-shot" and runs[0].method == "self-training"  # the default (issue 17)
    shown = [m.value for m in at.metric if m.label == "Accuracy"]
    assert shown and abs(float(shown[0]) - runs[0].accuracy) < 1e-3 and runs[0].status == "done"


def test_results_filters_errors_only_and_by_gold_and_default_comparison_is_fast():
    at = _app(60)
    at.run()
    at.button(key="zs_run").click().run()
    assert not at.exception
    # Issue 18: the comparison must not silently default to the (slow) LM ensemble.
    assert at.selectbox(key="zs_b_method").value == "embedding"
    metrics = at.session_state["zs_result"]["metrics"]
    errors = round((1 - metrics["accuracy"]) * metrics["n"])
    at.toggle(key="zs_filter_errors").set_value(True).run()
    assert any(f"{errors} of 60 rows shown" in c.value for c in at.caption)
    gold0 = sorted(set(at.session_state["zs_result"]["result"].pred))[0]
    at.toggle(key="zs_filter_errors").set_value(False).run()
    at.multiselect(key="zs_filter_gold").set_value([gold0]).run()
    assert not at.exception and at.session_state["zs_run_count"] == 1
    assert any("Most confused pairs" in m.value for m in at.markdown) or errors == 0


def test_slow_method_shows_a_measured_estimate_and_stops_in_the_background():
    """Issue 18: an LM run needs an estimate before it starts, runs in the background, and Stop ends it."""
    at = _app(8)
    at.run()
    at.selectbox(key="zs_a_method").set_value("lm").run()
    assert not at.exception
    assert at.button(key="zs_run").disabled  # not measured yet: no blind start
    assert any("has not been measured" in w.value for w in at.warning)
    at.button(key="zs_a_probe").click().run()
    assert not at.exception, at.exception
    assert any("Estimated" in c.value for c in at.caption)
    at.button(key="zs_run").click().run()
    run = at.session_state["zs_background"]
    assert run.running or run.result is not None
    run.stop()
    assert run.wait(APP_TIMEOUT)
    at.run()
    assert not at.exception
    assert run.snapshot().state in ("stopped", "done")
    if run.snapshot().state == "stopped":
        assert "zs_result" not in at.session_state


def test_trained_model_metrics_leave_out_its_training_rows(embedder):
    """Issue 18: scoring a file with a model trained on most of it must not report training-set accuracy."""
    from llm_backend.data.dataset import text_fingerprints
    from llm_backend.data.sampler import select_per_class
    from llm_backend.training.trained_models import save_model
    from llm_backend.training.trainer import TrainConfig, TrainCallbacks, train

    df = load_sample("News headlines").df.head(60).reset_index(drop=True)
    idx, _ = select_per_class(df["topic"].tolist(), 5, 0)
    tr_texts = [df["text"][i] for i in idx]
    res = train(tr_texts, [df["topic"][i] for i in idx], TrainConfig(method="head"), embedder, TrainCallbacks())
    meta = res.meta()
    meta["train_fingerprints"] = text_fingerprints(tr_texts)
    save_model(res.model, "news-head", meta)
    at = _app(60)
    at.run()
    at.selectbox(key="zs_a_method").set_value("trained").run()
    at.selectbox(key="zs_a_model").set_value("news-head").run()
    at.button(key="zs_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    metrics = at.session_state["zs_result"]["metrics"]
    assert metrics["excluded_trained_rows"] == len(idx) and metrics["n"] == 60 - len(idx)
    assert any("learned from" in w.value for w in at.warning)


def test_defaults_preselect_self_training_and_the_embedder_for_the_corpus_size():
    """Issue 17: the page preselects what `score` uses: self-training, and mpnet for a small English corpus
    (60 headlines, about 8,000 characters) with the reason shown; the comparison defaults to plain embedding."""
    from llm_backend.models.mpnet_package import parts_installed
    from llm_backend.scorers.defaults import DEFAULT_METHOD, LARGE_EMBEDDER

    at = _app(60)
    at.run()
    assert not at.exception
    assert at.selectbox(key="zs_a_method").value == DEFAULT_METHOD
    if parts_installed():
        assert at.selectbox(key="zs_a_model_small_corpus").value == LARGE_EMBEDDER
        assert any(f"Preselected {LARGE_EMBEDDER}" in c.value for c in at.caption)
