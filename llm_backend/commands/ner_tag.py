"""``ner-tag``: tag a file with a saved named-entity model.

Input: CoNLL (tags, if any, are ignored), CSV/JSONL with a tokens column, or plain text (one sentence per line).
Output by extension: ``.jsonl`` (tokens and tags per sentence), ``.csv`` (one row per entity), else CoNLL.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ner-tag", help="tag named entities in a file with a saved tagger")
    p.add_argument("--model", required=True, metavar="DIR", help="saved named-entity model: name or folder")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="CoNLL, CSV/JSONL with a tokens column, or plain text (one sentence per line)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="output: .jsonl (tokens+tags), .csv (one row per entity) or CoNLL (anything else)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm_backend.data.files import to_csv_safe
    from llm_backend.ner.conll import read_tagged_path
    from llm_backend.ner.tagging import load_ner_model, tag_sentences
    from llm_backend.core.progress import stderr_progress

    model = load_ner_model(args.model)
    data = read_tagged_path(args.data, plain_text_ok=True)
    result = tag_sentences(model, data, progress=stderr_progress("ner-tag"))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix == ".jsonl":
        out.write_text(result.to_jsonl(), encoding="utf-8")
    elif suffix == ".csv":
        to_csv_safe(result.entities(), out)
    else:
        out.write_text(result.to_conll(), encoding="utf-8")
    n_entities = len(result.entities())
    print(f"tagged {len(result.tokens):,} sentences, {n_entities:,} entities → {out}")
    return 0
