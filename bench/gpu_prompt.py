"""GPU vs CPU throughput of the prompt-scoring path (shared-prefix KV cache, batching), side by side in one run.

Runs the shipped topic template over AG News rows (bundled news headlines when the shared data is missing) with the
same :class:`TemplateRun` the page and the CLI use: k=0 and k=4 shared demonstrations, on CUDA (bf16/fp16, the
device's default dtype) and on the CPU (fp32), and reports texts per second, the GPU/CPU ratio and whether both
devices pick the same labels. Without CUDA it says so and measures the CPU only.

Usage (about 1-2 minutes on one H200 plus model loading)::

    .venv/bin/python bench/gpu_prompt.py [--model NAME_OR_FOLDER_OR_HUB_ID] [--n-gpu 512] [--n-cpu 64]

``--model`` takes a registered name (SmolLM2-135M-Instruct, Gemma-3-270M), a local model folder or a hub id (when
online). Output: ``bench/results/gpu_prompt.md``.
"""
from __future__ import annotations

import argparse
import time

from bench_env import ROOT  # first: sys.path, model cache, offline

import numpy as np
import pandas as pd
import torch


def _data(n: int) -> pd.DataFrame:
    from shared_data import AG_NEWS_CSV, ag_news

    if AG_NEWS_CSV.is_file():
        data = ag_news()
    else:
        from llm_backend.data.files import load_sample

        data = load_sample("news_headlines").df.rename(columns={"topic": "label"})
        print("shared AG News not found: using the bundled news headlines", flush=True)
    ev = data.sample(min(n, len(data) - 40), random_state=0)
    pool = pd.concat([g.sample(min(10, len(g)), random_state=0) for _, g in data.drop(ev.index).groupby("label")])
    return pd.concat([ev, pool]).reset_index(drop=True), len(ev)


def _template(labels: list[str]):
    from llm_backend.prompts.templates import PromptTemplate, load_template_file

    tpl = load_template_file(ROOT / "templates" / "topic.yaml")
    if set(labels) <= set(tpl.verbalizer):
        return tpl
    return PromptTemplate("topic", tpl.template, {lab: [lab.lower()] for lab in labels})


def _measure(loaded, df: pd.DataFrame, n: int, k: int) -> tuple[float, np.ndarray, list[str]]:
    from llm_backend.prompts.runner import RunConfig, TemplateRun

    tpl = _template(sorted(df["label"].unique()))
    run = TemplateRun(tpl, df, "text", "label", RunConfig(few_shot=k, seed=0, calibration="none"), lm=loaded,
                      rows=list(range(n)))
    for p in range(n):
        run.prompt_for(p)
    run.run_chunk(8)  # warm-up (kernels, allocator); counted out below
    if loaded.device.kind == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = run.run_all(chunk=256)
    if loaded.device.kind == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    return (n - 8) / secs, res.scores, run.notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None)
    ap.add_argument("--n-gpu", type=int, default=512)
    ap.add_argument("--n-cpu", type=int, default=64)
    args = ap.parse_args()
    from llm_backend.core.device import DeviceInfo, pick_device
    from llm_backend.models.loading import load_model
    from llm_backend.models.registry import ModelRegistry

    reg = ModelRegistry()
    spec = reg.resolve(args.model, "causal_lm") if args.model else reg.default("causal_lm")
    gpu = pick_device()
    rows = [("model", spec.name), ("GPU", gpu.name if gpu.kind == "cuda" else "none (CUDA not available)"),
            ("CPU threads", str(torch.get_num_threads()))]
    df, n_all = _data(max(args.n_gpu, args.n_cpu))
    cpu_lm = load_model(spec, DeviceInfo("cpu", "CPU", torch.float32))
    results = {}
    for k in (0, 4):
        n_cpu = min(args.n_cpu, n_all)
        cpu_rate, cpu_scores, _ = _measure(cpu_lm, df, n_cpu, k)
        rows.append((f"k={k} CPU fp32 texts/s ({n_cpu} texts)", f"{cpu_rate:.1f}"))
        results[k] = (cpu_rate, cpu_scores)
        print(rows[-1], flush=True)
    if gpu.kind == "cuda":
        del cpu_lm
        gpu_lm = load_model(spec, gpu)
        for k in (0, 4):
            n_gpu = min(args.n_gpu, n_all)
            rate, scores, notes = _measure(gpu_lm, df, n_gpu, k)
            cpu_rate, cpu_scores = results[k]
            m = min(len(scores), len(cpu_scores))
            same = float((scores[:m].argmax(1) == cpu_scores[:m].argmax(1)).mean())
            diff = float(np.abs(scores[:m] - cpu_scores[:m]).max())
            rows += [(f"k={k} GPU {gpu.dtype} texts/s ({n_gpu} texts)", f"{rate:.1f}"),
                     (f"k={k} GPU / CPU throughput", f"{rate / cpu_rate:.1f}x"),
                     (f"k={k} same label GPU vs CPU (first {m} texts)", f"{same:.0%} (max abs log-lik diff {diff:.2f})")]
            rows += [(f"k={k} note", n) for n in notes if "memory" in n]
            print(rows[-3:], flush=True)
        rows.append(("peak GPU memory", f"{torch.cuda.max_memory_allocated() / 1024**3:.2f} GiB"))
    else:
        print("CUDA is not available here: measured the CPU only.")
    md = ("# Prompt scoring: GPU vs CPU\n\n`.venv/bin/python bench/gpu_prompt.py` - shipped topic template, "
          "TemplateRun score mode (shared-prefix KV cache, batched), seeded AG News rows.\n\n"
          "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n")
    print(md)
    out = ROOT / "bench" / "results" / "gpu_prompt.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)


if __name__ == "__main__":
    main()
