"""One-pass LM verbalizer scoring (prompt once + shared KV cache) vs the naive one-forward-per-label loop.

100 real AG News texts x 5 candidate label phrases (single- and multi-token), with the LM verbalizer's real chat
prompts, on SmolLM2-135M. Both paths run side by side in one process, so only their ratio is meaningful; the script
also checks they agree. Usage: ``.venv/bin/python bench/lm_scoring_speed.py [--n 100]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZSS_CACHE_DIR", str(ROOT / ".cache"))

import numpy as np  # noqa: E402
from shared_data import AG_NEWS_CSV, ag_news  # noqa: E402

from llm_backend.core.device import pick_device  # noqa: E402
from llm_backend.data.labels import make_labels  # noqa: E402
from llm_backend.models.loading import get_model  # noqa: E402
from llm_backend.models.registry import ModelRegistry  # noqa: E402
from llm_backend.prompts.lm_scoring import (  # noqa: E402
    candidate_token_counts,
    continuation_logprobs,
    continuation_logprobs_naive,
)
from llm_backend.scorers.lm import LMVerbalizerScorer  # noqa: E402

LABELS = ["World", "Sports", "Business", "Sci/Tech", "Health and medicine"]


def load_texts(n: int) -> list[str]:
    if AG_NEWS_CSV.is_file():
        return ag_news()["text"].sample(n, random_state=0).tolist()
    from llm_backend.data.files import load_sample

    return load_sample("news_headlines").df["text"].head(n).tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100)
    args = ap.parse_args()
    loaded = get_model(ModelRegistry().default("causal_lm"))
    texts = load_texts(args.n)
    labels = make_labels(LABELS)
    scorer = LMVerbalizerScorer(loaded)
    prompts = scorer.prompts(texts, labels)
    candidates = [lab.phrase for lab in labels]
    n_tokens = [len(loaded.tokenizer(p)["input_ids"]) for p in prompts]

    continuation_logprobs(loaded, prompts[:2], candidates)  # warm-up (allocator, kernels) for both paths
    t0 = time.perf_counter()
    fast = continuation_logprobs(loaded, prompts, candidates)
    t_fast = time.perf_counter() - t0
    print(f"fast path: {t_fast:.1f} s for {len(texts)} x {len(candidates)}", flush=True)
    t0 = time.perf_counter()
    slow = continuation_logprobs_naive(loaded, prompts, candidates)
    t_slow = time.perf_counter() - t0
    diff = float(np.abs(fast - slow).max())
    agree = float((fast.argmax(1) == slow.argmax(1)).mean())

    device = pick_device()
    rows = [
        ("texts x labels", f"{len(texts)} x {len(candidates)}"),
        ("label tokens", ", ".join(f"{c}={k}" for c, k in zip(candidates, candidate_token_counts(loaded, candidates)))),
        ("prompt tokens (mean / max)", f"{np.mean(n_tokens):.0f} / {max(n_tokens)}"),
        ("device", f"{device.kind} ({device.name}), torch threads={__import__('torch').get_num_threads()}"),
        ("naive: one forward per (text, label)", f"{t_slow:.1f} s"),
        ("fast: prompt once + KV cache for label tokens", f"{t_fast:.1f} s"),
        ("speed-up (naive / fast)", f"{t_slow / t_fast:.1f}x"),
        ("max abs difference fast vs naive (mean log-prob)", f"{diff:.2e}"),
        ("same argmax", f"{agree:.0%}"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    md = (
        "# LM verbalizer scoring speed\n\n"
        f"SmolLM2-135M-Instruct, {len(texts)} AG News test texts (seed 0) with the LM verbalizer's chat prompt, "
        f"{len(candidates)} label phrases. Both paths measured side by side in one run "
        "(`.venv/bin/python bench/lm_scoring_speed.py`); compare the ratio, not the seconds (shared CPU).\n\n"
        "| measure | value |\n|---|---|\n" + table + "\n"
    )
    print(md)
    out = ROOT / "bench" / "results" / "lm_scoring_speed.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)


if __name__ == "__main__":
    main()
