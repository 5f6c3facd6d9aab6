"""Accuracy of the shipped templates (score mode), zero-shot and k = 1/4/8 examples per label.

Data: AG News test (topic template), Banking77 train (intent template), bundled product_reviews (sentiment). For each
data set, ``--n`` evaluation rows (seeded) plus a pool of up to 10 gold rows per label for the examples (never the
row itself). Few-shot examples are seeded random; at most 32 examples per prompt (Banking77's 77 labels x k would
not fit). Accuracy is reported raw, with prior centering (the default: subtract each label's mean score; no extra
model calls) and with domain-conditional PMI (one extra prompt). Runs use the shared-prefix KV cache. Seconds per
100 texts are measured in this run (shared CPU: compare within the table only). ``--order`` runs settings in the
given order (``topic:0,topic:1,...``) so a cut-short run still has the most useful ones; results are written after
every setting. Usage: ``nice .venv/bin/python bench/prompt_templates.py [--n 200] [--order topic:0,topic:4,...]``.
"""
from __future__ import annotations

import argparse
import json
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
    out["sentiment"] = ("product_reviews", *_split(rev, min(n, len(rev) - 30)))  # 150 rows: all there is
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--order", default="topic:0,topic:1,topic:4,sentiment:0,intent:0,topic:8,sentiment:1,"
                                       "sentiment:4,sentiment:8")
    ap.add_argument("--model", default=None, help="registered causal LM (default: the prompt-scoring default)")
    ap.add_argument("--append", action="store_true", help="keep the rows of earlier runs with the same --n")
    args = ap.parse_args()
    from llm_backend.prompts.runner import default_prompt_model

    reg = ModelRegistry()
    spec = reg.get(args.model) if args.model else default_prompt_model(reg)
    lm = get_model(spec)
    data = datasets(args.n)
    rows = _previous(args, spec.name) if args.append else []
    for item in args.order.split(","):
        key, k = item.split(":")
        k = int(k)
        title, df, ev = data[key]
        tpl = load_template_file(ROOT / "templates" / f"{key}.yaml")
        run = TemplateRun(tpl, df, "text", "label", RunConfig(few_shot=k, seed=0, calibration="none"), lm=lm, rows=ev)
        t0 = time.perf_counter()
        res = run.run_all(chunk=50)
        secs = time.perf_counter() - t0
        centered, _ = calibrate(res.scores, "centering")
        pmi = res.scores - run._domain_offsets()
        acc = {name: evaluate(res.gold, [res.labels[j] for j in sc.argmax(axis=1)], res.labels)
               for name, sc in (("raw", res.scores), ("centered", centered), ("pmi", pmi))}
        tokens = sum(run.count_tokens(p) for p in res.prompts) / len(res.prompts)
        row = {"data": title, "labels": len(tpl.labels), "k": k, "n": len(ev),
               "acc. raw": round(acc["raw"]["accuracy"], 3), "acc. centered (default)": round(acc["centered"]["accuracy"], 3),
               "macro-F1 centered": round(acc["centered"]["macro_f1"], 3), "acc. PMI": round(acc["pmi"]["accuracy"], 3),
               "prompt tokens": round(tokens), "shared prefix tokens": max((len(k_) for k_ in run.prefix_store._items), default=0),
               "s / 100 texts": round(100 * secs / len(ev), 1), "n_requested": args.n}
        rows = [r for r in rows if (r["data"], r["k"]) != (title, k)] + [row]
        rows.sort(key=lambda r: (r["data"], r["k"]))
        print(row, flush=True)
        _write(rows, args, spec.name)  # after every setting, so a cut-short run still leaves its numbers


def _out(args: argparse.Namespace, model: str, ext: str) -> Path:
    return ROOT / "bench" / "results" / f"prompt_templates{'' if args.model is None else '_' + model}.{ext}"


def _previous(args: argparse.Namespace, model: str) -> list[dict]:
    """Rows of earlier runs with the same --n (``--append``: settings run in several chunks, one table)."""
    path = _out(args, model, "json")
    if not path.is_file():
        return []
    saved = json.loads(path.read_text())
    return [r for r in saved if r.get("n_requested") == args.n]


def _write(rows: list[dict], args: argparse.Namespace, model: str) -> None:
    table = pd.DataFrame(rows).drop(columns=["n_requested"], errors="ignore")
    md = (f"# Shipped prompt templates with {model} (score mode)\n\n"
          f"`nice .venv/bin/python bench/prompt_templates.py --n {args.n} --order ... [--append]` (settings run in "
          "chunks, one table). Chance: AG News 0.25, Banking77 0.013, product_reviews 0.33. Seeded random examples, "
          "at most 32 per prompt; seconds on a shared 2-core CPU under load from other jobs (compare within a "
          "column only).\n\n" + markdown_table(table) + "\n")
    out = _out(args, model, "md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    _out(args, model, "json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
