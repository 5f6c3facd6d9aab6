"""Are the attributions faithful, and is explaining one row interactive? Deletion test per scorer, and timing.

Deletion test (llm_backend.explain.faithfulness): for each row, explain the predicted label, then remove the k
top-attributed words and, separately, k random words (5 seeded draws averaged); a faithful attribution makes the
label's score fall more in the first case. Drops are measured in the label's probability and in its log-odds (the
logit margin over the other labels: it does not saturate when a confident model sits at p ≈ 1). Reported per scorer
and data set over seeded held-out rows: mean drops, the share of rows where top-k beats random, a one-sided paired
Wilcoxon p-value, and seconds per explained row.

Scorers (``--scorers``):
- ``embedding``: embedding similarity (MiniLM, occlusion; label vectors refined on the evaluated rows as a run does);
- ``head``: a logistic head on MiniLM embeddings trained on 8 rows per class disjoint from the evaluated rows;
- ``finetune``: a fine-tuned MiniLM sequence classifier (8 per class; AG News; ``--ft-attributions``: gradient ×
  input, integrated gradients, occlusion, each with its own rows file; the trained model is kept in the cache dir so
  every chunk explains the same model);
- ``prompt``: the LM verbalizer as the Prompt templates page runs it — SmolLM2 with the shipped templates (topic on
  AG News, sentiment on samples/product_reviews.csv, all 180 of its rows), prior centering as the page's default;
  each row is explained through llm_backend.explain.prompt_runs (the page's own path) with ``--lm-attribution``
  (gradient × input, the first figure recorded, by default; ``occlusion`` — the page's ``auto`` — and
  ``integrated_gradients`` each have their own rows file; ``--ig-n`` rows of integrated gradients beside it);
- ``lm``: the zero-shot page's LM verbalizer (its default prompt; AG News);
- ``nli``: an NLI scorer from ``--nli-model PATH`` (a local NLI folder; none ships offline, so it is never run by
  default; AG News);
- ``speed``: one row explained with the embedding scorer against a plain score of the same row, both with an
  empty embedding cache, in one run (ratio of medians).

LM scorers are slow on a shared 2-core CPU (tens of seconds per row under load), so they run **in chunks**: every
explained row is appended to ``bench/results/explain_rows/<scorer>.jsonl``; a rerun skips rows already there and
stops after ``--max-minutes``, and the summary is always computed from all recorded rows (the first ``--n``).
``--reverse`` runs a second chunk from the last row down beside a first one on the same file.
Results go to bench/results/explain_faithfulness.{json,md} after every chunk. Usage::

    nice .venv/bin/python bench/explain_faithfulness.py --scorers speed,embedding,head --n 200
    nice timeout 1200 .venv/bin/python bench/explain_faithfulness.py --scorers prompt --n 200 --max-minutes 15
    nice timeout 1200 .venv/bin/python bench/explain_faithfulness.py --scorers prompt --datasets ag_news --n 200 \
        --lm-attribution occlusion --max-minutes 15 [--reverse]
    nice timeout 1200 .venv/bin/python bench/explain_faithfulness.py --scorers finetune --ft-attributions occlusion \
        --n 200 --max-minutes 15
    nice .venv/bin/python bench/explain_faithfulness.py --scorers nli --nli-model /path/to/an/nli/model --n 200
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZSS_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llm_backend.models.embedding_cache import CACHE  # noqa: E402
from llm_backend.explain.attribution import Attribution  # noqa: E402
from llm_backend.explain.explainer import explain_text  # noqa: E402
from llm_backend.explain.faithfulness import DeletionResult, deletion_test, summarise  # noqa: E402
from llm_backend.explain.scoring import ProbFn, probability_function  # noqa: E402
from llm_backend.data.labels import make_labels  # noqa: E402
from llm_backend.models.loading import get_model  # noqa: E402
from llm_backend.models.registry import ModelRegistry  # noqa: E402
from llm_backend.scorers.embedding import EmbeddingScorer  # noqa: E402
from shared_data import ag_news, banking77, markdown_table  # noqa: E402

OUT = ROOT / "bench" / "results"
ROWS = OUT / "explain_rows"
KS = (1, 3)
FT_TAG = {"auto": "", "gradient_x_input": "", "integrated_gradients": " IG", "occlusion": " occlusion"}
#: The LM scorers' figures by --lm-attribution: gradient × input keeps the untagged name its rows were recorded under.
LM_TAG = {"gradient_x_input": "", "integrated_gradients": " IG", "occlusion": " occlusion"}
#: One explanation: (attribution, the probability function its deletion test scores variants with).
Explain = Callable[[int], tuple[Attribution, ProbFn]]


def split(df: pd.DataFrame, per_class: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows: per_class per label, every other row in a seeded order; take the first n as evaluated).

    The shuffled order's first n rows are the same rows ``rest.sample(n, random_state=seed + 1)`` gives, so figures
    for different n (and earlier runs) share their rows.
    """
    train_df = pd.concat([g.sample(per_class, random_state=seed) for _, g in df.groupby("label", sort=True)])
    rest = df.drop(train_df.index)
    return train_df, rest.sample(frac=1.0, random_state=seed + 1)


def product_reviews() -> pd.DataFrame:
    df = pd.read_csv(ROOT / "samples" / "product_reviews.csv")
    return pd.DataFrame({"text": df["text"], "label": df["sentiment"]})


def _slug(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def run_deletion(key: str, explain: Explain, n: int, max_minutes: float | None = None, log_every: int = 10,
                 reverse: bool = False) -> dict:
    """Deletion test on rows 0..n-1 through ``explain(i)``, resumable: per-row records in explain_rows/<key>.jsonl.

    ``reverse``: rows n-1..0, so a second chunk can run beside a first one on the same file (each row is one
    appended line; a row recorded twice counts once).
    """
    ROWS.mkdir(parents=True, exist_ok=True)
    path = ROWS / f"{_slug(key)}.jsonl"
    done: dict[int, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                done[int(rec["i"])] = rec
    start = time.perf_counter()
    rng_seed = 0
    with path.open("a", encoding="utf-8") as fh:
        for i in (range(n - 1, -1, -1) if reverse else range(n)):
            if i in done:
                continue
            if max_minutes is not None and time.perf_counter() - start > 60 * max_minutes:
                print(f"  {key}: stopped after --max-minutes with {len(done)}/{n} rows", file=sys.stderr, flush=True)
                break
            attr, prob_fn = explain(i)
            rng = np.random.default_rng(rng_seed + i)  # per row: the same draws whichever chunk runs it
            rec = {"i": i, "method": attr.method, "seconds": attr.seconds, "words": len(attr.words),
                   "label": attr.label, "p": attr.probability}
            for k in KS:
                r = deletion_test(attr, prob_fn, k, n_random=5, rng=rng)
                rec[f"k{k}"] = None if r is None else vars(r)
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            done[i] = rec
            if len(done) % log_every == 0:
                print(f"  {key}: {len(done)}/{n} rows, {np.mean([d['seconds'] for d in done.values()]):.2f} s/row "
                      "explain", file=sys.stderr, flush=True)
    return summary_of(done, n)


def summary_of(done: dict[int, dict], n: int) -> dict:
    recs = [done[i] for i in sorted(done) if i < n]
    out = {"method": "+".join(sorted({r["method"] for r in recs})), "rows": len(recs), "asked_rows": n,
           "explain_s_mean": float(np.mean([r["seconds"] for r in recs])) if recs else float("nan")}
    for k in KS:
        out[f"k{k}"] = summarise([None if r[f"k{k}"] is None else DeletionResult(**r[f"k{k}"]) for r in recs])
    return out


def _same_model(path: Path, scorer, texts: list[str], labels) -> bool:
    """Whether ``scorer`` gives the first recorded row's explained probability (a resumed chunk, same model)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        return False
    first = json.loads(lines[0])
    probs = probability_function(scorer, labels)([texts[int(first["i"])]])[0]
    names = [l.name for l in labels]
    return abs(float(probs[names.index(first["label"])]) - float(first["p"])) < 1e-6


def speed(scorer: EmbeddingScorer, texts: list[str], labels) -> dict:
    """Median seconds: plain score of one row vs explaining it (occlusion), cache emptied before each."""
    plain, explain, words = [], [], []
    for text in texts:
        CACHE.clear()
        scorer.label_embeddings(labels)  # cached in both cases: the per-row cost is what is compared
        t0 = time.perf_counter()
        scorer.score([text], labels)
        plain.append(time.perf_counter() - t0)
        CACHE.clear()
        scorer.label_embeddings(labels)
        t0 = time.perf_counter()
        attr = explain_text(scorer, text, labels, corpus=None)
        explain.append(time.perf_counter() - t0)
        words.append(len(attr.words))
    return {"rows": len(texts), "median_words": float(np.median(words)), "plain_score_s": float(np.median(plain)),
            "explain_s": float(np.median(explain)), "explain_s_max": float(np.max(explain)),
            "ratio_explain_to_plain": float(np.median(explain) / np.median(plain))}


def _fmt(x: float | None, spec: str) -> str:
    return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


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
    for key, r in sorted(results.get("deletion", {}).items()):
        for k in KS:
            s = r[f"k{k}"]
            rows.append({"scorer / data": key, "method": r["method"], "k": k, "rows": s.get("n", 0),
                         "drop top-k (p)": _fmt(s.get("mean_drop_top"), ".4f"),
                         "drop random-k (p)": _fmt(s.get("mean_drop_random"), ".4f"),
                         "top beats random (p)": _fmt(100 * s.get("share_top_beats_random", float("nan")), ".0f") + "%",
                         "Wilcoxon p (p)": _fmt(s.get("wilcoxon_p"), ".1e"),
                         "drop top-k (log-odds)": _fmt(s.get("mean_drop_top_logodds"), ".3f"),
                         "drop random-k (log-odds)": _fmt(s.get("mean_drop_random_logodds"), ".3f"),
                         "top beats random (log-odds)": (_fmt(100 * s["share_top_beats_random_logodds"], ".0f") + "%"
                                                         if "share_top_beats_random_logodds" in s else ""),
                         "Wilcoxon p (log-odds)": _fmt(s.get("wilcoxon_p_logodds"), ".1e"),
                         "s/row": _fmt(r["explain_s_mean"], ".2f")})
    md = ["# Explain: deletion test and speed", "", "Produced by `bench/explain_faithfulness.py` (see its docstring).",
          "Drops are in the explained (predicted) label's probability (p) and log-odds (the logit margin over the "
          "other labels); random-k is the mean of 5 seeded draws; Wilcoxon: one-sided paired test, top-k > random-k. "
          "Rows missing a log-odds figure were measured before the bench recorded log-odds.", ""]
    if rows:
        md.append(markdown_table(pd.DataFrame(rows)))
    if "speed" in results:
        s = results["speed"]
        md += ["", f"**Speed** (embedding scorer, MiniLM, CPU, {s['rows']} AG News rows, median {s['median_words']:.0f} "
               f"words): explaining a row takes {s['explain_s']:.3f} s (max {s['explain_s_max']:.3f} s), a plain score "
               f"of that row {s['plain_score_s']:.3f} s: **{s['ratio_explain_to_plain']:.1f}×** a plain score."]
    for note in results.get("notes", []):
        md += ["", note]
    md += ["", f"Load average of the shared 2-core machine at the last run's start: {results.get('load', '')}"]
    (OUT / "explain_faithfulness.md").write_text("\n".join(md) + "\n", encoding="utf-8")


def _cached_run(template, frame: pd.DataFrame, model, run: Callable[[], object]):
    """The template's run over ``frame``, kept in the cache dir between chunks (a 200-row SmolLM2 run takes minutes
    on the shared CPU, and every chunk explains rows of the same run); keyed by template, model and the rows' texts."""
    import hashlib
    import pickle

    from llm_backend.core.config import get_settings

    key = hashlib.sha256(json.dumps([repr(template), model.spec.name, frame["text"].tolist(),
                                     frame["label"].tolist()]).encode()).hexdigest()[:16]
    path = get_settings().cache_dir / "bench_explain_runs" / f"{_slug(template.name)}_{len(frame)}_{key}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    t0 = time.perf_counter()
    result = run()
    print(f"  ran '{template.name}' on {len(frame)} rows in {time.perf_counter() - t0:.0f} s: "
          f"{result.metrics and result.metrics.get('accuracy')}", file=sys.stderr, flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(result))
    return result


def prompt_explainer(template_name: str, df: pd.DataFrame, n: int, model, attribution: str, steps: int) -> Explain:
    """Run a shipped template over the first n rows (as the Prompt templates page does), explain rows of that run."""
    from llm_backend.explain.prompt_runs import PromptRowScorer, explain_prompt_row
    from llm_backend.prompts.runner import RunConfig, TemplateRun
    from llm_backend.prompts.templates import shipped_templates

    template = next(t for t in shipped_templates() if t.name == template_name)
    frame = df.iloc[:n].reset_index(drop=True)
    result = _cached_run(template, frame, model, lambda: TemplateRun(template, frame, "text", "label", RunConfig(),
                                                                     lm=model).run_all())

    def explain(i: int) -> tuple[Attribution, ProbFn]:
        scorer = PromptRowScorer(result, i, model)
        attr = explain_prompt_row(result, i, model, method=attribution, n_steps=steps, scorer=scorer)
        return attr, probability_function(scorer, scorer.labels())

    explain.accuracy = result.metrics and result.metrics.get("accuracy")  # type: ignore[attr-defined]
    return explain


def scorer_explainer(scorer, texts: list[str], labels, corpus=None, method: str = "auto", steps: int = 16) -> Explain:
    prob_fn = probability_function(scorer, labels, corpus)

    def explain(i: int) -> tuple[Attribution, ProbFn]:
        return explain_text(scorer, texts[i], labels, method=method, corpus=corpus, n_steps=steps), prob_fn

    return explain


def recorded_keys() -> list[str]:
    """The figures whose rows are recorded per row (the slow scorers), by name."""
    keys = [f"fine-tuned MiniLM / ag_news{tag}" for tag in dict.fromkeys(FT_TAG.values())]
    for name, template in (("ag_news", "News topic"), ("product_reviews", "Review sentiment")):
        keys += [f"prompt template '{template}' (SmolLM2) / {name}{tag}" for tag in LM_TAG.values()]
    keys += [f"LM verbalizer (SmolLM2, zero-shot page prompt) / ag_news{tag}" for tag in LM_TAG.values()]
    return keys


def summarise_recorded(n: int) -> None:
    results: dict = {"deletion": {}}
    for key in recorded_keys():
        path = ROWS / f"{_slug(key)}.jsonl"
        if path.is_file():
            done = {int(r["i"]): r for r in map(json.loads, filter(str.strip, path.read_text().splitlines()))}
            if done:
                results["deletion"][key] = summary_of(done, n)
    write(results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", "--rows", dest="n", type=int, default=200, help="rows per figure")
    ap.add_argument("--scorers", default="speed,embedding,head,finetune,prompt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed-rows", type=int, default=20)
    ap.add_argument("--datasets", default="ag_news,banking77,product_reviews")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop each LM scorer's chunk after this long")
    ap.add_argument("--lm-attribution", default="gradient_x_input", choices=list(LM_TAG),
                    help="the LM scorers' method; each has its own rows file (occlusion: one batched, shared-prefix "
                         "scoring call per row)")
    ap.add_argument("--reverse", action="store_true",
                    help="LM / fine-tuned scorers: explain rows from the last one down (a second chunk beside a first)")
    ap.add_argument("--ig-n", type=int, default=0, help="also this many rows of integrated gradients (LM scorers)")
    ap.add_argument("--ig-steps", type=int, default=8)
    ap.add_argument("--ft-attributions", default="auto",
                    help="comma-separated methods for the fine-tuned model (auto = gradient × input, "
                         "integrated_gradients, occlusion), all on the same trained model")
    ap.add_argument("--nli-model", default=None, help="a local NLI model folder (entailment label in its config)")
    ap.add_argument("--summarise", action="store_true",
                    help="only recompute the figures of the LM / fine-tuned scorers from their recorded rows (a chunk "
                         "that was killed before it wrote its summary)")
    ap.add_argument("--results-dir", default=None, help="write results here instead of bench/results (trial runs)")
    args = ap.parse_args()
    if args.results_dir:
        global OUT, ROWS
        OUT = Path(args.results_dir)
        ROWS = OUT / "explain_rows"
    if args.summarise:
        summarise_recorded(args.n)
        return
    wanted = args.scorers.split(",")
    datasets = args.datasets.split(",")
    reg = ModelRegistry()
    results: dict = {"deletion": {}, "load": os.getloadavg()}

    def record(key: str, summary: dict) -> None:
        results["deletion"][key] = summary
        write(results)

    embedder = get_model(reg.default("embedder")) if {"speed", "embedding", "head", "finetune"} & set(wanted) else None
    data = {"ag_news": ag_news, "banking77": banking77}
    for name in [d for d in data if d in datasets and {"speed", "embedding", "head"} & set(wanted)]:
        df = data[name]()
        train_df, test_df = split(df, 8, args.seed)
        labels, texts = make_labels(sorted(df["label"].unique())), test_df["text"].tolist()[: args.n]
        emb_scorer = EmbeddingScorer(embedder)
        if name == "ag_news" and "speed" in wanted:
            results["speed"] = speed(emb_scorer, texts[: args.speed_rows], labels)
            print(f"speed: {results['speed']}", file=sys.stderr, flush=True)
            write(results)
        if "embedding" in wanted:
            key = f"embedding / {name}"
            record(key, run_deletion(key, scorer_explainer(emb_scorer, texts, labels, texts), args.n))
        if "head" in wanted:
            from llm_backend.training.trained_models import scorer_for
            from llm_backend.training.trainer import TrainConfig, train

            res = train(train_df["text"].tolist(), train_df["label"].tolist(), TrainConfig(method="head"), embedder)
            key = f"trained head / {name}"
            record(key, run_deletion(key, scorer_explainer(scorer_for(res.model), texts, labels), args.n))
    ag = ag_news()
    ag_train, ag_test = split(ag, 8, args.seed)
    ag_labels, ag_texts = make_labels(sorted(ag["label"].unique())), ag_test["text"].tolist()[: args.n]
    if "finetune" in wanted:
        from llm_backend.training.trained_models import scorer_for
        from llm_backend.training.trainer import TrainConfig, train

        # CPU training is not bit-for-bit repeatable, so the trained model is kept in the cache dir between chunks
        # (a chunk must explain the same model); recorded rows of another model are dropped below.
        from llm_backend.core.config import get_settings
        from llm_backend.models.registry import spec_from_folder
        from llm_backend.training.trained_models import load_trained, save_model

        models_dir = get_settings().cache_dir / "bench_explain_models"
        name = f"finetune_ag_news_seed{args.seed}"
        if (models_dir / name).is_dir():
            model = load_trained(spec_from_folder(str(models_dir / name)), get_model).model
        else:
            model = train(ag_train["text"].tolist(), ag_train["label"].tolist(),
                          TrainConfig(method="finetune", epochs=8), embedder).model
            models_dir.mkdir(parents=True, exist_ok=True)
            save_model(model, name, {"method": "finetune", "description": "bench/explain_faithfulness.py"}, models_dir)
        for attribution in args.ft_attributions.split(","):
            key = "fine-tuned MiniLM / ag_news" + FT_TAG[attribution]
            path = ROWS / f"{_slug(key)}.jsonl"
            scorer = scorer_for(model)
            if path.is_file() and not _same_model(path, scorer, ag_texts, ag_labels):
                path.unlink()  # training is seeded; resume only when this model gives the recorded probabilities
            explain = scorer_explainer(scorer, ag_texts, ag_labels, method=attribution, steps=args.ig_steps)
            record(key, run_deletion(key, explain, args.n, args.max_minutes, reverse=args.reverse))
    lm_model = get_model(reg.default("causal_lm")) if {"prompt", "lm"} & set(wanted) else None
    method_tag = LM_TAG
    if "prompt" in wanted:
        sets = [("ag_news", "News topic", ag_test), ("product_reviews", "Review sentiment", product_reviews())]
        for name, template, df in sets:
            if name not in datasets:
                continue
            n = min(args.n, len(df))
            key = f"prompt template '{template}' (SmolLM2) / {name}"
            record(key + method_tag[args.lm_attribution], run_deletion(
                key + method_tag[args.lm_attribution],
                prompt_explainer(template, df, n, lm_model, args.lm_attribution, args.ig_steps), n, args.max_minutes,
                reverse=args.reverse))
            if args.ig_n:
                record(key + " IG", run_deletion(
                    key + " IG", prompt_explainer(template, df, n, lm_model, "integrated_gradients", args.ig_steps),
                    min(args.ig_n, n), args.max_minutes))
    if "lm" in wanted:
        from llm_backend.scorers.lm import LMVerbalizerScorer

        key = "LM verbalizer (SmolLM2, zero-shot page prompt) / ag_news" + method_tag[args.lm_attribution]
        explain = scorer_explainer(LMVerbalizerScorer(lm_model), ag_texts, ag_labels, method=args.lm_attribution,
                                   steps=args.ig_steps)
        record(key, run_deletion(key, explain, args.n, args.max_minutes))
    if "nli" in wanted:
        if not args.nli_model:
            sys.exit("--scorers nli needs --nli-model PATH (a local NLI model folder; none ships offline)")
        from llm_backend.models.loading import load_model
        from llm_backend.models.registry import spec_from_folder
        from llm_backend.scorers.nli import NLIScorer

        nli = NLIScorer(load_model(spec_from_folder(args.nli_model)))
        key = f"NLI ({Path(args.nli_model).name}) / ag_news"
        record(key, run_deletion(key, scorer_explainer(nli, ag_texts, ag_labels), args.n, args.max_minutes))
    print((OUT / "explain_faithfulness.md").read_text())


if __name__ == "__main__":
    main()
