"""``explain``: why a scorer gives a row (or a typed text) its label — one weight per word, and the method used.

Takes ``score``'s scorer options (same definitions, same :func:`~llm_backend.commands.score.build_scorer`), so an
explanation is of exactly the scorer a ``score`` run with those options uses. With ``--row`` the rest of the file
is the corpus the embedding scorer refines its label vectors on, as ``score`` does; the JSON holds the label, the
method, the label probabilities and a weight per word (see docs/explain.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_backend.data.files import read_path, text_column_report
from llm_backend.core.errors import DataError, UserError
from llm_backend.explain.attribution import METHODS
from llm_backend.explain.explainer import explain_text
from llm_backend.scorers.zero_shot import prepare_labels
from llm_backend.commands.score import _labels, add_scoring_arguments, scorer_config
from llm_backend.models.loading import get_model
from llm_backend.models.registry import ModelRegistry
from llm_backend.scorers.factory import build_scorer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="why a row gets its label: a weight per word (occlusion or gradients)",
                       description="Word attributions for one row of a file (--row) or one text (--text).")
    add_scoring_arguments(p)  # score's own definitions; --data/--text-column become optional (--text needs none)
    for action in p._actions:
        if action.dest in ("data", "text_column"):
            action.required = False
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--row", type=int, help="0-based row of --data (the `row` column of score's output)")
    which.add_argument("--text", help="a text to explain instead of a row")
    p.add_argument("--label", help="label to explain (default: the predicted one)")
    p.add_argument("--attribution", default="auto", choices=METHODS,
                   help="auto: occlusion (measured faithful for every scorer; docs/explain.md); gradients on "
                        "request where the model has them")
    p.add_argument("--steps", type=int, default=16, help="integrated gradients: interpolation steps (default 16)")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    corpus = None
    if args.row is not None:
        if not args.data or not args.text_column:
            raise UserError("--row needs --data and --text-column.")
        table = read_path(args.data)
        df = table.df.head(args.limit) if args.limit else table.df
        if args.text_column not in df.columns:
            raise DataError(f"The text column '{args.text_column}' is not in the file. Columns: "
                            f"{', '.join(map(str, df.columns))}")
        texts, _notes = text_column_report(df[args.text_column])
        if not 0 <= args.row < len(texts):
            raise UserError(f"--row must be between 0 and {len(texts) - 1} (the file has {len(texts)} rows"
                            + (f" within --limit {args.limit}" if args.limit else "") + ").")
        text, corpus = texts[args.row], texts
    else:
        text = args.text
    if args.steps < 1 or args.steps > 512:
        raise UserError("--steps must be between 1 and 512.")
    labels = prepare_labels(_labels(args), False)
    scorer, model_name = build_scorer(scorer_config(args), ModelRegistry(), get_model,
                                      on_load=lambda name: print(f"Loading {name}…", file=sys.stderr, flush=True))
    attr = explain_text(scorer, text, labels, label=args.label, method=args.attribution, corpus=corpus,
                        n_steps=args.steps)
    for note in attr.notes:
        print(f"note: {note}", file=sys.stderr)
    out = attr.to_dict()
    out.update({"model": model_name, "row": args.row})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    top = sorted(out["words"], key=lambda w: -w["weight"])[:5]
    print(f"{attr.label} (p={attr.probability:.3f}) by {attr.method_title}; top words: "
          f"{', '.join(w['word'] for w in top if w['weight'] > 0) or '(none)'}\nwrote {args.out}", file=sys.stderr)
    return 0
