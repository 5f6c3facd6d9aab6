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

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "1_Zero-shot_labels.py")


def test_zero_shot_page_exports_a_classifier_that_reproduces_the_run(embedder):
    df = load_sample("News headlines").df.head(40).reset_index(drop=True)
    at = AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT)
    at.session_state[state.DATASET] = ActiveDataset(df, "News headlines", "text", "topic", len(df))
    at.run()
    at.button(key="zs_run").click().run()
    assert not at.exception and not at.error
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
