"""``python -m llm_backend score`` end to end on bundled samples (real MiniLM)."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from llm_backend.cli import main
from llm_backend.data.files import SAMPLES_DIR
from llm_backend.evaluation.metrics import evaluate
from tests.conftest import ROOT


def test_score_writes_predictions_and_metrics(tmp_path):
    out, mj = tmp_path / "pred.csv", tmp_path / "metrics.json"
    labels = ["positive", "negative", "neutral"]
    rc = main(["score", "--data", str(SAMPLES_DIR / "product_reviews.csv"), "--text-column", "text",
               "--labels", *labels, "--gold-column", "sentiment", "--limit", "50", "--out", str(out),
               "--metrics-json", str(mj)])
    assert rc == 0
    pred = pd.read_csv(out, keep_default_na=False)
    assert len(pred) == 50 and {"text", "gold", "predicted", "score", "margin", "p(positive)"} <= set(pred.columns)
    metrics = json.loads(mj.read_text())
    assert {"n", "accuracy", "macro_f1", "per_class"} <= set(metrics)
    for v in metrics["per_class"].values():
        assert set(v) == {"precision", "recall", "f1", "support"}
    again = evaluate(pred["gold"], pred["predicted"], labels)
    assert metrics["n"] == 50
    assert metrics["accuracy"] == pytest.approx(again["accuracy"])
    assert metrics["macro_f1"] == pytest.approx(again["macro_f1"])
    assert set(metrics["per_class"]) == set(again["per_class"])
    for lab, vals in again["per_class"].items():
        assert metrics["per_class"][lab] == pytest.approx(vals)
    assert metrics["calibration"] == "centering"


def test_labels_file_multi_label_tsv(tmp_path):
    data = tmp_path / "tickets.tsv"
    pd.read_csv(SAMPLES_DIR / "support_tickets.csv").head(30).to_csv(data, sep="\t", index=False)
    lf = tmp_path / "labels.yaml"
    lf.write_text("labels:\n  - name: returns_refunds\n    description: money back for a returned item\n"
                  "  - name: technical_issue\n  - name: shipping_delivery\n", encoding="utf-8")
    out = tmp_path / "p.csv"
    rc = main(["score", "--data", str(data), "--text-column", "text", "--labels-file", str(lf), "--multi-label",
               "--threshold", "0.6", "--template", "This text is about {label}.", "--template", "{label}",
               "--calibration", "contextual", "--out", str(out)])
    assert rc == 0
    pred = pd.read_csv(out, keep_default_na=False)
    assert len(pred) == 30
    probs = pred[[c for c in pred.columns if c.startswith("p(")]].to_numpy()
    for chosen, row in zip(pred["predicted"], probs):
        assert (chosen == "(none)") == bool((row < 0.6).all())


def test_bad_input_exits_2_with_message(tmp_path):
    cmd = [sys.executable, "-m", "llm_backend", "score", "--data", str(SAMPLES_DIR / "product_reviews.csv"),
           "--text-column", "text", "--out", str(tmp_path / "p.csv")]
    for extra, msg in [(["--labels", "good"], "multi-label"), (["--labels", "a", "A"], "Duplicate"),
                       (["--labels", "a", "b", "--template", "no placeholder"], "{label}"),
                       (["--labels", "a", "b", "--gold-column", "nope"], "not in the file")]:
        proc = subprocess.run(cmd + extra, capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert "error:" in proc.stderr and msg in proc.stderr
        assert "Traceback" not in proc.stderr
