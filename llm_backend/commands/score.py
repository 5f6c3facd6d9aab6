"""``score``: label a whole file with a zero-shot method, write predictions (and metrics when gold exists).

Same backend as the zero-shot page (:func:`llm_backend.scorers.zero_shot.run_scorer`), so a CLI run reproduces the page's
numbers. Progress goes to stderr; results go to files only.
"""
from __future__ import annotations

from llm_backend.data.files import to_csv_safe

import argparse
import json
import sys
from dataclasses import dataclass

import pandas as pd
from pathlib import Path
from typing import Any, Sequence


from llm_backend.data.dataset import Dataset, clean_gold
from llm_backend.core.errors import UserError
from llm_backend.data.labels import Label, load_labels_file, make_labels
from llm_backend.models.loading import get_model
from llm_backend.core.progress import stderr_progress
from llm_backend.models.registry import ModelRegistry
from llm_backend.scorers.calibration import CALIBRATIONS
from llm_backend.scorers.defaults import DEFAULT_METHOD, LARGE_EMBEDDER, corpus_chars, zero_shot_embedder
from llm_backend.scorers.embedding import DEFAULT_TEMPLATE
from llm_backend.scorers.factory import DEFAULT_ENSEMBLE, METHOD_ROLES, SCORING_METHODS, ScorerConfig, build_scorer
from llm_backend.scorers.zero_shot import DEFAULT_CALIBRATION, ZeroShotResult, gold_coverage, prepare_labels, run_scorer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="zero-shot label a file; write predictions CSV and optional metrics JSON",
                       description="Zero-shot classification of a table's text column with a label set.")
    add_scoring_arguments(p)
    p.add_argument("--out", required=True, help="predictions CSV to write")
    p.add_argument("--metrics-json", help="metrics JSON to write (needs --gold-column)")
    p.set_defaults(func=run)


def add_scoring_arguments(p: argparse.ArgumentParser, *, labels_required: bool = True,
                          calibrations: Sequence[str] = CALIBRATIONS) -> None:
    """The data, label and method options of ``score``; ``freeze`` takes exactly the same ones (its prompt-template
    mode takes the labels from the template, hence ``labels_required``, and adds the prompt calibrations)."""
    p.add_argument("--data", required=True, help="CSV, TSV, XLSX, JSON/JSONL or Parquet file")
    p.add_argument("--sheet", help="sheet of an Excel workbook (default: the first)")
    p.add_argument("--encoding", help="text encoding of a CSV/JSON file (default: detected)")
    p.add_argument("--text-column", required=True, help="column holding the text to label")
    g = p.add_mutually_exclusive_group(required=labels_required)
    g.add_argument("--labels", nargs="+", metavar="LABEL", help="label names (e.g. World Sports Business Sci/Tech)")
    g.add_argument("--labels-file", help="YAML/JSON label set (names, descriptions, phrasings)")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=[*SCORING_METHODS, "ensemble"],
                   help=f"default {DEFAULT_METHOD}: embedding zero-shot, then a logistic head trained on its "
                        "confident answers on this file (with fewer than 4 rows per label or 24 rows, the embedding "
                        "scores); embedding: the zero-shot scores alone (see docs/zero-shot.md)")
    p.add_argument("--model", help="model name from `models`, a local folder, or a hub id (default for embedding "
                                   "methods: multilingual-e5-small for non-English texts, else "
                                   f"{LARGE_EMBEDDER} for small corpora and all-MiniLM-L6-v2 for larger ones)")
    p.add_argument("--ensemble-of", nargs="+", choices=sorted(METHOD_ROLES), default=None,
                   help=f"methods averaged by --method ensemble (default: {' '.join(DEFAULT_ENSEMBLE)})")
    p.add_argument("--template", action="append", default=None,
                   help=f"hypothesis template with {{label}} (repeat to average several; default '{DEFAULT_TEMPLATE}', "
                        "or the texts' language's template for non-English texts)")
    p.add_argument("--calibration", default=DEFAULT_CALIBRATION, choices=list(calibrations))
    p.add_argument("--refine", type=int, default=None, metavar="N",
                   help="embedding method: passes of label-prototype refinement on this corpus (default 1; 0 = off)")
    p.add_argument("--multi-label", action="store_true", help="choose every label above --threshold")
    p.add_argument("--threshold", type=float, default=0.5, help="multi-label probability threshold (default 0.5)")
    p.add_argument("--none-below", type=float, default=None,
                   help="single-label: predict '(none)' when the top probability is below this")
    p.add_argument("--gold-column", help="column with true labels: enables metrics")
    p.add_argument("--limit", type=int, default=None, help="score only the first N rows")


def _labels(args: argparse.Namespace) -> list[Label]:
    if args.labels_file:
        return load_labels_file(args.labels_file)
    return make_labels(args.labels)


def scorer_config(args: argparse.Namespace, model: str | None = None,
                  templates: Sequence[str] | None = None) -> ScorerConfig:
    """The flags as the same configuration the zero-shot page builds from its widgets.

    ``model`` / ``templates`` are the language-aware choices (:func:`language_defaults`) when the flags leave them out.
    """
    model = model or args.model
    return ScorerConfig(method=args.method, models={args.method: model} if model else {},
                        members=tuple(args.ensemble_of) if args.ensemble_of else None,
                        templates=templates or args.template, refine=args.refine, calibration=args.calibration)


def language_defaults(args: argparse.Namespace, texts: Sequence[str],
                      labels: Sequence[Label]) -> tuple[str | None, list[str] | None]:
    """The page's defaults for the texts at hand: the embedder by language and corpus size
    (:func:`~llm_backend.scorers.defaults.zero_shot_embedder`), the template in the texts' language, with notes."""
    from llm_backend.data.language import (default_template, detect_language, label_language_warning,
                                           language_notice, template_language)

    report = detect_language(texts)
    model, templates = args.model, args.template
    if args.method in ("embedding", "self-training"):
        size_rule = getattr(args, "large_embedder_for_small_corpora", True)  # False for ``freeze``
        if not model and (size_rule or report.needs_multilingual):
            choice = zero_shot_embedder(corpus_chars(texts), report, ModelRegistry())
            model = choice.name
            if not report.needs_multilingual:
                print(f"note: embedder {choice.name}: {choice.reason} (choose another with --model).",
                      file=sys.stderr)
        if report.needs_multilingual:
            templates = templates or [default_template(template_language(report, [l.name for l in labels]))]
    embedder = model or ModelRegistry().default("embedder").name
    for note in (language_notice(report, model),
                 label_language_warning([l.name for l in labels], report, embedder)):
        if note:
            print(f"note: {note}", file=sys.stderr)
    return model, templates


@dataclass
class ScoredCorpus:
    """A finished ``score`` run: what ``score`` writes out and what ``freeze`` freezes."""

    df: pd.DataFrame
    texts: list[str]
    labels: list[Label]
    scorer: Any
    model_name: str
    result: ZeroShotResult
    gold_column: str | None


def score_corpus(args: argparse.Namespace) -> ScoredCorpus:
    """Read ``--data``, build the scorer and run it: the part of ``score`` that ``freeze`` shares."""
    if getattr(args, "metrics_json", None) and not args.gold_column:
        raise UserError("--metrics-json needs --gold-column (metrics compare predictions with true labels).")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1.")
    ds = Dataset.from_file(args.data, args.text_column, args.gold_column, limit=args.limit, sheet=args.sheet,
                           encoding=args.encoding)
    df = ds.df
    texts = ds.texts()
    for note in ds.notes + ds.text_notes():
        print(f"note: {note}", file=sys.stderr)
    labels = prepare_labels(_labels(args), args.multi_label)
    model, templates = language_defaults(args, texts, labels)
    scorer, model_name = build_scorer(scorer_config(args, model, templates), ModelRegistry(), get_model,
                                      on_load=lambda name: print(f"Loading {name}…", file=sys.stderr, flush=True))
    result = run_scorer(scorer, texts, labels, calibration=args.calibration, multi_label=args.multi_label,
                        threshold=args.threshold, none_below=args.none_below, model_name=model_name,
                        progress=stderr_progress(f"Scoring with {scorer.name}"))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return ScoredCorpus(df, texts, labels, scorer, model_name, result, ds.gold_column)


def run(args: argparse.Namespace) -> int:
    scored = score_corpus(args)
    df, texts, result, model_name, gold_col = scored.df, scored.texts, scored.result, scored.model_name, \
        scored.gold_column
    out = result.table(texts)
    out.insert(0, "row", df.index.to_numpy())
    gold = clean_gold(df[gold_col].tolist()) if gold_col else None
    if gold is not None:
        out.insert(2, "gold", gold)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    to_csv_safe(out, args.out)
    print(f"{result.describe()}\nwrote {len(out)} predictions to {args.out}", file=sys.stderr)
    if gold is not None:
        missing, n_rows = gold_coverage(gold, result.label_names)
        if missing:
            print(f"note: {n_rows} row(s) have gold labels outside the label set (counted as errors): "
                  f"{', '.join(missing[:20])}", file=sys.stderr)
        metrics = result.evaluate(gold)
        metrics.update({"method": result.method, "model": model_name, "calibration": result.calibration.applied,
                        "multi_label": result.multi_label, "templates": result.templates})
        print(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  (n={metrics['n']})",
              file=sys.stderr)
        if args.metrics_json:
            Path(args.metrics_json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.metrics_json).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
            print(f"wrote metrics to {args.metrics_json}", file=sys.stderr)
    return 0
