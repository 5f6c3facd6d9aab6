"""Causal-LM prompt scoring speed, measured side by side in one run (compare ratios, not seconds: shared CPU).

Part 1, one-pass verbalizer scoring vs one forward per (text, label): real AG News texts with the LM verbalizer's
chat prompt and 5 label phrases (single- and multi-token). Each path runs in its own child process so its peak
resident memory (``ru_maxrss``, model included) is its own; the script checks both give the same argmax.

Part 2, few-shot cost: the shipped topic template on AG News rows, k=0 vs k=4 examples per label (16 shared
demonstrations, seeded random), with the shared-prefix KV cache (the demonstrations run once per run), and k=4
without it on a few rows for reference. Time per text is what a user waits for.

Usage: ``nice .venv/bin/python bench/lm_scoring_speed.py [--n 48] [--n-fewshot 48] [--n-plain 8]``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("ZSS_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

LABELS = ["World", "Sports", "Business", "Sci/Tech", "Health and medicine"]


def _texts(n: int) -> list[str]:
    from shared_data import ag_news

    return ag_news()["text"].sample(n, random_state=0).tolist()


def _lm(name: str | None):
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry

    reg = ModelRegistry()
    return get_model(reg.get(name) if name else reg.default("causal_lm"))


def child(path: str, n: int, out: str, model: str | None) -> None:
    """One scoring path in a fresh process: prints seconds and peak RSS as JSON, saves the scores."""
    from llm_backend.data.labels import make_labels
    from llm_backend.prompts.lm_scoring import (
        continuation_logprobs,
        continuation_logprobs_naive,
    )
    from llm_backend.scorers.lm import LMVerbalizerScorer

    loaded = _lm(model)
    labels = make_labels(LABELS)
    prompts = LMVerbalizerScorer(loaded).prompts(_texts(n), labels)
    cands = [lab.phrase for lab in labels]
    fn = continuation_logprobs if path == "fast" else continuation_logprobs_naive
    fn(loaded, prompts[:1], cands)  # warm-up
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    scores = fn(loaded, prompts, cands)
    secs = time.perf_counter() - t0
    np.save(out, scores)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tokens = [len(loaded.tokenizer(p)["input_ids"]) for p in prompts]
    print(json.dumps({"seconds": secs, "peak_rss_mb": peak, "rss_before_mb": base_rss,
                      "mean_prompt_tokens": float(np.mean(tokens))}))


def _run_child(path: str, n: int, tmp: Path, model: str | None) -> dict:
    out = tmp / f"{path}.npy"
    cmd = [sys.executable, __file__, "--child", path, "--n", str(n), "--out", str(out)]
    if model:
        cmd += ["--model", model]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["scores"] = np.load(out)
    return info


def fewshot(n: int, n_plain: int, model: str | None) -> list[tuple[str, str]]:
    import pandas as pd
    from shared_data import ag_news

    from llm_backend.prompts.runner import RunConfig, TemplateRun
    from llm_backend.prompts.templates import load_template_file

    lm = _lm(model)
    tpl = load_template_file(ROOT / "templates" / "topic.yaml")
    data = ag_news()
    ev = data.sample(n, random_state=1)
    pool = pd.concat([g.sample(10, random_state=1) for _, g in data.drop(ev.index).groupby("label")])
    df = pd.concat([ev, pool]).reset_index(drop=True)
    rows = list(range(n))
    timings = {}
    for name, k, share, rows_used in (("k=0", 0, True, rows), ("k=4 shared prefix", 4, True, rows),
                                      ("k=4 no prefix cache", 4, False, rows[:n_plain])):
        run = TemplateRun(tpl, df, "text", "label", RunConfig(few_shot=k, seed=0, share_prefix=share), lm=lm,
                          rows=rows_used)
        for p in range(len(rows_used)):  # prompts are built outside the timing (same work for every setting)
            run.prompt_for(p)
        t0 = time.perf_counter()
        res = run.run_all()
        secs = time.perf_counter() - t0
        tokens = np.mean([run.count_tokens(p) for p in res.prompts])
        timings[name] = (secs / len(rows_used), tokens, len(rows_used))
        print(name, timings[name], flush=True)
    k0 = timings["k=0"][0]
    out = []
    for name, (per_text, tokens, m) in timings.items():
        out.append((f"{name}: s per text ({m} texts, {tokens:.0f} prompt tokens)",
                    f"{per_text:.3f} s = {per_text / k0:.2f}x k=0"))
    out.append(("k=4 no cache / k=4 shared prefix", f"{timings['k=4 no prefix cache'][0] / timings['k=4 shared prefix'][0]:.1f}x"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--n-fewshot", type=int, default=48)
    ap.add_argument("--n-plain", type=int, default=8)
    ap.add_argument("--model", default=None, help="registered causal LM name (default: the registry's default)")
    ap.add_argument("--child", choices=("fast", "naive"), default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--skip-onepass", action="store_true")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.n, args.out, args.model)
        return
    import tempfile

    import torch

    rows: list[tuple[str, str]] = [("model", args.model or "default causal LM"),
                                   ("torch threads", str(torch.get_num_threads()))]
    if not args.skip_onepass:
        with tempfile.TemporaryDirectory() as tmp:
            fast = _run_child("fast", args.n, Path(tmp), args.model)
            naive = _run_child("naive", args.n, Path(tmp), args.model)
        diff = float(np.abs(fast["scores"] - naive["scores"]).max())
        agree = float((fast["scores"].argmax(1) == naive["scores"].argmax(1)).mean())
        rows += [
            ("texts x label phrases", f"{args.n} x {len(LABELS)} (prompt {fast['mean_prompt_tokens']:.0f} tokens)"),
            ("naive: one forward per (text, label)", f"{naive['seconds']:.1f} s, peak RSS {naive['peak_rss_mb']:.0f} MB"),
            ("one pass: shared prefix + batches + last logits + KV cache for label tokens",
             f"{fast['seconds']:.1f} s, peak RSS {fast['peak_rss_mb']:.0f} MB"),
            ("speed-up (naive / one pass)", f"{naive['seconds'] / fast['seconds']:.1f}x"),
            ("peak RSS one pass / naive", f"{fast['peak_rss_mb'] / naive['peak_rss_mb']:.2f}x"),
            ("max abs difference of label log-likelihoods", f"{diff:.1e}"),
            ("same argmax", f"{agree:.0%}"),
        ]
        print(rows, flush=True)
    rows += fewshot(args.n_fewshot, args.n_plain, args.model)
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    md = ("# Causal-LM prompt scoring speed\n\n"
          f"`nice .venv/bin/python bench/lm_scoring_speed.py --n {args.n} --n-fewshot {args.n_fewshot} "
          f"--n-plain {args.n_plain}`; AG News test texts; all settings measured in this one run on a shared "
          "2-core CPU under heavy load from other jobs (compare the ratios, not the seconds).\n\n"
          "| measure | value |\n|---|---|\n" + table + "\n")
    print(md)
    out = ROOT / "bench" / "results" / "lm_scoring_speed.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)


if __name__ == "__main__":
    main()
