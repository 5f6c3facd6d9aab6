"""GPU check for batch scoring: Ray GPU actors vs the in-process engine on the same rows (< 2 minutes on one GPU).

Run on a CUDA machine from the repo root: ``.venv/bin/python bench/gpu_batch.py``. Without CUDA it prints a message
and exits 0. It freezes MiniLM on 500 AG News rows, then scores 40,000 resampled AG News + Banking77 rows (cache
off, so every row is encoded) with ``--engine local`` and ``--engine ray`` (the actor asks for the GPU), and prints
both throughputs, their ratio, whether the labels agree, and which device each engine's summary reports.
Output: ``bench/results/gpu_batch.json``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        has_cuda = False
    if not has_cuda:
        print("No CUDA device: this script measures the GPU path only. Nothing to do.")
        return
    from shared_data import ag_news, banking77

    from llm_backend.batch.frozen import freeze_run, save_classifier
    from llm_backend.data.labels import make_labels
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.scorers.factory import make_scorer
    from llm_backend.scorers.zero_shot import run_scorer

    work = Path("/tmp/zss_gpu_batch")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, ZSS_DATA_DIR=str(work / "zss"), ZSS_CACHE_DIR=str(ROOT / ".cache"))
    env.pop("ZSS_FORCE_CPU", None)
    ag, bank = ag_news(), banking77()
    proto = ag.sample(500, random_state=0)
    loaded = get_model(ModelRegistry().default("embedder"))
    labels = make_labels(["World", "Sports", "Business", "Sci/Tech"])
    scorer = make_scorer("embedding", loaded)
    result = run_scorer(scorer, proto["text"].tolist(), labels, model_name=loaded.spec.name)
    clf_dir = save_classifier(freeze_run(scorer, proto["text"].tolist(), labels, result, name="gpu"), work / "clf")
    pool = pd.concat([ag["text"], bank["text"]]).tolist()
    rng = np.random.default_rng(0)
    n = 40_000
    # unique rows: a suffix makes every resampled text distinct, so nothing is served from a cache
    texts = [f"{pool[i]} (#{k})" for k, i in enumerate(rng.integers(0, len(pool), n))]
    pd.DataFrame({"id": np.arange(n), "text": texts}).to_parquet(work / "in.parquet")
    report: dict = {"device": torch.cuda.get_device_name(0), "rows": n}
    for engine in ("local", "ray"):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "llm_backend", "batch", "--classifier", str(clf_dir), "--input",
                            str(work / "in.parquet"), "--text-column", "text", "--id-column", "id", "--output",
                            str(work / f"out_{engine}"), "--engine", engine, "--cache-entries", "0",
                            "--batch-rows", "1024"], capture_output=True, text=True, env=env, cwd=ROOT)
        wall = time.perf_counter() - t
        if p.returncode:
            print(p.stderr[-3000:])
            raise SystemExit(f"{engine} failed")
        summary = json.loads([l for l in p.stderr.splitlines() if l.startswith('{"job"')][-1])
        report[engine] = {"wall_s": round(wall, 1), "job_s": summary["seconds"], "engine": summary["engine"],
                          "rows_per_s": round(n / summary["seconds"], 1)}
        print(engine, report[engine], flush=True)
    a = pd.read_parquet(work / "out_local").sort_values("id")
    b = pd.read_parquet(work / "out_ray").sort_values("id")
    report["same_labels"] = float((a["label"].to_numpy() == b["label"].to_numpy()).mean())
    report["ray_vs_local"] = round(report["local"]["job_s"] / report["ray"]["job_s"], 3)
    print(f"Ray GPU actors / in-process: {report['ray_vs_local']:.2f}x throughput; same labels on "
          f"{report['same_labels']:.2%} of rows")
    out = ROOT / "bench" / "results" / "gpu_batch.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
