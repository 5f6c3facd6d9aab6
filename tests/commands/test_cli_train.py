"""``python -m llm_backend train`` and ``evaluate`` on a small real CSV."""
from __future__ import annotations

import json

import pytest

from llm_backend.cli import main
from llm_backend.data.sampler import select_per_class
from llm_backend.models.registry import ModelRegistry


@pytest.fixture()
def csv_file(ag_news, tmp_path):
    idx, _ = select_per_class(ag_news["label"].tolist(), 10, seed=0)
    df = ag_news.iloc[idx].copy()
    df.loc[df.index[:3], "label"] = df["label"].iloc[:3].str.upper() + "  "  # stray case/space variants
    path = tmp_path / "news.csv"
    df.to_csv(path, index=False)
    return path


def test_train_then_evaluate(csv_file, tmp_path, capsys):
    metrics = tmp_path / "m.json"
    rc = main(["train", "--data", str(csv_file), "--text-column", "text", "--label-column", "label",
               "--per-class", "4", "--seed", "1", "--method", "head", "--out", "cli-head",
               "--metrics-json", str(metrics)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "merged into" in err  # the stray variants were normalised, and the user was told
    m = json.loads(metrics.read_text())
    assert m["n_train"] == 16 and m["test"]["n"] == 24 and 0 <= m["test"]["macro_f1"] <= 1
    assert "cli-head" in [s.name for s in ModelRegistry().by_role("classifier")]

    eval_json = tmp_path / "e.json"
    rc = main(["evaluate", "--model", "cli-head", "--data", str(csv_file), "--text-column", "text",
               "--gold-column", "label", "--metrics-json", str(eval_json)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    e = json.loads(eval_json.read_text())
    assert e["n"] == 40 and e["accuracy"] >= m["test"]["accuracy"] - 0.2 and "accuracy:" in out


def test_train_refuses_a_single_class_and_a_bad_models_folder(csv_file, tmp_path, capsys, monkeypatch):
    import pandas as pd

    one = tmp_path / "one.csv"
    pd.DataFrame({"text": ["a b c", "d e f", "g h i"], "label": ["x", "x", "x"]}).to_csv(one, index=False)
    rc = main(["train", "--data", str(one), "--text-column", "text", "--label-column", "label",
               "--method", "head", "--out", "x"])
    assert rc == 2 and "at least two classes" in capsys.readouterr().err

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("ZSS_MODELS_DIR", str(blocker / "models"))
    rc = main(["train", "--data", str(csv_file), "--text-column", "text", "--label-column", "label",
               "--per-class", "4", "--method", "head", "--out", "y"])
    assert rc == 2 and "models folder" in capsys.readouterr().err
