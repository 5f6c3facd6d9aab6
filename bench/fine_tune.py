"""Few-shot training quality and time on Banking77 and AG News, beside the zero-shot embedding scorer.

For each dataset, method, k (examples per class) and seed: train on k seeded rows per class, test on a seeded
sample of rows not used for training (the same test rows for every method of one seed), report macro-F1/accuracy
and wall time. Results are appended to ``bench/results/fine_tune.md`` / ``.json`` after every run, so a long grid
that is interrupted still leaves its numbers.

Usage::

    .venv/bin/python bench/fine_tune.py                       # the default grid (see --help)
    .venv/bin/python bench/fine_tune.py --datasets ag_news --methods head,setfit --ks 8 --seeds 0
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZSS_CACHE_DIR", str(ROOT / ".cache"))

from shared_data import ag_news, banking77, few_shot_split, markdown_table  # noqa: E402

from llm_backend.data.labels import make_labels  # noqa: E402
from llm_backend.evaluation.metrics import evaluate  # noqa: E402
from llm_backend.models.loading import get_model  # noqa: E402
from llm_backend.models.registry import ModelRegistry  # noqa: E402
from llm_backend.scorers.base import decide  # noqa: E402
from llm_backend.scorers.pipeline import CalibratedScorer, scored  # noqa: E402
from llm_backend.scorers.zero_shot import DEFAULT_CALIBRATION  # noqa: E402
from llm_backend.scorers.embedding import EmbeddingScorer  # noqa: E402
from llm_backend.training.distillation import measure_speed  # noqa: E402
from llm_backend.training.loop import TrainConfig  # noqa: E402
from llm_backend.training.trained_models import predict, scorer_for  # noqa: E402
from llm_backend.training.runs import zero_shot_scorer  # noqa: E402
from llm_backend.training.trainer import train  # noqa: E402

OUT = ROOT / "bench" / "results"


def load(name: str) -> pd.DataFrame:
    return ag_news() if name == "ag_news" else banking77()


TEST_SIZE = {"ag_news": 1000, "banking77": 1500}


def zero_shot(scorer: EmbeddingScorer, texts: list[str], gold: list[str], classes: list[str]) -> dict:
    """The zero-shot page's default method through the one decision pipeline (prior centering included), i.e.
    the same baseline the fine-tune page and `train` report (issue 11; before, this column was uncalibrated)."""
    labels = make_labels(classes)
    out = scored(CalibratedScorer(scorer, DEFAULT_CALIBRATION), texts, labels, calibration="none")
    return evaluate(gold, decide(out.probs, classes).labels, classes)


def write(rows: list[dict], args: argparse.Namespace) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.out_name}.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    df = pd.DataFrame(rows)
    lines = ["# Few-shot fine-tuning benchmark", "",
             f"Command: `.venv/bin/python bench/fine_tune.py {' '.join(sys.argv[1:])}`  ",
             f"Machine: {os.cpu_count()} CPU cores shared with other jobs (timings are indicative only; compare "
             "within one table). Model: all-MiniLM-L6-v2 (bundled). Test rows: seeded sample of rows not used for "
             "training, the same rows for every method of a seed.", ""]
    if not df.empty:
        agg = (df.groupby(["dataset", "k", "method"])
               .agg(macro_f1=("macro_f1", "mean"), f1_std=("macro_f1", "std"), accuracy=("accuracy", "mean"),
                    seeds=("seed", "nunique"), train_s=("train_s", "mean"))
               .reset_index())
        agg["macro_f1"] = (100 * agg["macro_f1"]).round(1)
        agg["f1_std"] = (100 * agg["f1_std"]).round(1)
        agg["accuracy"] = (100 * agg["accuracy"]).round(1)
        agg["train_s"] = agg["train_s"].round(1)
        lines += ["## Mean over seeds (macro-F1 and accuracy in %)", "", markdown_table(agg), ""]
        lines += ["## Every run", "", markdown_table(df), ""]
    (OUT / f"{args.out_name}.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="ag_news,banking77")
    p.add_argument("--methods", default="zero-shot,head,setfit,finetune,lora,distill",
                   help="also: head+pseudo, setfit+pseudo (refit the head on gold + confident pseudo-labels of "
                        "2,000 unlabelled pool rows)")
    p.add_argument("--ks", default="8,16")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--slow-seeds", default="0", help="seeds for setfit/finetune/lora/distill (CPU is scarce)")
    p.add_argument("--slow-ks", default="8", help="k values for the slow methods")
    p.add_argument("--num-pairs", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="keep rows already in the results file")
    p.add_argument("--out-name", default="fine_tune", help="results file stem under bench/results/")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; 1 is several times faster when other jobs share the cores")
    args = p.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    registry = ModelRegistry()
    embedder = get_model(registry.default("embedder"))
    zs = EmbeddingScorer(embedder)
    rows: list[dict] = []
    if args.resume and (OUT / f"{args.out_name}.json").is_file():
        rows = json.loads((OUT / f"{args.out_name}.json").read_text())
    done = {(r["dataset"], r["k"], r["seed"], r["method"]) for r in rows}
    slow = {"setfit", "setfit+pseudo", "finetune", "finetune-head", "lora", "distill"}
    for name in args.datasets.split(","):
        df = load(name)
        labels = df["label"].astype(str).tolist()
        for k in [int(x) for x in args.ks.split(",")]:
            for seed in [int(s) for s in args.seeds.split(",")]:
                train_idx, test_idx, pool, rng = few_shot_split(labels, k, seed, TEST_SIZE[name])
                tr_texts = [df["text"].iloc[i] for i in train_idx]
                tr_labels = [labels[i] for i in train_idx]
                te_texts = df["text"].iloc[test_idx].tolist()
                te_gold = [labels[i] for i in test_idx]
                classes = sorted(set(tr_labels))
                for method in args.methods.split(","):
                    if (name, k, seed, method) in done:
                        continue
                    if method in slow and (seed not in [int(s) for s in args.slow_seeds.split(",")]
                                           or k not in [int(x) for x in args.slow_ks.split(",")]):
                        continue
                    t0 = time.perf_counter()
                    extra: dict = {}
                    if method == "zero-shot":
                        m = zero_shot(zs, te_texts, te_gold, classes)
                        train_s = 0.0
                    else:
                        fine = method in ("finetune", "lora")
                        base, _, pseudo = method.partition("+")
                        cfg = TrainConfig(method=base, seed=seed, num_pairs=args.num_pairs,
                                          val_fraction=0.2 if fine else 0.0, student="small",
                                          pseudo_labels=pseudo == "pseudo")
                        teacher = unlabelled = None
                        if pseudo:
                            unlabelled = [df["text"].iloc[i] for i in rng.permutation(pool)[:2000]]
                        if method == "distill":
                            # The page's and `train`'s teacher: the calibrated zero-shot scorer (issue 11; before,
                            # the bench distilled the raw, uncalibrated similarity scores).
                            teacher = zero_shot_scorer(embedder, make_labels(classes))
                            unlabelled = [df["text"].iloc[i] for i in rng.permutation(pool)[:1000]]
                        res = train(tr_texts, tr_labels, cfg, embedder, teacher=teacher, unlabelled=unlabelled or ())
                        train_s = res.wall_s
                        pred, _ = predict(res.model, te_texts)
                        m = evaluate(te_gold, pred, res.classes)
                        if method == "distill":
                            t = zero_shot(zs, te_texts, te_gold, classes)
                            extra = {"teacher_macro_f1": round(t["macro_f1"], 4),
                                     "speedup": round(measure_speed(scorer_for(res.model), te_texts[:128], classes)
                                                      / measure_speed(teacher, te_texts[:128], classes), 2)}
                    row = {"dataset": name, "k": k, "seed": seed, "method": method, "n_train": len(tr_texts),
                           "n_test": len(te_texts), "macro_f1": round(m["macro_f1"], 4),
                           "accuracy": round(m["accuracy"], 4), "train_s": round(train_s, 1),
                           "total_s": round(time.perf_counter() - t0, 1), **extra}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    write(rows, args)
    write(rows, args)


if __name__ == "__main__":
    main()
