"""``freeze``: run ``score`` on a prototyping corpus, then save what it learnt as a frozen classifier folder.

Takes exactly ``score``'s data, label and method options (:func:`llm_backend.commands.score.add_scoring_arguments`)
and runs the same code (:func:`llm_backend.commands.score.score_corpus`), so the frozen classifier reproduces
``score``'s predictions on that corpus; ``batch`` then applies it to any number of rows. The freeze is recorded in
the experiment store as a run (kind ``freeze``, with the corpus metrics when a gold column is given) and the
classifier is listed with that run (``store classifiers``).

Its defaults differ from ``score``'s in two ways (issue 17): ``--method embedding`` (a frozen classifier keeps label
vectors; ``score`` defaults to self-training, whose head is fitted per corpus) and the fast embedder whatever the
corpus size (``score`` picks the larger one for small corpora). Pass ``--method embedding --model NAME`` to both to
reproduce a ``score`` run exactly.
"""
from __future__ import annotations

import argparse
import sys

from llm_backend.batch.frozen import check_classifier_name, freeze_run, save_classifier
from llm_backend.core.errors import UserError
from llm_backend.commands.score import add_scoring_arguments, score_corpus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("freeze", help="learn a label set's calibration/refinement on a corpus; save a classifier",
                       description="Score a prototyping corpus like `score`, then save the fitted classifier "
                                   "(label vectors, calibration offsets, decision rule, model reference) for `batch`.")
    add_scoring_arguments(p)
    p.add_argument("--out", required=True, help="folder to write the classifier into (must be new or empty)")
    p.add_argument("--name", help="classifier name (default: the folder name)")
    p.add_argument("--project", default="default", help="experiment-store project to list it in (default: default)")
    p.add_argument("--no-store", action="store_true", help="do not record the freeze in the experiment store")
    # A frozen classifier keeps label vectors, not a head trained on the prototyping corpus, and it is meant to run
    # over far more rows than it was frozen on: so plain embedding similarity with the fast embedder by default
    # (``score`` defaults to self-training and picks the larger embedder for small corpora).
    p.set_defaults(func=run, method="embedding", large_embedder_for_small_corpora=False)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    name = check_classifier_name(args.name or Path(args.out).name)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"'{out.name}' already exists and is not empty. Choose another --out folder.")
    scored = score_corpus(args)
    result = scored.result
    metrics = None
    if scored.gold_column:
        gold = [str(v).strip() for v in scored.df[scored.gold_column].fillna("").tolist()]
        metrics = result.evaluate(gold)
        print(f"on the prototyping corpus: accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}"
              f"  (n={metrics['n']})", file=sys.stderr)
    source = {"command": "freeze", "data": Path(args.data).name, "text_column": args.text_column,
              "refine": args.refine, "ensemble_of": args.ensemble_of}
    if metrics:
        source["metrics"] = {k: metrics[k] for k in ("accuracy", "macro_f1", "n") if k in metrics}
    print("Freezing (checking the classifier reproduces the run)…", file=sys.stderr, flush=True)
    clf = freeze_run(scored.scorer, scored.texts, scored.labels, result, source=source, name=name)
    run_id = None
    if not args.no_store:
        run_id = _record(args, clf, result, metrics)
        clf.source["run_id"] = run_id
    path = save_classifier(clf, out)
    if run_id is not None:
        _link(args, clf, path, run_id)
    print(f"{clf.describe()}\nfingerprint {clf.fingerprint[:16]}\nwrote classifier to {path}", file=sys.stderr)
    return 0


def _record(args: argparse.Namespace, clf, result, metrics) -> int:
    from llm_backend.store.database import Store

    store = Store()
    try:
        pid = store.ensure_project(args.project)
        settings = {"calibration": result.calibration.requested, "multi_label": result.multi_label,
                    "threshold": result.threshold, "none_below": result.none_below, "templates": result.templates,
                    "refine": args.refine, "data": clf.source.get("data"), "n_texts": clf.source["corpus"]["n_texts"],
                    "corpus_fingerprint": clf.source["corpus"]["fingerprint"]}
        label_set = store.save_label_set(pid, f"{clf.name} labels", clf.labels).id
        return store.record_run(pid, "freeze", result.method, result.model, settings, metrics or {},
                                label_set_id=label_set)
    finally:
        store.close()


def _link(args: argparse.Namespace, clf, path, run_id: int) -> None:
    from llm_backend.store.database import Store

    store = Store()
    try:
        store.add_classifier(store.ensure_project(args.project), clf.name, path.resolve(), run_id=run_id,
                             fingerprint=clf.fingerprint,
                             info={"method": clf.source.get("method"), "model": clf.source.get("model"),
                                   "labels": clf.label_names[:50], "n_labels": len(clf.labels)})
    finally:
        store.close()
