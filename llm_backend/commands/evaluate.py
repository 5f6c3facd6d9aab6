"""``evaluate``: score a saved model (or a model folder) on a labelled table and write the metrics."""
from __future__ import annotations

from llm_backend.data.files import to_csv_safe

import argparse
import json
from pathlib import Path

from llm_backend.core.errors import DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained model on a labelled table")
    p.add_argument("--model", required=True, help="trained model name or folder")
    p.add_argument("--data", required=True)
    p.add_argument("--sheet", help="sheet of an Excel workbook (default: the first)")
    p.add_argument("--encoding", help="text encoding of a CSV/JSON file (default: detected)")
    p.add_argument("--text-column", required=True)
    p.add_argument("--gold-column", required=True)
    p.add_argument("--metrics-json", default=None, help="write accuracy, macro-F1, per-class and confusion here")
    p.add_argument("--predictions", default=None, help="optional CSV of text, gold, predicted, confidence")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from llm_backend.core.errors import ModelError
    from llm_backend.core.progress import stderr_progress
    from llm_backend.data.files import read_path, text_column_report
    from llm_backend.data.sampler import normalise_labels
    from llm_backend.evaluation.metrics import evaluate
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.training.trained_models import predict

    spec = ModelRegistry().resolve(args.model, "classifier")
    if spec.source != "trained":
        raise ModelError(f"'{args.model}' is not a model trained by Zero-Shot Studio (no zss_model.json).")
    loaded = get_model(spec)
    table = read_path(args.data, sheet=args.sheet, encoding=args.encoding)
    for col in (args.text_column, args.gold_column):
        if col not in table.df.columns:
            raise DataError(f"Column '{col}' is not in {Path(args.data).name}.")
    texts, _ = text_column_report(table.df[args.text_column])
    gold, notes = normalise_labels(table.df[args.gold_column].tolist())
    with loaded.lock:
        pred, probs = predict(loaded.model, texts, progress=stderr_progress("evaluate"))
    metrics = evaluate(gold, pred, loaded.model.classes)
    if not metrics["n"]:
        raise DataError(f"Column '{args.gold_column}' has no labels to evaluate against.")
    metrics["model"] = spec.name
    metrics["notes"] = notes
    if metrics["unknown_gold"]:
        print(f"note: gold labels the model was not trained on count as errors: {', '.join(metrics['unknown_gold'])}")
    print(f"rows: {metrics['n']}  accuracy: {metrics['accuracy']:.3f}  macro-F1: {metrics['macro_f1']:.3f}")
    if args.metrics_json:
        Path(args.metrics_json).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    if args.predictions:
        conf = probs.max(axis=1) if len(probs) else []
        to_csv_safe(pd.DataFrame({"text": texts, "gold": gold, "predicted": pred, "confidence": conf}), args.predictions)
    return 0
