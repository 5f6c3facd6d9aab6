"""``python -m llm_backend explain`` end to end: writes label, method and a weight per word; bad input exits 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from llm_backend.cli import main
from llm_backend.data.files import SAMPLES_DIR
from tests.conftest import ROOT


def test_explain_row_writes_json(tmp_path):
    out = tmp_path / "why.json"
    data = SAMPLES_DIR / "news_headlines.csv"
    labels = sorted(pd.read_csv(data)["topic"].unique())
    rc = main(["explain", "--data", str(data), "--text-column", "text", "--labels", *labels, "--row", "3",
               "--limit", "40", "--out", str(out)])
    assert rc == 0
    got = json.loads(out.read_text(encoding="utf-8"))
    assert got["label"] in labels and got["method"] == "occlusion" and got["row"] == 3
    text = pd.read_csv(data)["text"].iloc[3]
    assert got["text"] == text
    assert [w["word"] for w in got["words"]] == [text[w["start"]:w["end"]] for w in got["words"]]
    assert len(got["words"]) >= 2 and all(isinstance(w["weight"], float) for w in got["words"])
    assert abs(sum(got["probabilities"].values()) - 1) < 1e-6


def test_explain_text_with_a_chosen_label_and_fallback_note(tmp_path, capsys):
    out = tmp_path / "why.json"
    rc = main(["explain", "--text", "The striker scored twice in the cup final.", "--labels", "sports", "politics",
               "--label", "politics", "--attribution", "gradient_x_input", "--out", str(out)])
    assert rc == 0
    got = json.loads(out.read_text(encoding="utf-8"))
    assert got["label"] == "politics" and got["method"] == "occlusion"
    assert "occlusion was used instead" in capsys.readouterr().err


def test_bad_row_exits_2_with_message(tmp_path):
    cmd = [sys.executable, "-m", "llm_backend", "explain", "--data", str(SAMPLES_DIR / "news_headlines.csv"),
           "--text-column", "text", "--labels", "a", "b", "--row", "100000", "--out", str(tmp_path / "x.json")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --row must be between 0 and") and "Traceback" not in proc.stderr
