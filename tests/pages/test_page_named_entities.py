"""The Named entities page: paste CoNLL, train in the background, evaluate by type, save, tag text; bad input."""
from __future__ import annotations

from llm_backend.core.config import get_settings
from llm_backend.ner.conll import parse_conll, to_conll
from tests.conftest import APP_TIMEOUT, SHARED_DATA, _need, app_test

PAGE = "pages/7_Named_entities.py"
HOSTILE = "<script>alert(1)</script>"


def _conll(n: int) -> str:
    data = parse_conll(_need(SHARED_DATA / "conll2003_train.txt").read_text(encoding="utf-8"), "train")
    sents = data.sentences[:n]
    tokens = [[HOSTILE, "**bold**", "said", "."]] + [s.tokens for s in sents]
    tags = [["B-PER", "O", "O", "O"]] + [s.tags for s in sents]
    return to_conll(tokens, tags)


def _html(at) -> str:
    return " ".join(str(getattr(e, "proto", e)) for e in at.get("html"))


def test_page_trains_evaluates_saves_and_tags():
    at = app_test(PAGE)
    at.run()
    assert not at.exception
    at.radio(key="ner_source").set_value("Paste CoNLL text").run()
    at.text_area(key="ner_paste").set_value(_conll(60))
    at.button(key="ner_load_paste").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("61" in m.value and "sentences" in m.value for m in at.markdown)
    shown = _html(at)
    assert "&lt;script&gt;" in shown and "<script>alert" not in shown  # user tokens are escaped
    at.number_input(key="ner_n_test").set_value(20).run()
    at.number_input(key="ner_n_train").set_value(24)
    at.number_input(key="ner_epochs").set_value(1)
    at.button(key="ner_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    run = at.session_state["ner_run"]
    assert run.wait(APP_TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert {"Entity micro-F1", "Precision", "Recall"} <= {m.label for m in at.metric}
    test = run.result.evaluation["test"]
    assert test["n_sentences"] == 20 and 0 <= test["micro_f1"] <= 1
    next(t for t in at.text_input if t.key.startswith("ner_name_")).set_value("page-ner")
    next(b for b in at.button if b.key.startswith("ner_save_")).click().run()
    assert not at.exception and any("Saved as page-ner" in s.value for s in at.success)
    assert (get_settings().models_dir / "page-ner" / "zss_model.json").is_file()
    from llm_backend.store.database import Store

    store = Store()
    runs = store.list_runs()
    assert [(r.kind, r.method) for r in runs] == [("ner", "ner-full")]
    assert runs[0].metrics["micro_f1"] == test["micro_f1"]
    models = store.list_trained_models(store.ensure_project("default"))
    assert [(m["name"], m["run_id"]) for m in models] == [("page-ner", runs[0].id)]
    # tag new text with the saved model
    at.selectbox(key="ner_tag_model").set_value("page-ner")
    at.text_area(key="ner_tag_text").set_value("Peter Blackburn met officials of the European Union in Brussels .")
    at.button(key="ner_tag_btn").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.dataframe) >= 1
    at.text_area(key="ner_tag_text").set_value("   \n ")
    at.button(key="ner_tag_btn").click().run()
    assert any("no tokens" in e.value for e in at.error)


def test_page_names_the_bad_line():
    at = app_test(PAGE)
    at.run()
    at.radio(key="ner_source").set_value("Paste CoNLL text").run()
    at.text_area(key="ner_paste").set_value("EU B-ORG\nrejects O\nGerman B-MSC-X\n")
    at.button(key="ner_load_paste").click().run()
    assert not at.exception
    assert any("line 3" in e.value and "not BIO" in e.value for e in at.error)
