"""``ner-evaluate``: entity-level precision / recall / F1 (seqeval, exact span and type) of a saved tagger."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ner-evaluate", help="score a saved named-entity tagger on tagged data")
    p.add_argument("--model", required=True, metavar="DIR", help="saved named-entity model: name or folder")
    p.add_argument("--data", required=True, metavar="CONLL", help="CoNLL file (or CSV/JSONL) with gold tags")
    p.add_argument("--metrics-json", default=None, metavar="M",
                   help="write micro_f1, precision, recall, per_type, confusion and error counts here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm_backend.ner.conll import read_tagged_path
    from llm_backend.ner.tagging import evaluate_model, load_ner_model
    from llm_backend.core.progress import stderr_progress

    model = load_ner_model(args.model)
    data = read_tagged_path(args.data)
    for note in data.notes:
        print(f"note: {note}", file=sys.stderr)
    metrics = evaluate_model(model, data, progress=stderr_progress("ner-evaluate"), error_limit=50)
    for note in metrics["notes"][len(data.notes):]:
        print(f"note: {note}", file=sys.stderr)
    print(f"sentences: {metrics['n_sentences']:,}  entity micro-F1: {metrics['micro_f1']:.3f}  "
          f"precision: {metrics['precision']:.3f}  recall: {metrics['recall']:.3f}")
    for kind, row in sorted(metrics["per_type"].items()):
        print(f"  {kind:<8} P {row['precision']:.3f}  R {row['recall']:.3f}  F1 {row['f1']:.3f}  n={row['support']}")
    if args.metrics_json:
        keep = {k: v for k, v in metrics.items() if k != "pred"}
        Path(args.metrics_json).write_text(json.dumps(keep, indent=2, default=str), encoding="utf-8")
    return 0
