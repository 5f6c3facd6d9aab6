"""Page and CLI agree (issue 11): same file and settings → identical predictions, split, baseline and metrics.

Real data (a Banking77 / AG News slice written to a temporary CSV), real MiniLM.
"""
from __future__ import annotations

import json

import pandas as pd
import pytest

from llm_backend.cli import main
from llm_backend.data.dataset import Dataset
from llm_backend.training.split import make_split
from tests.conftest import APP_TIMEOUT, app_test, stratified
from ui import state


def test_zero_shot_page_and_score_give_identical_predictions_and_metrics(banking77, tmp_path):
    df = stratified(banking77[banking77["label"].isin(sorted(banking77["label"].unique())[:8])], 6)
    path = tmp_path / "bank.csv"
    df.to_csv(path, index=False)
    out, mj = tmp_path / "pred.csv", tmp_path / "m.json"
    labels = sorted(df["label"].unique())
    assert main(["score", "--data", str(path), "--text-column", "text", "--labels", *labels, "--gold-column",
                 "label", "--out", str(out), "--metrics-json", str(mj)]) == 0
    cli_pred = pd.read_csv(out, keep_default_na=False)["predicted"].tolist()
    cli_metrics = json.loads(mj.read_text())

    at = app_test("pages/1_Zero-shot_labels.py")
    at.session_state[state.DATASET] = Dataset.from_file(path, "text", "label")
    at.run()
    at.button(key="zs_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    page_pred = at.session_state[state.PREDICTIONS]["pred"]
    page_metrics = at.session_state["zs_result"]["metrics"]
    assert page_pred == cli_pred
    assert page_metrics["accuracy"] == pytest.approx(cli_metrics["accuracy"], abs=1e-12)
    assert page_metrics["macro_f1"] == pytest.approx(cli_metrics["macro_f1"], abs=1e-12)
    assert page_metrics["per_class"] == cli_metrics["per_class"]


def _cli_train(df: pd.DataFrame, tmp_path, *args: str) -> tuple:
    """``train`` (head, 4 per class) on ``df`` written to a CSV: (the CSV's path, the metrics JSON)."""
    path, mj = tmp_path / "news.csv", tmp_path / "train.json"
    df.to_csv(path, index=False)
    assert main(["train", "--data", str(path), "--text-column", "text", "--label-column", "label", "--per-class", "4",
                 "--method", "head", *args, "--out", str(tmp_path / "m"), "--metrics-json", str(mj)]) == 0
    return path, json.loads(mj.read_text())


def _page_train(path, set_widgets):
    """The fine-tune page on the same CSV, widgets set by ``set_widgets(at)``, one run to the end."""
    at = app_test("pages/4_Fine-tune_runs.py")
    at.session_state[state.DATASET] = Dataset.from_file(path, "text", "label")
    at.run()
    set_widgets(at)
    at.run()
    split = at.session_state["ft_split"]
    at.button(key="ft_start").click().run()
    assert at.session_state["ft_run"].wait(APP_TIMEOUT)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return split, at.session_state["ft_history"][-1]["result"]


def test_fine_tune_page_and_train_give_the_same_split_baseline_and_metrics(ag_news, tmp_path):
    path, cli = _cli_train(stratified(ag_news, 15, seed=1), tmp_path, "--max-test", "2000")
    split, res = _page_train(path, lambda at: at.number_input(key="ft_k").set_value(4))
    assert split.train_idx == cli["split"]["train"] and split.test_idx == cli["split"]["test"]
    ev = res.evaluation
    assert ev["test"]["macro_f1"] == pytest.approx(cli["test"]["macro_f1"], abs=1e-9)
    assert ev["test"]["accuracy"] == pytest.approx(cli["test"]["accuracy"], abs=1e-9)
    assert ev["baseline"]["macro_f1"] == pytest.approx(cli["baseline"]["macro_f1"], abs=1e-9)


def test_fine_tune_page_pseudo_labels_match_train_pseudo_labels(ag_news, tmp_path):
    """The page's pseudo-label checkbox draws the CLI's pool (same rows, never test rows) and trains the same head."""
    path, cli = _cli_train(stratified(ag_news, 40, seed=2), tmp_path, "--pseudo-labels", "--max-test", "50")
    assert len(cli["split"]["pool"]) == 160 - 16 - 50

    def widgets(at):
        at.number_input(key="ft_k").set_value(4)
        at.number_input(key="ft_max_test").set_value(50)
        at.checkbox(key="ft_pseudo").check()

    split, res = _page_train(path, widgets)
    assert split.pool_idx == cli["split"]["pool"] and split.test_idx == cli["split"]["test"]
    assert res.extra.get("n_pseudo", 0) > 0 and any("pseudo-labelled" in n for n in res.notes)
    assert res.evaluation["test"]["macro_f1"] == pytest.approx(cli["test"]["macro_f1"], abs=1e-9)


def test_split_sets_are_disjoint_and_distillation_pool_excludes_test_rows():
    labels = [f"c{i % 5}" for i in range(200)] + [""] * 50
    split = make_split(labels, per_class=4, seed=2, max_test=60, n_pool=500)
    train, test, pool = set(split.train_idx), set(split.test_idx), set(split.pool_idx)
    assert len(train) == 20 and len(test) == 60 and not (train & test) and not (pool & (train | test))
    assert len(pool) == 250 - 20 - 60
    # a tiny test split says it cannot measure every class
    thin = make_split([f"c{i % 40}" for i in range(360)], per_class=8, seed=0, max_test=30)
    assert thin.coverage_warning() and "cannot measure every class" in thin.coverage_warning()


def test_train_cli_distillation_never_evaluates_on_its_own_training_texts(ag_news, tmp_path):
    df = stratified(ag_news, 12, seed=4)
    path = tmp_path / "news.csv"
    df.to_csv(path, index=False)
    mj = tmp_path / "d.json"
    assert main(["train", "--data", str(path), "--text-column", "text", "--label-column", "label", "--per-class", "3",
                 "--method", "distill", "--student", "head", "--epochs", "1", "--max-test", "12", "--unlabelled",
                 "24", "--out", str(tmp_path / "d"), "--metrics-json", str(mj)]) == 0
    s = json.loads(mj.read_text())["split"]
    assert s["pool"] and not set(s["pool"]) & set(s["test"]) and not set(s["pool"]) & set(s["train"])
