"""The faithfulness bench's --nli-model option runs end to end (with a tiny random NLI model: plumbing, not quality).

No NLI model ships offline, so bench/results has no NLI figure; this keeps the option working for a user who has
a real one (docs/explain.md)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_bench_nli_option_runs_the_deletion_test(tmp_path, registry):
    from tests.scorers.test_scorers_nli import _tiny_model

    folder = _tiny_model(tmp_path / "tiny-nli", registry, {0: "entailment", 1: "neutral", 2: "contradiction"})
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "explain_faithfulness.py"), "--scorers", "nli",
                           "--nli-model", str(folder), "--n", "3", "--results-dir", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.loads((out / "explain_faithfulness.json").read_text())
    fig = saved["deletion"]["NLI (tiny-nli) / ag_news"]
    # `auto` is occlusion for NLI encoders (gradient × input measured anti-faithful on encoders: docs/explain.md)
    assert fig["rows"] == 3 and fig["method"] == "occlusion" and fig["k3"]["n"] == 3
    assert "mean_drop_top_logodds" in fig["k3"]
    assert len((out / "explain_rows" / "nli_tiny_nli_ag_news.jsonl").read_text().splitlines()) == 3
    proc2 = subprocess.run([sys.executable, str(ROOT / "bench" / "explain_faithfulness.py"), "--scorers", "nli",
                            "--n", "3", "--results-dir", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc2.returncode != 0 and "--nli-model" in proc2.stderr
