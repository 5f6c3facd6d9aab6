"""``suggest-labels``: read a file's texts and suggest descriptions for short or cryptic label names.

The same backend as the zero-shot page's label wording help
(:func:`llm_backend.scorers.label_suggestions.suggest_label_wording`); no gold labels are read. Writes a label-set
YAML with the suggestions accepted, ready for ``score --labels-file``; prints each label's phrases to stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llm_backend.core.errors import DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("suggest-labels", help="suggest descriptions for cryptic label names from the texts",
                       description="Suggest label descriptions from the words of each label's most confident rows "
                                   "(class-based TF-IDF); writes a label-set YAML for score --labels-file.")
    p.add_argument("--data", required=True, help="CSV, TSV, XLSX, JSON/JSONL or Parquet file")
    p.add_argument("--text-column", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--labels", nargs="+", metavar="LABEL")
    g.add_argument("--labels-file", help="YAML/JSON label set")
    p.add_argument("--model", help="embedder (default: the registry's default)")
    p.add_argument("--all", action="store_true", help="suggest for every label, not only short/cryptic ones")
    p.add_argument("--terms", type=int, default=5, help="phrases per label (default 5)")
    p.add_argument("--limit", type=int, default=None, help="read only the first N rows")
    p.add_argument("--out", required=True, help="label-set YAML to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm_backend.data.files import read_path, text_column_report
    from llm_backend.data.labels import dump_labels, load_labels_file, make_labels
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.scorers.embedding import EmbeddingScorer
    from llm_backend.scorers.label_suggestions import (
        apply_suggestions,
        suggest_label_wording,
    )
    from llm_backend.scorers.zero_shot import prepare_labels

    table = read_path(args.data)
    df = table.df
    if args.text_column not in df.columns:
        raise DataError(f"The text column '{args.text_column}' is not in the file. "
                        f"Columns: {', '.join(map(str, df.columns))}")
    if args.limit:
        df = df.head(args.limit)
    texts, notes = text_column_report(df[args.text_column])
    for note in table.notes + notes:
        print(f"note: {note}", file=sys.stderr)
    labels = prepare_labels(load_labels_file(args.labels_file) if args.labels_file else make_labels(args.labels))
    scorer = EmbeddingScorer(get_model(ModelRegistry().resolve(args.model, "embedder")))
    vecs = scorer.text_embeddings(texts)
    sugg = suggest_label_wording(texts, vecs, labels, scorer.label_embeddings(labels), n_terms=max(1, args.terms))
    for s in sugg:
        flag = "cryptic" if s.cryptic else "worded"
        print(f"{s.name} ({flag}, {s.n_rows} rows): {s.description or '(no distinctive words)'}", file=sys.stderr)
    accepted = apply_suggestions(labels, sugg, only_cryptic=not args.all)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(dump_labels(accepted), encoding="utf-8")
    print(f"wrote {len(accepted)} labels to {args.out}", file=sys.stderr)
    return 0
