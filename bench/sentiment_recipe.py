"""The judged sentiment recipe, run as a user would, and the scoring defaults around it (dev / held-out).

Part 1, the recipe exactly: ``python -m llm_backend prompt --mode score`` with its defaults, the template
"Review: {{ text }} / Is this review positive or negative? Answer:" and verbalizers negative: [negative, bad],
positive: [positive, good], on the positive/negative rows of the bundled product reviews (no movie-review set is
available offline). Accuracy on all of them.

Part 2, the defaults around it: every row's prompt (plus the content-free and question-only prompts) is scored once
with the answer words as written and Capitalised (an instruct model starts its reply with a capital letter), then
each combination of answer casing x word aggregation (max, mean, log-sum-exp = "any of the words") x calibration
(none, centering, contextual, domain PMI) is evaluated on a seeded dev half and a held-out half. A default may only
change when it wins on dev *and* holds on held-out; the held-out figure is the one to quote.

Usage: ``nice .venv/bin/python bench/sentiment_recipe.py [--model NAME]`` (writes
``bench/results/sentiment_recipe_<model>.md``; with ``--model``, part 1 is the CLI's defaults plus ``--model NAME``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_env import ROOT  # first: sys.path, model cache, offline

import numpy as np
import pandas as pd
from shared_data import markdown_table

TEMPLATE = """name: Movie-style review sentiment
template: |-
  Review: {{ text }}
  Is this review positive or negative? Answer:
verbalizer:
  negative: [negative, bad]
  positive: [positive, good]
"""


def _rows() -> pd.DataFrame:
    from llm_backend.data.files import load_sample

    df = load_sample("Product reviews").df
    return df[df["sentiment"].isin(["positive", "negative"])].reset_index(drop=True)[["text", "sentiment"]]


def recipe(tmp: Path, df: pd.DataFrame, model: str | None = None) -> dict:
    """Part 1: the CLI, as documented, with its defaults (and ``--model`` when one is named)."""
    (tmp / "sentiment.yaml").write_text(TEMPLATE)
    df.to_csv(tmp / "reviews.csv", index=False)
    cmd = [sys.executable, "-m", "llm_backend", "prompt", "--data", str(tmp / "reviews.csv"), "--template-file",
           str(tmp / "sentiment.yaml"), "--mode", "score", "--gold-column", "sentiment", "--out",
           str(tmp / "pred.csv"), "--metrics-json", str(tmp / "m.json")] + (["--model", model] if model else [])
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True)
    return json.loads((tmp / "m.json").read_text())


def _aggregate(cols: np.ndarray, how: str) -> np.ndarray:
    if how == "max":
        return cols.max(axis=1)
    if how == "mean":
        return cols.mean(axis=1)
    top = cols.max(axis=1, keepdims=True)  # log-sum-exp: log P(the answer is any of the label's words)
    return (top + np.log(np.exp(cols - top).sum(axis=1, keepdims=True)))[:, 0]


def options(tmp: Path, df: pd.DataFrame, model: str | None = None) -> pd.DataFrame:
    """Part 2: one scoring pass, then every combination evaluated on dev and held-out halves."""
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.prompts.lm_scoring import continuation_logprobs
    from llm_backend.prompts.runner import RunConfig, TemplateRun, default_prompt_model
    from llm_backend.prompts.templates import load_template_file

    reg = ModelRegistry()
    lm = get_model(reg.get(model) if model else default_prompt_model(reg))
    tpl = load_template_file(tmp / "sentiment.yaml")
    run = TemplateRun(tpl, df, "text", "sentiment", RunConfig(calibration="none"), lm=lm)
    prompts = [run.prompt_for(p) for p in range(len(run.rows))]
    extra = run.content_free_prompts() + [run.domain_prompt()]
    labels = list(tpl.verbalizer)
    words, owners, cased = [], [], []
    for j, lab in enumerate(labels):
        for w in tpl.verbalizer[lab]:
            for variant, is_cased in ((w, False), (w[:1].upper() + w[1:], True)):
                words.append(variant if run.chat else " " + variant)
                owners.append(j)
                cased.append(is_cased)
    raw = continuation_logprobs(lm, prompts + extra, words)
    owners_a, cased_a = np.asarray(owners), np.asarray(cased)
    gold = np.array([labels.index(g) for g in df["sentiment"]])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(df))
    halves = {"dev": order[: len(df) // 2], "held-out": order[len(df) // 2:]}
    rows = []
    for casing in ("as written", "as written + Capitalised"):
        use = np.ones(len(words), bool) if casing != "as written" else ~cased_a
        for agg in ("max", "mean", "logsumexp"):
            scores = np.stack([_aggregate(raw[:, use & (owners_a == j)], agg) for j in range(len(labels))], axis=1)
            rows_s, cf, dom = scores[: len(prompts)], scores[len(prompts):-1].mean(axis=0), scores[-1]
            for cal in ("none", "centering", "contextual", "pmi"):
                row = {"answer casing": casing, "words per label": agg, "calibration": cal}
                for name, idx in halves.items():
                    s = rows_s[idx]
                    s = {"none": s, "centering": s - s.mean(axis=0), "contextual": s - cf, "pmi": s - dom}[cal]
                    row[f"acc. {name} (n={len(idx)})"] = round(float((s.argmax(axis=1) == gold[idx]).mean()), 3)
                rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None, help="registered causal LM (default: the prompt-scoring default)")
    args = ap.parse_args()
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.prompts.runner import default_prompt_model

    name = args.model or default_prompt_model(ModelRegistry()).name
    df = _rows()
    with tempfile.TemporaryDirectory() as tmp:
        metrics = recipe(Path(tmp), df, args.model)
        print(metrics, flush=True)
        grid = options(Path(tmp), df, args.model)
    dev = next(c for c in grid.columns if c.startswith("acc. dev"))
    held = next(c for c in grid.columns if "held" in c)
    from llm_backend.prompts.runner import DEFAULT_AGGREGATE

    default = grid[(grid["answer casing"] == "as written") & (grid["words per label"] == DEFAULT_AGGREGATE)
                   & (grid["calibration"] == "centering")].iloc[0]
    best = grid.sort_values(dev, ascending=False, kind="stable").iloc[0]
    md = ("# The judged sentiment recipe on the bundled product reviews\n\n"
          f"`nice .venv/bin/python bench/sentiment_recipe.py{' --model ' + args.model if args.model else ''}`; "
          f"{name}{' (the prompt-scoring default)' if not args.model else ''}, "
          f"the {len(df)} positive/negative rows of `samples/product_reviews.csv` (no movie-review set offline).\n\n"
          f"## Part 1: `python -m llm_backend prompt --mode score{' --model ' + args.model if args.model else ''}` "
          "with its defaults\n\n"
          f"Template `Review: {{{{ text }}}}` / `Is this review positive or negative? Answer:`, verbalizers "
          f"negative: [negative, bad], positive: [positive, good]: **accuracy {metrics['accuracy']:.3f}** "
          f"(macro-F1 {metrics['macro_f1']:.3f}) on {metrics['rows']} rows.\n\n"
          "## Part 2: the defaults around it (seeded dev / held-out halves)\n\n"
          f"Current defaults (as written, {DEFAULT_AGGREGATE}, centering): dev {default[dev]}, held-out {default[held]}. "
          f"Best on dev: {best['answer casing']}, {best['words per label']}, {best['calibration']}: dev {best[dev]}, "
          f"held-out {best[held]}. With {len(df) // 2} rows per half, one row is {1 / (len(df) // 2):.3f}; "
          "differences under ~0.1 are noise.\n\n" + markdown_table(grid) + "\n")
    print(md)
    (ROOT / "bench" / "results" / f"sentiment_recipe_{name}.md").write_text(md)


if __name__ == "__main__":
    main()
