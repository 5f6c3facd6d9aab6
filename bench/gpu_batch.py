"""GPU check for batch scoring: Ray GPU actors vs the in-process engine on the same rows (< 2 minutes on one GPU).

Run on a CUDA machine from the repo root: ``.venv/bin/python bench/gpu_batch.py``. Without CUDA it prints a message
and exits 0. It prints the Ray actor plan :func:`llm_backend.batch.ray_engine.actor_plan` makes for this machine
(fractional-GPU actors sharing each GPU), freezes MiniLM on 500 AG News rows, then scores 40,000 resampled AG News +
Banking77 rows (cache off, so every row is encoded) with ``--engine local`` and ``--engine ray`` (the actors ask
for a share of the GPU and must load on CUDA, or the job fails), and prints both throughputs, their ratio, whether
the labels agree, and the plan each engine's summary reports. Then the same for a frozen prompt-template classifier
(SmolLM2, k=0, centering) on 3,000 rows, when SmolLM2 is installed on the machine (skipped with a message if not).
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
    from llm_backend.batch.ray_engine import actor_plan

    plan = actor_plan({"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())})
    print(f"actor plan for this machine: {plan.describe()}", flush=True)
    report: dict = {"device": torch.cuda.get_device_name(0), "rows": n, "actor_plan": plan.describe()}
    report["embedding"] = _compare(clf_dir, work / "in.parquet", work / "emb", n, env, batch_rows=1024)
    if not report["embedding"]["ray"]["engine"].endswith("GPU each)") or " 0 GPU" in report["embedding"]["ray"]["engine"]:
        raise SystemExit("the Ray actors did not ask for a GPU")
    try:
        report["prompt"] = _prompt_section(work, ag, pool, env)
    except Exception as exc:  # noqa: BLE001 - SmolLM2 may not be installed on the GPU machine
        print(f"prompt section skipped: {str(exc).splitlines()[0][:300]}")
        report["prompt"] = {"skipped": str(exc)[:300]}
    out = ROOT / "bench" / "results" / "gpu_batch.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {out}")


def _compare(clf_dir: Path, data: Path, work: Path, n: int, env: dict, batch_rows: int) -> dict:
    """``batch --engine local`` then ``--engine ray`` on ``data``: throughputs, their ratio, label agreement."""
    out: dict = {}
    for engine in ("local", "ray"):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "llm_backend", "batch", "--classifier", str(clf_dir), "--input",
                            str(data), "--text-column", "text", "--id-column", "id", "--output",
                            str(work / f"out_{engine}"), "--engine", engine, "--cache-entries", "0",
                            "--batch-rows", str(batch_rows)], capture_output=True, text=True, env=env, cwd=ROOT)
        wall = time.perf_counter() - t
        if p.returncode:
            print(p.stderr[-3000:])
            raise SystemExit(f"{engine} failed")
        summary = json.loads([l for l in p.stderr.splitlines() if l.startswith('{"job"')][-1])
        out[engine] = {"wall_s": round(wall, 1), "job_s": summary["seconds"], "engine": summary["engine"],
                       "rows_per_s": round(n / summary["seconds"], 1)}
        print(work.name, engine, out[engine], flush=True)
    a = pd.read_parquet(work / "out_local").sort_values("id")
    b = pd.read_parquet(work / "out_ray").sort_values("id")
    out["same_labels"] = float((a["label"].to_numpy() == b["label"].to_numpy()).mean())
    out["ray_vs_local"] = round(out["local"]["job_s"] / out["ray"]["job_s"], 3)
    print(f"{work.name}: Ray GPU actors / in-process: {out['ray_vs_local']:.2f}x throughput; same labels on "
          f"{out['same_labels']:.2%} of rows", flush=True)
    return out


def _prompt_section(work: Path, ag: pd.DataFrame, pool: list, env: dict, proto_rows: int = 200, n: int = 3000) -> dict:
    """Freeze a prompt-template run (SmolLM2 on the GPU) on 200 rows, then batch 3,000 unique rows both ways."""
    from llm_backend.batch.frozen import save_classifier
    from llm_backend.batch.freeze_prompt import freeze_prompt_result
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.prompts.runner import RunConfig, TemplateRun
    from llm_backend.prompts.templates import PromptTemplate

    lm = get_model(ModelRegistry().get("SmolLM2-135M-Instruct"))
    tpl = PromptTemplate("news", "Article: {{ text }}\n\nIs this article about world, sports, business or science? "
                         "Answer with one word.", {"World": ["world"], "Sports": ["sports"], "Business": ["business"],
                                                   "Sci/Tech": ["science", "technology"]})
    proto = ag.sample(proto_rows, random_state=1).reset_index(drop=True)
    res = TemplateRun(tpl, proto, "text", "label", RunConfig(mode="score", calibration="centering"), lm=lm).run_all()
    clf_dir = save_classifier(freeze_prompt_result(res, lm, name="gpu-prompt"), work / "clf_prompt")
    rng = np.random.default_rng(1)
    texts = [f"{pool[i]} (#{k})" for k, i in enumerate(rng.integers(0, len(pool), n))]
    pd.DataFrame({"id": np.arange(n), "text": texts}).to_parquet(work / "in_prompt.parquet")
    (work / "prompt").mkdir(exist_ok=True)
    return {"rows": n, **_compare(clf_dir, work / "in_prompt.parquet", work / "prompt", n, env, batch_rows=256)}


if __name__ == "__main__":
    main()
