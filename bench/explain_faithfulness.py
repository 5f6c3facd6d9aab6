"""Are the attributions faithful, and is explaining one row interactive? Deletion test per scorer, and timing.

Deletion test (llm_backend.explain.faithfulness): for each row, explain the predicted label, then remove the k
top-attributed words and, separately, k random words (5 seeded draws averaged); a faithful attribution makes the
label's probability fall more in the first case. Reported per scorer and data set over seeded held-out rows: mean
drops, the share of rows where top-k beats random, and a one-sided paired Wilcoxon p-value.

Scorers: embedding similarity (MiniLM, occlusion; label vectors refined on the evaluated rows as a page run does),
a logistic head on MiniLM embeddings trained on 8 rows per class disjoint from the evaluated rows (occlusion), the
LM verbalizer (SmolLM2, gradient × input; AG News only — 77 labels make its prompt too long for CPU), and a
fine-tuned MiniLM sequence classifier (8 per class, gradient × input; AG News).

Speed: one row explained with the embedding scorer against a plain score of the same row, both with an empty
embedding cache, over 20 rows, in one run (ratio of medians).

Results go to bench/results/explain_faithfulness.{json,md} after every scorer, so an interrupted run keeps its
numbers. Usage::

    nice .venv/bin/python bench/explain_faithfulness.py                 # everything, 200 rows per figure
    nice .venv/bin/python bench/explain_faithfulness.py --scorers embedding,head --rows 200
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZSS_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llm_backend.models.embedding_cache import CACHE  # noqa: E402
from llm_backend.explain.explainer import explain_text  # noqa: E402
from llm_backend.explain.faithfulness import deletion_test, summarise  # noqa: E402
from llm_backend.explain.scoring import probability_function  # noqa: E402
from llm_backend.data.labels import make_labels  # noqa: E402
from llm_backend.models.loading import get_model  # noqa: E402
from llm_backend.models.registry import ModelRegistry  # noqa: E402
from llm_backend.scorers.embedding import EmbeddingScorer  # noqa: E402
from llm_backend.scorers.lm import LMVerbalizerScorer  # noqa: E402
from llm_backend.training.trained_models import scorer_for  # noqa: E402
from llm_backend.training.trainer import TrainConfig, train  # noqa: E402
from shared_data import ag_news, banking77, markdown_table  # noqa: E402

OUT = ROOT / "bench" / "results"
KS = (1, 3)


def split(df: pd.DataFrame, rows: int, per_class: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows: per_class per label, evaluated rows: a seeded sample of the rest)."""
    train_df = pd.concat([g.sample(per_class, random_state=seed) for _, g in df.groupby("label", sort=True)])
    rest = df.drop(train_df.index)
    return train_df, rest.sample(rows, random_state=seed + 1)


def run_deletion(scorer, texts: list[str], labels, corpus, method: str, on_progress=None, log_every: int = 25) -> dict:
    """Deletion test over ``texts``; ``on_progress(partial_result)`` every ``log_every`` rows (interrupted runs)."""
    notes: list[str] = []
    prob_fn = probability_function(scorer, labels, corpus, notes)
    rng = np.random.default_rng(0)
    per_k: dict[int, list] = {k: [] for k in KS}
    seconds, used = [], set()

    def result(done: int) -> dict:
        return {"method": "+".join(sorted(used)), "rows": done, "explain_s_mean": float(np.mean(seconds)),
                **{f"k{k}": summarise(per_k[k]) for k in KS}}

    for i, text in enumerate(texts):
        attr = explain_text(scorer, text, labels, method=method, corpus=corpus)
        seconds.append(attr.seconds)
        used.add(attr.method)
        for k in KS:
            per_k[k].append(deletion_test(attr, prob_fn, k, n_random=5, rng=rng))
        if (i + 1) % log_every == 0:
            print(f"  {i + 1}/{len(texts)} rows, {np.mean(seconds):.2f} s/row explain", file=sys.stderr, flush=True)
            if on_progress:
                on_progress(result(i + 1))
    return result(len(texts))


def speed(scorer: EmbeddingScorer, texts: list[str], labels) -> dict:
    """Median seconds: plain score of one row vs explaining it (occlusion), cache emptied before each."""
    plain, explain, words = [], [], []
    label_vecs = scorer.label_embeddings(labels)  # cached in both cases: the per-row cost is what is compared
    for text in texts:
        CACHE.clear()
        scorer.label_embeddings(labels)
        t0 = time.perf_counter()
        scorer.score([text], labels)
        plain.append(time.perf_counter() - t0)
        CACHE.clear()
        scorer.label_embeddings(labels)
        t0 = time.perf_counter()
        attr = explain_text(scorer, text, labels, corpus=None)
        explain.append(time.perf_counter() - t0)
        words.append(len(attr.words))
    del label_vecs
    return {"rows": len(texts), "median_words": float(np.median(words)), "plain_score_s": float(np.median(plain)),
            "explain_s": float(np.median(explain)), "explain_s_max": float(np.max(explain)),
            "ratio_explain_to_plain": float(np.median(explain) / np.median(plain))}


def write(results: dict) -> None:
    """Merge into the saved JSON (several runs with different --scorers may write side by side), then the table."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "explain_faithfulness.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    saved.setdefault("deletion", {}).update(results.get("deletion", {}))
    saved.update({k: v for k, v in results.items() if k != "deletion"})
    results = saved
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    rows = []
    for key, r in results.get("deletion", {}).items():
        for k in KS:
            s = r[f"k{k}"]
            rows.append({"scorer / data": key, "method": r["method"], "k": k, "rows": s.get("n", 0),
                         "drop top-k": f"{s.get('mean_drop_top', float('nan')):.4f}",
                         "drop random-k": f"{s.get('mean_drop_random', float('nan')):.4f}",
                         "ratio": f"{s.get('mean_drop_top', 0) / max(s.get('mean_drop_random', 0), 1e-9):.1f}×",
                         "top beats random": f"{100 * s.get('share_top_beats_random', float('nan')):.0f}%",
                         "Wilcoxon p": f"{s.get('wilcoxon_p', float('nan')):.1e}",
                         "s/row": f"{r['explain_s_mean']:.2f}"})
    md = ["# Explain: deletion test and speed", "", "Produced by `bench/explain_faithfulness.py` (see its docstring).",
          "Drops are in the explained (predicted) label's probability; random-k is the mean of 5 seeded draws.", ""]
    if rows:
        md.append(markdown_table(pd.DataFrame(rows)))
    if "speed" in results:
        s = results["speed"]
        md += ["", f"**Speed** (embedding scorer, MiniLM, CPU, {s['rows']} AG News rows, median {s['median_words']:.0f} "
               f"words): explaining a row takes {s['explain_s']:.3f} s (max {s['explain_s_max']:.3f} s), a plain score "
               f"of that row {s['plain_score_s']:.3f} s: **{s['ratio_explain_to_plain']:.1f}×** a plain score."]
    md += ["", f"Load average of the shared 2-core machine when the run started: {results.get('load', '')}"]
    (OUT / "explain_faithfulness.md").write_text("\n".join(md) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--scorers", default="speed,embedding,head,finetune,lm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed-rows", type=int, default=20)
    ap.add_argument("--datasets", default="ag_news,banking77")
    ap.add_argument("--lm-rows", type=int, default=None, help="rows for the LM (default --rows; it is the slowest)")
    args = ap.parse_args()
    wanted = args.scorers.split(",")
    reg = ModelRegistry()
    embedder = get_model(reg.default("embedder"))
    emb_scorer = EmbeddingScorer(embedder)
    data = {"ag_news": ag_news(), "banking77": banking77()}
    results: dict = {"deletion": {}, "load": os.getloadavg()}
    splits = {name: split(df, args.rows, 8, args.seed) for name, df in data.items()}
    label_sets = {name: make_labels(sorted(df["label"].unique())) for name, df in data.items()}

    def record(key: str):
        def _save(partial: dict) -> None:
            results["deletion"][key] = partial
            write(results)
        return _save

    # Cheap scorers on both data sets first; the LM (slowest) last, saving partial figures as it goes.
    for name in [d for d in data if d in args.datasets.split(",")]:
        train_df, test_df = splits[name]
        labels, texts = label_sets[name], test_df["text"].tolist()
        if name == "ag_news" and "speed" in wanted:
            results["speed"] = speed(emb_scorer, texts[: args.speed_rows], labels)
            print(f"speed: {results['speed']}", file=sys.stderr, flush=True)
            write(results)
        if "embedding" in wanted:
            print(f"{name}: embedding", file=sys.stderr, flush=True)
            key = f"embedding / {name}"
            record(key)(run_deletion(emb_scorer, texts, labels, texts, "auto", record(key)))
        if "head" in wanted:
            print(f"{name}: head", file=sys.stderr, flush=True)
            res = train(train_df["text"].tolist(), train_df["label"].tolist(), TrainConfig(method="head"), embedder)
            key = f"trained head / {name}"
            record(key)(run_deletion(scorer_for(res.model), texts, labels, None, "auto", record(key)))
    train_df, test_df = splits["ag_news"]
    labels, texts = label_sets["ag_news"], test_df["text"].tolist()
    if "finetune" in wanted:
        print("ag_news: finetune", file=sys.stderr, flush=True)
        res = train(train_df["text"].tolist(), train_df["label"].tolist(), TrainConfig(method="finetune", epochs=8),
                    embedder)
        key = "fine-tuned MiniLM / ag_news"
        record(key)(run_deletion(scorer_for(res.model), texts, labels, None, "auto", record(key)))
    if "lm" in wanted:
        print("ag_news: lm", file=sys.stderr, flush=True)
        lm = LMVerbalizerScorer(get_model(reg.default("causal_lm")))
        key = "LM verbalizer (SmolLM2) / ag_news"
        record(key)(run_deletion(lm, texts[: args.lm_rows or args.rows], labels, None, "auto", record(key),
                                 log_every=10))
    print((OUT / "explain_faithfulness.md").read_text())


if __name__ == "__main__":
    main()
