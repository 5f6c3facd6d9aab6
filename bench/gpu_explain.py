"""The LM deletion test (issue 15) at full size on one GPU: bench/explain_faithfulness.py's ``prompt`` scorer.

On the shared 2-core CPU the LM verbalizer explains a row in about a minute under load, so the CPU figure in
bench/results/explain_faithfulness.md covers only the rows that fitted. This script runs the same code on CUDA:
the shipped topic template on AG News (when ../shared/data is there) and the sentiment template on the bundled
product reviews, gradient × input and occlusion (the LM's ``auto``) on up to 200 rows each and integrated gradients
(16 steps) on up to 50, each figure stopped after ``--max-minutes``. Without CUDA it says so and exits.

Usage (about 2 minutes on one H200 after the model is dequantised)::

    .venv/bin/python bench/gpu_explain.py            # results: $OUT/gpu_explain or bench/results/gpu_explain
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    import torch

    if not torch.cuda.is_available():
        print("No CUDA device: nothing measured. The CPU figures are in bench/results/explain_faithfulness.md.")
        return
    from shared_data import AG_NEWS_CSV

    out = Path(os.environ["OUT"]) / "gpu_explain" if os.environ.get("OUT") else ROOT / "bench" / "results" / "gpu_explain"
    datasets = "ag_news,product_reviews" if AG_NEWS_CSV.is_file() else "product_reviews"
    if datasets == "product_reviews":
        print("AG News not found (set ZSS_SHARED_DATA): product reviews only.")
    sys.argv = ["explain_faithfulness.py", "--scorers", "prompt", "--n", os.environ.get("ZSS_GPU_EXPLAIN_N", "200"),
                "--ig-n", "50", "--ig-steps", "16", "--max-minutes", "0.6", "--datasets", datasets,
                "--results-dir", str(out)]
    import explain_faithfulness

    print(f"device: {torch.cuda.get_device_name(0)}; results in {out}")
    explain_faithfulness.main()
    # Occlusion, the LM's ``auto`` since gradient × input measured not faithful: its own rows file, same run.
    sys.argv = sys.argv[:3] + ["--n", os.environ.get("ZSS_GPU_EXPLAIN_N", "200"), "--lm-attribution", "occlusion",
                               "--max-minutes", "0.6", "--datasets", datasets, "--results-dir", str(out)]
    explain_faithfulness.main()


if __name__ == "__main__":
    main()
