"""The Experiments page on a real store: list, filter, compare, reload a label set/template, delete; and the
``ui.persistence`` helpers other pages call to save runs."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from llm_backend.data.files import load_sample
from llm_backend.data.labels import Label
from llm_backend.evaluation.metrics import evaluate
from llm_backend.store.database import get_store
from tests.conftest import APP_TIMEOUT
from ui import state

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "5_Experiments.py")


@pytest.fixture
def populated():
    """A project with three finished runs (two methods), a failed one and one left running by a dead process."""
    s = get_store()
    pid = s.ensure_project("default")
    table = load_sample("Support tickets")
    gold = table.df["category"].tolist()[:40]
    ds = s.ensure_dataset(pid, "Support tickets", "fp-support", source="sample", n_rows=40)
    names = sorted(set(gold))
    ls = s.save_label_set(pid, "tickets", [Label(n, f"about {n}") for n in names])
    tp = s.save_template(pid, "short", {"template": "Ticket: {{ text }}\nCategory:",
                                        "verbalizer": {n: [n.replace("_", " ")] for n in names}})
    wrong = names[1:] + names[:1]
    pred_a = [g if i % 3 else wrong[names.index(g)] for i, g in enumerate(gold)]
    pred_b = [g if i % 5 else wrong[names.index(g)] for i, g in enumerate(gold)]
    ids = {
        "a": s.record_run(pid, "zero-shot", "similarity", "all-MiniLM-L6-v2", {"threshold": 0.3, "multi_label": False},
                          evaluate(gold, pred_a, names), dataset_id=ds, label_set_id=ls.id),
        "b": s.record_run(pid, "zero-shot", "nli", "tiny-nli", {"threshold": 0.5, "multi_label": False},
                          evaluate(gold, pred_b, names), dataset_id=ds, label_set_id=ls.id),
        "c": s.record_run(pid, "prompt", "logprob", "SmolLM2-135M-Instruct", {"shots": 2},
                          evaluate(gold, gold, names), dataset_id=ds, template_id=tp.id),
    }
    ids["failed"] = s.start_run(pid, "fine-tune", "setfit", "all-MiniLM-L6-v2", {"epochs": 1})
    s.fail_run(ids["failed"], "TrainingError: only one class in the training rows")
    ids["stale"] = s.start_run(pid, "fine-tune", "lora", "SmolLM2-135M-Instruct", {"rank": 8})
    with s.transaction() as conn:
        conn.execute("UPDATE runs SET owner = 'gone' WHERE id = ?", (ids["stale"],))
    return s, pid, ids, names


def _frame(at: AppTest, *columns: str):
    """The dataframe with these columns (AppTest does not expose keys of display-only dataframes)."""
    frames = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(frames) == 1, f"{len(frames)} dataframes with columns {columns}"
    return frames[0]


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_empty_store_explains_what_to_do():
    at = _run(AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT))
    assert any("No runs saved" in i.value for i in at.info)
    assert any("at least two runs" in i.value for i in at.info)


def test_list_filter_and_details(populated):
    s, pid, ids, _ = populated
    at = _run(AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT))
    table = _frame(at, "status", "macro_f1")
    assert len(table) == 5 and set(table["status"]) == {"done", "failed", "interrupted"}
    row_a = table.set_index("id").loc[ids["a"]]
    assert row_a["accuracy"] == pytest.approx(s.get_run(ids["a"]).accuracy)
    assert row_a["macro_f1"] == pytest.approx(s.get_run(ids["a"]).macro_f1)
    assert row_a["dataset"] == "Support tickets"

    at.multiselect(key="exp_f_kind").set_value(["zero-shot"])
    _run(at)
    assert set(_frame(at, "status", "macro_f1")["id"]) == {ids["a"], ids["b"]}
    assert any("2 of 5 runs" in c.value for c in at.caption)
    at.multiselect(key="exp_f_kind").set_value([])
    at.text_input(key="exp_f_search").input("smollm")
    _run(at)
    assert set(_frame(at, "status", "macro_f1")["id"]) == {ids["c"], ids["stale"]}
    at.text_input(key="exp_f_search").input("")
    at.multiselect(key="exp_f_status").set_value(["interrupted"])
    _run(at)
    assert list(_frame(at, "status", "macro_f1")["id"]) == [ids["stale"]]
    assert any("never finished" in w.value for w in at.warning)  # the detail view explains "interrupted"
    at.multiselect(key="exp_f_status").set_value(["failed"])
    _run(at)
    assert any("only one class" in e.value for e in at.error)


def test_compare_two_runs(populated):
    s, _, ids, names = populated
    at = _run(AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT))
    at.selectbox(key="exp_cmp_a").set_value(ids["a"])
    at.selectbox(key="exp_cmp_b").set_value(ids["b"])
    _run(at)
    metrics = _frame(at, "metric", "delta").set_index("metric")
    a, b = s.get_run(ids["a"]), s.get_run(ids["b"])
    assert metrics.loc["accuracy", "a"] == pytest.approx(a.accuracy)
    assert metrics.loc["accuracy", "delta"] == pytest.approx(b.accuracy - a.accuracy)
    assert f"F1 · {names[0]}" in metrics.index
    settings = _frame(at, "setting", "changed")
    assert set(settings["setting"]) == {"method", "model", "threshold"}  # only what differs
    at.toggle(key="exp_cmp_only").set_value(False)
    _run(at)
    assert "multi_label" in set(_frame(at, "setting", "changed")["setting"])
    at.selectbox(key="exp_cmp_b").set_value(ids["c"])
    _run(at)
    assert "F1 · " + names[0] in set(_frame(at, "metric", "delta")["metric"])


def _in_app() -> AppTest:
    """The page opened inside the whole app (from Home.py), so its links to the other pages resolve."""
    at = AppTest.from_file(str(Path(PAGE).parent.parent / "Home.py"), default_timeout=APP_TIMEOUT)
    at.switch_page("pages/5_Experiments.py")
    return at


def test_reload_label_set_and_template(populated):
    _, _, _, names = populated
    at = _run(_in_app())
    at.button(key="exp_load_labels").click()
    _run(at)
    labels = at.session_state[state.LABELS]
    assert [l.name for l in labels] == names and isinstance(labels[0], Label)
    assert labels[0].description == f"about {names[0]}"
    assert any(getattr(el, "proto", None) is not None and "Zero-shot" in str(el.proto) for el in at.get("page_link"))
    at.button(key="exp_load_template").click()
    _run(at)
    pending = at.session_state["zss_template_to_load"]
    assert pending["name"] == "short" and pending["template"] == "Ticket: {{ text }}\nCategory:"
    # The prompt page picks it up into its editor.
    at.session_state[state.DATASET] = state.ActiveDataset(load_sample("Support tickets").df.head(20), "tickets",
                                                          "text", "category", 20)
    at.switch_page("pages/2_Prompt_templates.py")
    _run(at)
    assert at.text_area(key="pt_template").value == "Ticket: {{ text }}\nCategory:"
    assert at.text_input(key="pt_name").value == "short"
    assert "zss_template_to_load" not in at.session_state
    # ...and the zero-shot page starts its label editor from the reloaded label set, descriptions included.
    at.switch_page("pages/1_Zero-shot_labels.py")
    _run(at)
    base = at.session_state["zs_editor_base"]
    assert [l.name for l in base] == names and base[0].description == f"about {names[0]}"


def test_save_current_label_set_makes_versions(populated):
    s, pid, _, _ = populated
    at = AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT)
    at.session_state[state.LABELS] = [Label("refund"), Label("delivery")]
    _run(at)
    at.text_input(key="exp_save_labels_name").input("tickets")
    at.button(key="exp_save_labels_btn").click()
    _run(at)
    assert any("version 2" in m.value for m in at.success)
    assert [(v.name, v.version) for v in s.list_label_sets(pid)] == [("tickets", 2), ("tickets", 1)]


def test_delete_needs_confirmation(populated):
    s, pid, ids, _ = populated
    at = _run(AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT))
    at.multiselect(key="exp_delete_ids").set_value([ids["failed"], ids["stale"]])
    _run(at)
    assert at.button(key="exp_delete_btn").disabled
    at.checkbox(key="exp_delete_confirm").check()
    _run(at)
    at.button(key="exp_delete_btn").click()
    _run(at)
    assert {r.id for r in s.list_runs(pid)} == {ids["a"], ids["b"], ids["c"]}
    assert any("Deleted 2 run(s)" in m.value for m in at.success)


def test_projects_are_chosen_per_session(populated):
    s, _, _, _ = populated
    other = s.ensure_project("other")
    s.record_run(other, "embedding-map", "umap", "all-MiniLM-L6-v2", {}, {})
    at = _run(AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT))
    at.selectbox(key="exp_project_select").set_value("other")
    _run(at)
    assert list(_frame(at, "status", "macro_f1")["kind"]) == ["embedding-map"]
    assert at.session_state["zss_project"] == "other"
    at.text_input(key="exp_new_project").input("fresh")
    _run(at)
    assert at.session_state["zss_project"] == "fresh" and "fresh" in s.list_projects()
    assert any("No runs saved" in i.value for i in at.info)


def test_workshop_mode_uses_a_private_project(monkeypatch, populated):
    monkeypatch.setenv("ZSS_WORKSHOP_MODE", "1")
    at = _run(AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT))
    assert at.session_state["zss_project"].startswith("session-")
    assert any("No runs saved" in i.value for i in at.info)  # the shared 'default' runs are not shown


# ------------------------------------------------------------------------------------------- ui.persistence
def _recording_script():
    import streamlit as st

    from llm_backend.data.files import load_sample
    from llm_backend.data.labels import Label
    from llm_backend.evaluation.metrics import evaluate
    from ui import state
    from ui.persistence import record_run, tracked_run

    table = load_sample("Product reviews")
    df = table.df.head(30)
    state.set_dataset(state.ActiveDataset(df, table.name, "text", "sentiment", source_rows=len(table.df)))
    st.session_state[state.LABELS] = [Label("positive"), Label("negative"), Label("neutral")]
    gold = df["sentiment"].tolist()
    st.session_state["rid"] = record_run("zero-shot", "similarity", "all-MiniLM-L6-v2", {"threshold": 0.2},
                                         evaluate(gold, gold, ["positive", "negative", "neutral"]))
    with tracked_run("prompt", "logprob", "SmolLM2", {"shots": 0}, template={"template": "{text}"}) as run:
        run.metrics = {"accuracy": 0.5}
        run.settings["chosen_threshold"] = 0.1
    st.session_state["tracked"] = run.run_id
    try:
        with tracked_run("fine-tune", "setfit", "m") as failing:
            raise ValueError("no rows left after filtering /srv/secret/data.csv")
    except ValueError:
        st.session_state["failed"] = failing.run_id


def test_record_run_and_tracked_run_fill_the_store():
    at = _run(AppTest.from_function(_recording_script, default_timeout=APP_TIMEOUT))
    s = get_store()
    run = s.get_run(at.session_state["rid"])
    assert run.status == "done" and run.accuracy == 1.0 and run.dataset_name == "Product reviews"
    assert run.dataset_fingerprint.startswith("Product reviews:30:text:sentiment:")
    assert [l["name"] for l in s.get_label_set(run.label_set_id).content] == ["positive", "negative", "neutral"]
    tracked = s.get_run(at.session_state["tracked"])
    assert tracked.status == "done" and tracked.settings == {"shots": 0, "chosen_threshold": 0.1}
    assert s.get_template(tracked.template_id).content == {"template": "{text}"}
    assert tracked.label_set_id == run.label_set_id  # same labels, same version
    failed = s.get_run(at.session_state["failed"])
    assert failed.status == "failed" and "no rows left" in failed.error and "/srv" not in failed.error


def test_record_run_never_raises_into_the_page(monkeypatch, tmp_path):
    bad = tmp_path / "broken.db"
    bad.write_bytes(b"garbage" * 1000)
    monkeypatch.setenv("ZSS_DB_PATH", str(bad))

    def script():
        import streamlit as st

        from ui.persistence import record_run

        st.session_state["rid"] = record_run("zero-shot", "similarity", "m", {}, {"accuracy": 1.0})
        st.write("the page goes on")

    at = _run(AppTest.from_function(script, default_timeout=APP_TIMEOUT))
    assert at.session_state["rid"] is None
    (warning,) = at.warning
    assert "was not saved to Experiments" in warning.value and "damaged" in warning.value
    assert str(tmp_path) not in warning.value
    assert at.markdown[0].value == "the page goes on"
    page = _run(AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT))
    assert any("cannot be used" in e.value for e in page.error)


def test_a_run_reopens_with_its_results_and_store_strings_stay_plain_text():
    """Issue 18: a saved run's results (confusion view, predictions) reopen; issue 13: names from the shared store
    (dataset, model, error) never render as markdown on another user's page."""
    import re

    s = get_store()
    pid = s.ensure_project("default")
    evil = "![x](http://example.invalid/p.png) **bold**"
    ds = s.ensure_dataset(pid, evil, "fp-evil", source="upload", n_rows=4)
    gold, pred = ["a", "b", "a", "b"], ["a", "a", "a", "b"]
    run_id = s.record_run(pid, "zero-shot", "embedding", evil, {}, {**evaluate(gold, pred, ["a", "b"]),
                                                                     "predictions": pred}, dataset_id=ds)
    failed = s.start_run(pid, "fine-tune", "head", "m", {}, dataset_id=ds)
    s.fail_run(failed, evil)
    at = AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT).run()
    assert not at.exception
    at.selectbox(key="exp_detail_run").set_value(run_id).run()
    assert not at.exception
    assert any(f"exp_preds_{run_id}" == (d.key or "") for d in at.dataframe) or any(
        list(d.value.get("predicted", [])) == pred for d in at.dataframe if hasattr(d.value, "get"))
    at.selectbox(key="exp_detail_run").set_value(failed).run()
    shown = [e.value for e in [*at.markdown, *at.caption, *at.error, *at.info, *at.warning, *at.success]]
    live = re.compile(r"(?<!\\)\]\(http|(?<!\\)\*\*bold")
    assert any("example" in v for v in shown)
    assert not any(live.search(v) for v in shown), shown
