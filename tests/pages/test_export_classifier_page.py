""""Export classifier" on the zero-shot page: the frozen folder reproduces the page's predictions and is listed in the
store with the page's run."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from llm_backend.batch.frozen import ClassifierRunner, default_classifiers_dir, load_classifier
from llm_backend.data.files import load_sample
from llm_backend.store.database import get_store
from tests.conftest import APP_TIMEOUT
from ui import state
from ui.state import ActiveDataset

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "1_Zero-shot_labels.py")


def test_zero_shot_page_exports_a_classifier_that_reproduces_the_run(embedder):
    df = load_sample("News headlines").df.head(40).reset_index(drop=True)
    at = AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT)
    at.session_state[state.DATASET] = ActiveDataset(df, "News headlines", "text", "topic", len(df))
    at.run()
    at.button(key="zs_run").click().run()
    assert not at.exception and not at.error
    # the default method (self-training, issue 17) fits a head on the corpus: the classifier keeps it
    assert at.session_state[state.PREDICTIONS]["method"] == "self-training"
    at.text_input(key="zs_export_name").input("news-topics").run()
    at.button(key="zs_export_btn").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    clf = load_classifier(default_classifiers_dir() / "news-topics")
    assert clf.name == "news-topics" and clf.source["page"] == "zs_export"
    page_pred = at.session_state[state.PREDICTIONS]["pred"]
    batch_pred = ClassifierRunner(clf, cache_entries=-1).predict(df["text"].tolist(), skip_empty=False)
    assert batch_pred["label"].tolist() == page_pred
    store = get_store()
    (row,) = store.list_classifiers(store.ensure_project("default"))
    assert row["name"] == "news-topics" and row["run_id"] == at.session_state["zss_last_run_id"]
    assert store.get_run(row["run_id"]).kind == "zero-shot"
    # the same name again is refused with a message, nothing overwritten
    at.button(key="zs_export_btn").click().run()
    assert any("already exists" in e.value for e in at.error)


def test_fine_tune_page_exports_the_saved_model_by_reference(ag_news):
    from llm_backend.core.config import get_settings
    from llm_backend.data.sampler import select_per_class
    from tests.conftest import app_test

    idx, _ = select_per_class(ag_news["label"].tolist(), 10, seed=3)
    df = ag_news.iloc[idx].reset_index(drop=True)
    at = app_test("pages/4_Fine-tune_runs.py")
    at.session_state["zss_dataset"] = ActiveDataset(df, "news", "text", "label", len(df))
    at.run()
    at.number_input(key="ft_k").set_value(4)
    at.run()
    at.button(key="ft_start").click().run()
    assert at.session_state["ft_run"].wait(APP_TIMEOUT)
    at.run()
    export_btn = next(b for b in at.button if b.key.startswith("ft_export_"))
    next(t for t in at.text_input if t.key.startswith("ft_name_")).set_value("ft-model")
    export_btn.click().run()  # not saved yet: a message, nothing written
    assert any("Save the model first" in e.value for e in at.error)
    next(b for b in at.button if b.key.startswith("ft_save_")).click().run()
    next(t for t in at.text_input if t.key.startswith("ft_export_") and t.key.endswith("_name")).set_value("ft-clf")
    next(b for b in at.button if b.key.startswith("ft_export_")).click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    clf = load_classifier(default_classifiers_dir() / "ft-clf")
    (comp,) = clf.components
    assert comp.method == "trained" and comp.model["location"] == str((get_settings().models_dir / "ft-model").resolve())
    assert sorted(clf.label_names) == sorted(df["label"].unique())
    store = get_store()
    assert [c["name"] for c in store.list_classifiers(store.ensure_project("default"))] == ["ft-clf"]


def test_prompt_page_exports_its_run_as_a_prompt_classifier(causal_lm):
    """The prompt page's "Export classifier" freezes the run shown; the classifier gives the run's predictions."""
    from dataclasses import replace

    import pandas as pd

    from llm_backend.batch.freeze_prompt import export_problem

    df = load_sample("Product reviews").df
    df = pd.concat([g.head(2) for _, g in df.groupby("sentiment")]).reset_index(drop=True)
    at = AppTest.from_file(str(Path(PAGE).parent / "2_Prompt_templates.py"), default_timeout=APP_TIMEOUT)
    at.session_state[state.DATASET] = ActiveDataset(df, "reviews", "text", "sentiment", len(df))
    at.run()
    at.number_input(key="pt_rows").set_value(len(df)).run()
    at.button(key="pt_run").click().run()
    assert not at.exception, at.exception
    at.text_input(key="pt_export_name").input("reviews-prompt").run()
    at.button(key="pt_export_btn").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    clf = load_classifier(default_classifiers_dir() / "reviews-prompt")
    (comp,) = clf.components
    assert comp.method == "prompt" and clf.source["page"] == "pt_export"
    res = at.session_state["pt_results"]["My template"]
    assert comp.calibration == res.calibration_applied == "contextual"  # 6 rows: centering falls back
    assert ClassifierRunner(clf).predict(res.texts, skip_empty=False)["label"].tolist() == res.pred
    store = get_store()
    (row,) = store.list_classifiers(store.ensure_project("default"))
    assert row["name"] == "reviews-prompt" and store.get_run(row["run_id"]).kind == "prompt"
    # runs that cannot be frozen say why (the page shows it next to a disabled button)
    assert "score-mode" in export_problem(replace(res, mode="generate"))
    assert "stopped" in export_problem(replace(res, complete=False))
