"""The Experiments page's tables, built from a real store: runs list, chart order, details, models, templates."""
from __future__ import annotations

from pathlib import Path

import pytest

from llm_backend.evaluation.metrics import evaluate
from llm_backend.prompts.templates import PromptTemplate, template_from_dict
from llm_backend.store.database import Store
from llm_backend.store.run_views import (
    comparable_settings,
    different_data,
    export_file_name,
    format_metric,
    other_metrics,
    predictions_table,
    runs_table,
    runs_with_metrics,
    template_to_open,
    trained_models_table,
)


@pytest.fixture
def db(tmp_path: Path) -> Store:
    s = Store(tmp_path / "studio.db")
    yield s
    s.close()


def _run(db: Store, pid: int, kind: str, metrics: dict | None, **kw) -> int:
    rid = db.start_run(pid, kind, "similarity", "MiniLM", {"threshold": 0.2}, **kw)
    db.finish_run(rid, metrics or {})
    return rid


def test_runs_table_and_chart_order(db):
    pid = db.ensure_project("p")
    metrics = {**evaluate(["a", "b", "a"], ["a", "b", "b"], ["a", "b"]), "seconds": 1.5,
               "predictions": ["a", "b", "b"]}
    first = _run(db, pid, "zero-shot", metrics)
    _run(db, pid, "embedding-map", None)
    third = _run(db, pid, "fine-tune", metrics)
    runs = db.list_runs(pid)
    table = runs_table(runs)
    assert list(table["id"]) == [r.id for r in runs] and table.loc[table["id"] == first, "seconds"].item() == 1.5
    assert table.loc[table["id"] == first, "accuracy"].item() == pytest.approx(2 / 3)
    assert [r.id for r in runs_with_metrics(runs)] == [first, third]  # the map run has no metrics; oldest first
    detail = other_metrics(runs[0].metrics)
    assert "per_class" not in detail and "predictions" not in detail and detail["seconds"] == 1.5
    preds = predictions_table(metrics["predictions"])
    assert list(preds["row"]) == [0, 1, 2] and list(preds["predicted"]) == ["a", "b", "b"]
    assert (format_metric(None), format_metric(0.81234)) == ("—", "0.812")


def test_compare_helpers_and_template_round_trip(db):
    pid = db.ensure_project("my project")
    d1 = db.ensure_dataset(pid, "one", "fp1", n_rows=3)
    a = db.get_run(_run(db, pid, "zero-shot", None, dataset_id=d1))
    b = db.get_run(_run(db, pid, "zero-shot", None))
    assert comparable_settings(a) == {"kind": "zero-shot", "method": "similarity", "model": "MiniLM",
                                      "threshold": 0.2}
    assert different_data(a, b) and not different_data(a, a)
    tpl = PromptTemplate("Sentiment", "{{ text }} Answer:", {"positive": ["good"], "negative": ["bad"]})
    saved = db.save_template(pid, tpl.name, tpl.to_dict())
    opened = template_from_dict(template_to_open(saved))
    assert (opened.name, opened.template, opened.verbalizer) == (tpl.name, tpl.template, tpl.verbalizer)
    assert export_file_name("my project") == "my_project.zss.json"


def test_trained_models_table_shows_folder_names_only(db, tmp_path):
    pid = db.ensure_project("p")
    (tmp_path / "models" / "m1").mkdir(parents=True)
    db.add_trained_model(pid, "m1", tmp_path / "models" / "m1", base_model="MiniLM")
    db.add_trained_model(pid, "gone", tmp_path / "models" / "gone")
    table = trained_models_table(db.list_trained_models(pid))
    assert set(table["folder"]) == {"m1", "gone"} and str(tmp_path) not in table.to_csv()
    assert dict(zip(table["name"], table["folder present"])) == {"m1": True, "gone": False}
