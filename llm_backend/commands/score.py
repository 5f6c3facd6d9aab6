"""``score``: label a whole file with a zero-shot method, write predictions (and metrics when gold exists).

Same backend as the zero-shot page (:func:`llm_backend.scorers.zero_shot.run_scorer`), so a CLI run reproduces the page's
numbers. Progress goes to stderr; results go to files only.
"""
from __future__ import annotations

from llm_backend.data.files import to_csv_safe

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from llm_backend.core.errors import DataError, UserError
from llm_backend.core.progress import stderr_progress
from llm_backend.data.files import read_path, text_column_report
from llm_backend.data.labels import Label, load_labels_file, make_labels
from llm_backend.models.loading import get_model
from llm_backend.models.registry import ModelRegistry
from llm_backend.scorers.calibration import CALIBRATIONS
from llm_backend.scorers.embedding import DEFAULT_TEMPLATE
from llm_backend.scorers.ensemble import EnsembleScorer
from llm_backend.scorers.factory import METHOD_ROLES, make_scorer, method_available
from llm_backend.scorers.zero_shot import (
    DEFAULT_CALIBRATION,
    gold_coverage,
    prepare_labels,
    run_scorer,
)

#: Members of ``--method ensemble`` when --ensemble-of is not given: the combination measured best (docs/zero-shot.md).
DEFAULT_ENSEMBLE = ("embedding", "lm")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="zero-shot label a file; write predictions CSV and optional metrics JSON",
                       description="Zero-shot classification of a table's text column with a label set.")
    p.add_argument("--data", required=True, help="CSV, TSV, XLSX, JSON/JSONL or Parquet file")
    p.add_argument("--sheet", help="sheet of an Excel workbook (default: the first)")
    p.add_argument("--encoding", help="text encoding of a CSV/JSON file (default: detected)")
    p.add_argument("--text-column", required=True, help="column holding the text to label")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--labels", nargs="+", metavar="LABEL", help="label names (e.g. World Sports Business Sci/Tech)")
    g.add_argument("--labels-file", help="YAML/JSON label set (names, descriptions, phrasings)")
    p.add_argument("--method", default="embedding", choices=["embedding", "lm", "nli", "trained", "ensemble"])
    p.add_argument("--model", help="model name from `models`, a local folder, or a hub id (default: the method's default)")
    p.add_argument("--ensemble-of", nargs="+", choices=sorted(METHOD_ROLES), default=None,
                   help=f"methods averaged by --method ensemble (default: {' '.join(DEFAULT_ENSEMBLE)})")
    p.add_argument("--template", action="append", default=None,
                   help=f"hypothesis template with {{label}} (repeat to average several; default '{DEFAULT_TEMPLATE}')")
    p.add_argument("--calibration", default=DEFAULT_CALIBRATION, choices=CALIBRATIONS)
    p.add_argument("--refine", type=int, default=None, metavar="N",
                   help="embedding method: passes of label-prototype refinement on this corpus (default 1; 0 = off)")
    p.add_argument("--multi-label", action="store_true", help="choose every label above --threshold")
    p.add_argument("--threshold", type=float, default=0.5, help="multi-label probability threshold (default 0.5)")
    p.add_argument("--none-below", type=float, default=None,
                   help="single-label: predict '(none)' when the top probability is below this")
    p.add_argument("--gold-column", help="column with true labels: enables metrics")
    p.add_argument("--limit", type=int, default=None, help="score only the first N rows")
    p.add_argument("--out", required=True, help="predictions CSV to write")
    p.add_argument("--metrics-json", help="metrics JSON to write (needs --gold-column)")
    p.set_defaults(func=run)


def _labels(args: argparse.Namespace) -> list[Label]:
    if args.labels_file:
        return load_labels_file(args.labels_file)
    return make_labels(args.labels)


def _column(df: pd.DataFrame, name: str, what: str) -> str:
    if name in df.columns:
        return name
    raise DataError(f"The {what} column '{name}' is not in the file. Columns: {', '.join(map(str, df.columns))}")


def build_scorer(method: str, model: str | None, templates: Sequence[str] | None,
                 ensemble_of: Sequence[str] | None, calibration: str, refine: int | None = None):
    """A scorer for the CLI's method, loading models through the process-wide cache."""
    registry = ModelRegistry()
    if method == "ensemble":
        members = [build_scorer(m, None, templates, None, calibration, refine)[0] for m in (ensemble_of or DEFAULT_ENSEMBLE)]
        return EnsembleScorer(members, calibration), "+".join(m.name for m in members)
    if not method_available(method):
        raise UserError(f"The '{method}' method is not available in this build.")
    spec = registry.resolve(model, METHOD_ROLES[method])  # type: ignore[arg-type]
    print(f"Loading {spec.name}…", file=sys.stderr, flush=True)
    loaded = get_model(spec)
    return make_scorer(method, loaded, templates=templates, refine=refine), spec.name


def run(args: argparse.Namespace) -> int:
    if args.metrics_json and not args.gold_column:
        raise UserError("--metrics-json needs --gold-column (metrics compare predictions with true labels).")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1.")
    table = read_path(args.data, sheet=args.sheet, encoding=args.encoding)
    df = table.df
    text_col = _column(df, args.text_column, "text")
    gold_col = _column(df, args.gold_column, "gold") if args.gold_column else None
    if args.limit:
        df = df.head(args.limit)
    texts, notes = text_column_report(df[text_col])
    for note in table.notes + notes:
        print(f"note: {note}", file=sys.stderr)
    labels = prepare_labels(_labels(args), args.multi_label)
    scorer, model_name = build_scorer(args.method, args.model, args.template, args.ensemble_of, args.calibration,
                                     args.refine)
    result = run_scorer(scorer, texts, labels, calibration=args.calibration, multi_label=args.multi_label,
                        threshold=args.threshold, none_below=args.none_below, model_name=model_name,
                        progress=stderr_progress(f"Scoring with {scorer.name}"))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    out = result.table(texts)
    out.insert(0, "row", df.index.to_numpy())
    gold = None
    if gold_col:
        gold = [str(v).strip() if pd.notna(v) else "" for v in df[gold_col].tolist()]
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
