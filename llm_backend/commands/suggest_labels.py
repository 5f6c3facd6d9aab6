"""``suggest-labels``: suggest descriptions for short or cryptic label names from the texts (and the LM).

The same backend as the zero-shot page's label wording help (:func:`llm_backend.scorers.wording_help.wording_help`):
words from each label's most confident rows, with ``--lm`` a sentence from the bundled instruct LM, a label-free
check that proposes a suggestion only when it moves its label closer to its own rows, and the effect of accepting
the proposal on these rows (rows that change label; macro-F1 before/after only with ``--gold-column``). Writes the
label set with the proposal accepted (names unchanged) for ``score --labels-file``.
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
    p.add_argument("--model", help="embedder (default: the one `score` picks for these texts)")
    p.add_argument("--lm", action="store_true",
                   help="also ask the bundled instruct LM for one sentence per label (slow on a CPU: seconds per "
                        "label; answers are cached)")
    p.add_argument("--gold-column", help="optional: report macro-F1 with the names and with the proposal")
    p.add_argument("--all", action="store_true", help="suggest for every label, not only short/cryptic ones")
    p.add_argument("--terms", type=int, default=5, help="phrases per label (default 5)")
    p.add_argument("--limit", type=int, default=None, help="read only the first N rows")
    p.add_argument("--out", required=True, help="label-set YAML to write")
    p.add_argument("--report-json", help="optional: write the suggestions, the check and the effect as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from llm_backend.data.dataset import Dataset, clean_gold
    from llm_backend.data.labels import dump_labels, load_labels_file, make_labels
    from llm_backend.data.language import default_template, detect_language, template_language
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.scorers.defaults import corpus_chars, zero_shot_embedder
    from llm_backend.scorers.self_training import SelfTrainingScorer
    from llm_backend.scorers.wording_help import wording_help
    from llm_backend.scorers.zero_shot import prepare_labels

    if args.limit is not None and args.limit < 1:
        raise DataError("--limit must be at least 1.")
    ds = Dataset.from_file(args.data, args.text_column, args.gold_column, limit=args.limit)
    texts = ds.texts()
    for note in ds.notes + ds.text_notes():
        print(f"note: {note}", file=sys.stderr)
    labels = prepare_labels(load_labels_file(args.labels_file) if args.labels_file else make_labels(args.labels))
    reg = ModelRegistry()
    lang = detect_language(texts)
    model = args.model or zero_shot_embedder(corpus_chars(texts), lang, reg).name
    templates = [default_template(template_language(lang, [l.name for l in labels]))] \
        if lang.needs_multilingual else None
    scorer = SelfTrainingScorer(get_model(reg.resolve(model, "embedder")), templates)  # the default method
    lm = get_model(reg.default("causal_lm")) if args.lm else None
    gold = clean_gold(ds.df[ds.gold_column].tolist()) if ds.gold_column else None
    help_ = wording_help(scorer, texts, labels, lm=lm, gold=gold, only_cryptic=not args.all,
                         n_terms=max(1, args.terms))
    for c in help_.checks:
        flag = "cryptic" if c.cryptic else "worded"
        print(f"{c.name} ({flag}): " + (f"reads as {c.phrase!r} | " if c.phrase else "")
              + f"words {', '.join(c.phrases) or '-'}"
              + (f" | LM: {c.lm_description}" if c.lm_description else "")
              + f" -> {'could add: ' + c.proposal if c.proposal else 'nothing to add'}", file=sys.stderr)
    (sb, cb), (sa, ca) = help_.signals_names, help_.signals_candidate
    print(f"adding to {help_.n_accepted} label(s) would change the label of {help_.changed_rows:,} of "
          f"{help_.n_rows:,} rows (self-training, {model}); silhouette {sb:.3f} -> {sa:.3f}, mean top probability "
          f"{cb:.3f} -> {ca:.3f}: {'proposed' if help_.recommended else 'not proposed (the file keeps the names)'}",
          file=sys.stderr)
    if help_.macro_f1_before is not None:
        print(f"macro-F1 against {args.gold_column}: names {help_.macro_f1_before:.4f}, with the additions "
              f"{help_.macro_f1_after:.4f}", file=sys.stderr)
    for note in help_.notes:
        print(f"note: {note}", file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(dump_labels(help_.proposed), encoding="utf-8")
    print(f"wrote {len(help_.proposed)} labels to {args.out}", file=sys.stderr)
    if args.report_json:
        Path(args.report_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report_json).write_text(json.dumps(help_.as_dict(), indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    return 0
