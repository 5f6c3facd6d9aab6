"""The fine-tune page: choose rows, run in the background, see results beside zero-shot, save the model."""
from __future__ import annotations

import pytest

from llm_backend.core.config import get_settings
from llm_backend.data.sampler import select_per_class
from tests.conftest import APP_TIMEOUT, app_test
from ui.state import ActiveDataset

PAGE = "pages/4_Fine-tune_runs.py"


@pytest.fixture()
def dataset(ag_news):
    idx, _ = select_per_class(ag_news["label"].tolist(), 10, seed=3)
    df = ag_news.iloc[idx].reset_index(drop=True)
    df["map_label"] = ""
    df.loc[:5, "map_label"] = df["label"].iloc[:6]  # a few rows labelled on the embedding map
    return ActiveDataset(df, "news", "text", "label", len(df))


def test_page_runs_a_head_and_saves_it(dataset):
    at = app_test(PAGE)
    at.session_state["zss_dataset"] = dataset
    at.run()
    assert not at.exception
    assert at.selectbox(key="ft_label_col").value == "map_label"  # map labels are preferred when present
    at.selectbox(key="ft_label_col").set_value("label")
    at.number_input(key="ft_k").set_value(4)
    at.run()
    assert any("16" in m.value and "4" in m.value and "test rows" in m.value for m in at.markdown)
    at.button(key="ft_start").click().run()
    assert not at.exception
    run = at.session_state["ft_run"]
    assert run.wait(APP_TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    labels = [m.label for m in at.metric]
    assert "Accuracy" in labels and "Zero-shot macro-F1 (same rows)" in labels
    history = at.session_state["ft_history"]
    assert len(history) == 1 and history[0]["method"] == "head" and history[0]["train rows"] == 16
    assert 0 <= history[0]["macro_f1"] <= 1 and history[0]["zero-shot macro_f1"] is not None
    assert history[0]["result"].history[-1]["loss"] > 0  # issue 18: the head's loss chart is not empty
    name_box = next(t for t in at.text_input if t.key.startswith("ft_name_"))
    name_box.set_value("page-model")
    next(b for b in at.button if b.key.startswith("ft_save_")).click().run()
    assert not at.exception
    assert any("Saved as" in s.value for s in at.success)
    assert (get_settings().models_dir / "page-model" / "zss_model.json").is_file()
    # The run and the saved model are in the experiment store, linked to each other.
    from llm_backend.store.database import Store

    store = Store()
    runs = store.list_runs()
    assert len(runs) == 1 and (runs[0].kind, runs[0].method, runs[0].status) == ("fine-tune", "head", "done")
    assert runs[0].metrics["macro_f1"] == pytest.approx(history[0]["macro_f1"])
    assert runs[0].settings["train rows"] == 16 and runs[0].model == "all-MiniLM-L6-v2"
    models = store.list_trained_models(store.ensure_project("default"))
    assert [(m["name"], m["run_id"], m["exists"]) for m in models] == [("page-model", runs[0].id, True)]


def test_page_explains_an_untrainable_label_column(dataset):
    dataset.df["map_label"] = ""
    dataset.df.loc[0, "map_label"] = "only one"
    at = app_test(PAGE)
    at.session_state["zss_dataset"] = dataset
    at.run()
    at.button(key="ft_start").click().run()
    assert not at.exception
    assert any("two classes" in e.value for e in at.error)


def _four_per_class(dataset):
    """The page on the gold column, 4 rows per class, at most 50 test rows (method: the default, head)."""
    at = app_test(PAGE)
    at.session_state["zss_dataset"] = dataset
    at.run()
    at.selectbox(key="ft_label_col").set_value("label")
    at.number_input(key="ft_k").set_value(4)
    at.number_input(key="ft_max_test").set_value(50)
    return at.run()


def _run_to_end(at):
    """Start the run, wait for it, redraw; no exception or error on the page. Returns the finished run."""
    at.button(key="ft_start").click().run()
    run = at.session_state["ft_run"]
    assert run.wait(APP_TIMEOUT)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return run


def test_page_distils_from_the_zero_shot_teacher(dataset):
    at = _four_per_class(dataset)
    at.selectbox(key="ft_method").set_value("distill")
    at.run()
    at.radio(key="ft_student").set_value("head")
    at.number_input(key="ft_epochs_distill").set_value(1)
    at.number_input(key="ft_unl").set_value(0)
    _run_to_end(at)
    assert any("Teacher macro-F1" in i.value and "speed" in i.value for i in at.info)


def test_page_setfit_averages_the_untouched_head_unless_unticked(dataset):
    at = _four_per_class(dataset)
    assert at.checkbox(key="ft_base_view").disabled and at.checkbox(key="ft_pseudo").value is False  # head: n/a
    at.selectbox(key="ft_method").set_value("setfit").run()
    box = at.checkbox(key="ft_base_view")
    assert box.value is True and not box.disabled  # the default, as TrainConfig's
    at.number_input(key="ft_pairs").set_value(16)
    run = _run_to_end(at)
    model = run.result.model
    assert run.config["base_view"] is True and model.base is not None
    assert model.weight.shape[1] == 2 * model.body.model.get_sentence_embedding_dimension()
    assert any("averages two heads" in c.value for c in at.caption)
