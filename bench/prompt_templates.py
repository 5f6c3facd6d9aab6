"""Accuracy of the shipped templates with SmolLM2 (score mode), zero-shot and k = 1/4/8 examples per label.

Data: AG News test (topic template), Banking77 train (intent template), bundled product_reviews (sentiment). For each
data set, ``--n`` evaluation rows (seeded) plus a pool of up to 10 gold rows per label for the examples (never the
row itself). Few-shot examples are seeded random; at most 32 examples per prompt (Banking77's 77 labels x k would
not fit). Accuracy is reported raw and with prior centering (subtract each label's mean score; no extra model
calls). Seconds per 100 texts are measured in this run (shared CPU: compare within the table only).
Usage: ``.venv/bin/python bench/prompt_templates.py [--n 200] [--ks 0,1,4,8] [--datasets topic,intent,sentiment]``.
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

import pandas as pd  # noqa: E402
from shared_data import ag_news, banking77, markdown_table  # noqa: E402

from llm_backend.data.files import load_sample  # noqa: E402
from llm_backend.evaluation.metrics import evaluate  # noqa: E402
from llm_backend.models.loading import get_model  # noqa: E402
from llm_backend.models.registry import ModelRegistry  # noqa: E402
from llm_backend.prompts.runner import RunConfig, TemplateRun  # noqa: E402
from llm_backend.prompts.templates import load_template_file  # noqa: E402
from llm_backend.scorers.calibration import calibrate  # noqa: E402


def _split(df: pd.DataFrame, n: int, pool_per_label: int = 10, seed: int = 0) -> tuple[pd.DataFrame, list[int]]:
    """Evaluation rows first (seeded sample), then a per-label example pool drawn from the other rows."""
    ev = df.sample(min(n, len(df)), random_state=seed)
    rest = df.drop(ev.index)
    pool = pd.concat([g.sample(min(pool_per_label, len(g)), random_state=seed) for _, g in rest.groupby("label")])
    both = pd.concat([ev, pool]).reset_index(drop=True)
    return both, list(range(len(ev)))


def datasets(n: int) -> dict[str, tuple[str, pd.DataFrame, list[int]]]:
    out = {}
    out["topic"] = ("AG News", *_split(ag_news(), n))
    out["intent"] = ("Banking77", *_split(banking77(), n))
    rev = load_sample("Product reviews").df.rename(columns={"sentiment": "label"})
    out["sentiment"] = ("product_reviews", *_split(rev, n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--ks", default="0,1,4,8")
    ap.add_argument("--datasets", default="topic,intent,sentiment")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    lm = get_model(ModelRegistry().default("causal_lm"))
    data = datasets(args.n)
    rows = []
    for key in args.datasets.split(","):
        title, df, ev = data[key]
        tpl = load_template_file(ROOT / "templates" / f"{key}.yaml")
        for k in ks:
            run = TemplateRun(tpl, df, "text", "label", RunConfig(few_shot=k, seed=0), lm=lm, rows=ev)
            t0 = time.perf_counter()
            res = run.run_all()
            secs = time.perf_counter() - t0
            centered, _ = calibrate(res.scores, "centering")
            pred_c = [res.labels[j] for j in centered.argmax(axis=1)]
            acc_c = evaluate(res.gold, pred_c, res.labels)["accuracy"]
            tokens = sum(run.count_tokens(p) for p in res.prompts) / len(res.prompts)
            row = {"data": title, "template": tpl.name, "labels": len(tpl.labels), "k": k, "n": len(ev),
                   "accuracy": round(res.metrics["accuracy"], 3), "acc. centered": round(acc_c, 3),
                   "macro-F1": round(res.metrics["macro_f1"], 3), "prompt tokens": round(tokens),
                   "s / 100 texts": round(100 * secs / len(ev), 1)}
            rows.append(row)
            print(row, flush=True)
            _write(rows, args)  # after every setting, so a cut-short run still leaves its numbers


def _write(rows: list[dict], args: argparse.Namespace) -> None:
    table = pd.DataFrame(rows)
    md = ("# Shipped prompt templates with SmolLM2-135M-Instruct (score mode)\n\n"
          f"`.venv/bin/python bench/prompt_templates.py --n {args.n} --ks {args.ks} --datasets {args.datasets}`. "
          "Chance: AG News 0.25, Banking77 0.013, product_reviews 0.33. Seeded random examples, at most 32 per "
          "prompt; seconds on a shared 2-core CPU.\n\n" + markdown_table(table) + "\n")
    out = ROOT / "bench" / "results" / "prompt_templates.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)


if __name__ == "__main__":
    main()
