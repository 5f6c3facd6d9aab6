"""CLI faces of the issue-17 options: ``score --method self-training``, ``suggest-labels``, ``train --pseudo-labels``."""
from __future__ import annotations

import json

import pandas as pd

from llm_backend.cli import main
from llm_backend.data.files import SAMPLES_DIR
from llm_backend.data.labels import load_labels_file


def test_score_self_training_writes_metrics(tmp_path):
    out, mj = tmp_path / "pred.csv", tmp_path / "m.json"
    rc = main(["score", "--data", str(SAMPLES_DIR / "news_headlines.csv"), "--text-column", "text",
               "--labels", "politics", "sports", "business", "science_technology", "health", "entertainment",
               "--method", "self-training", "--gold-column", "topic", "--out", str(out), "--metrics-json", str(mj)])
    assert rc == 0
    metrics = json.loads(mj.read_text())
    assert metrics["method"] == "self-training" and metrics["n"] == len(pd.read_csv(out))
    assert metrics["macro_f1"] > 1 / 6 + 0.2  # well above chance (6 topics)


def test_suggest_labels_writes_the_proposal_and_its_effect(tmp_path, capsys):
    out, rep = tmp_path / "labels.yaml", tmp_path / "report.json"
    names = ["politics", "sports", "business", "science_technology", "health", "entertainment"]
    rc = main(["suggest-labels", "--data", str(SAMPLES_DIR / "news_headlines.csv"), "--text-column", "text",
               "--labels", *names, "--gold-column", "topic", "--out", str(out), "--report-json", str(rep)])
    assert rc == 0
    labels = load_labels_file(out)
    assert [l.name for l in labels] == names  # names kept
    report = json.loads(rep.read_text())
    offered = [r["name"] for r in report["labels"] if r["proposal"]]
    assert offered  # one-word names: words from their rows are offered
    described = [l.name for l in labels if l.description]
    # The file holds the proposal: the additions when the label-free check advises them, else the bare names.
    assert described == (offered if report["recommended"] else [])
    spelled = {r["name"]: r["expansion"] for r in report["labels"] if r["accept_expansion"]}
    assert {l.name: l.display for l in labels if l.display} == (spelled if report["recommended"] else {})
    assert report["n_rows"] == len(pd.read_csv(SAMPLES_DIR / "news_headlines.csv"))
    assert 0 <= report["changed_rows"] <= report["n_rows"]
    assert 0 < report["macro_f1_names"] <= 1 and 0 < report["macro_f1_accepted"] <= 1
    err = capsys.readouterr().err
    assert "change the label of" in err and "macro-F1 against topic" in err


def test_suggest_labels_bad_column_is_a_clear_error(tmp_path, capsys):
    rc = main(["suggest-labels", "--data", str(SAMPLES_DIR / "news_headlines.csv"), "--text-column", "nope",
               "--labels", "a", "b", "--out", str(tmp_path / "x.yaml")])
    assert rc == 2 and "error:" in capsys.readouterr().err
