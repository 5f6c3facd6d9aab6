"""``freeze``: run ``score`` on a prototyping corpus, then save what it learnt as a frozen classifier folder.

Takes exactly ``score``'s data, label and method options (:func:`llm_backend.commands.score.add_scoring_arguments`)
and runs the same code (:func:`llm_backend.commands.score.score_corpus`), so the frozen classifier reproduces
``score``'s predictions on that corpus; ``batch`` then applies it to any number of rows. The freeze is recorded in
the experiment store as a run (kind ``freeze``, with the corpus metrics when a gold column is given) and the
classifier is listed with that run (``store classifiers``).

Its method default is ``score``'s (self-training, issue 17: the logistic head fitted on the corpus is linear in
the embedding, so the classifier keeps it as label vectors plus a bias). One default differs: the fast embedder
whatever the corpus size (``score`` picks the larger one for small corpora), because a frozen classifier is meant
to run over far more rows than it was frozen on. Pass ``--model NAME`` to both to reproduce a ``score`` run
exactly.

``--template-file T.yaml`` freezes a prompt-template run instead (``prompt --mode score`` on the same data, with
the same options: ``--model``, ``--few-shot``, ``--selection``, ``--calibration`` incl. ``pmi``, ``--normalize``,
``--seed``, ``--no-prefix-cache``); the labels come from the template's verbalizer
(:mod:`llm_backend.batch.frozen_prompt`).
"""
from __future__ import annotations

import argparse
import sys

from llm_backend.batch.frozen import check_classifier_name, freeze_run, save_classifier
from llm_backend.core.errors import UserError
from llm_backend.commands.prompt import add_prompt_options
from llm_backend.commands.score import DEFAULT_METHOD, add_scoring_arguments, score_corpus
from llm_backend.prompts.runner import PROMPT_CALIBRATIONS
from llm_backend.scorers.calibration import CALIBRATIONS

#: score options that mean nothing for a prompt-template freeze (the template fixes labels and method).
_NOT_FOR_PROMPTS = {"labels": None, "labels_file": None, "method": DEFAULT_METHOD, "ensemble_of": None, "template": None,
                    "refine": None, "multi_label": False, "threshold": 0.5, "none_below": None}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("freeze", help="learn a label set's calibration/refinement on a corpus; save a classifier",
                       description="Score a prototyping corpus like `score`, then save the fitted classifier "
                                   "(label vectors, calibration offsets, decision rule, model reference) for `batch`.")
    add_scoring_arguments(p, labels_required=False, calibrations=list(dict.fromkeys([*CALIBRATIONS,
                                                                                     *PROMPT_CALIBRATIONS])))
    prompt = p.add_argument_group("prompt templates (freeze a `prompt --mode score` run instead of a `score` run)")
    prompt.add_argument("--template-file", help="template YAML (as for `prompt`); labels come from its verbalizer")
    add_prompt_options(prompt)
    p.add_argument("--out", required=True, help="folder to write the classifier into (must be new or empty)")
    p.add_argument("--name", help="classifier name (default: the folder name)")
    p.add_argument("--project", default="default", help="experiment-store project to list it in (default: default)")
    p.add_argument("--no-store", action="store_true", help="do not record the freeze in the experiment store")
    # A frozen classifier is meant to run over far more rows than it was frozen on: the fast embedder by default
    # (``score`` picks the larger embedder for small corpora); the method default is score's.
    p.set_defaults(func=run, large_embedder_for_small_corpora=False)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    name = check_classifier_name(args.name or Path(args.out).name)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"'{out.name}' already exists and is not empty. Choose another --out folder.")
    if args.template_file:
        clf, result_info = _freeze_prompt(args, name)
    else:
        if not (args.labels or args.labels_file):
            raise UserError("Give the labels (--labels or --labels-file), or a prompt template (--template-file).")
        if args.calibration not in CALIBRATIONS:
            raise UserError(f"--calibration {args.calibration} is for prompt templates (--template-file).")
        prompt_only = [f for f, v in (("--few-shot", args.few_shot), ("--selection", args.selection != "random"),
                                      ("--normalize", args.normalize != "mean"), ("--seed", args.seed),
                                      ("--no-prefix-cache", args.no_prefix_cache)) if v]
        if prompt_only:
            raise UserError(f"{', '.join(prompt_only)} apply to prompt templates only (--template-file).")
        clf, result_info = _freeze_scoring(args, name)
    run_id = None
    if not args.no_store:
        run_id = _record(args, clf, *result_info)
        clf.source["run_id"] = run_id
    path = save_classifier(clf, out)
    if run_id is not None:
        _link(args, clf, path, run_id)
    print(f"{clf.describe()}\nfingerprint {clf.fingerprint[:16]}\nwrote classifier to {path}", file=sys.stderr)
    return 0


def _freeze_scoring(args: argparse.Namespace, name: str):
    from pathlib import Path

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
    settings = {"calibration": result.calibration.requested, "multi_label": result.multi_label,
                "threshold": result.threshold, "none_below": result.none_below, "templates": result.templates,
                "refine": args.refine}
    return clf, (result.method, result.model, settings, metrics)


def _freeze_prompt(args: argparse.Namespace, name: str):
    """``prompt --mode score`` on the data with the same options, then :func:`freeze_prompt_result`."""
    from pathlib import Path

    from llm_backend.batch.freeze_prompt import freeze_prompt_result
    from llm_backend.commands.prompt import run_template

    given = [f"--{k.replace('_', '-')}" for k, default in _NOT_FOR_PROMPTS.items() if getattr(args, k) != default]
    if given:
        raise UserError(f"{', '.join(given)} do not apply to a prompt template (--template-file): its verbalizer "
                        "gives the labels and the method.")
    result, model = run_template(args, "score")
    if result.metrics:
        m = result.metrics
        print(f"on the prototyping corpus: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  (n={m['n']})",
              file=sys.stderr)
    print("Freezing (checking the classifier reproduces the run)…", file=sys.stderr, flush=True)
    source = {"command": "freeze", "data": Path(args.data).name, "text_column": args.text_column,
              "template_file": Path(args.template_file).name}
    clf = freeze_prompt_result(result, model, name=name, source=source)
    cfg = result.config
    settings = {"calibration": cfg.calibration, "calibration_applied": result.calibration_applied,
                "few_shot": cfg.few_shot, "selection": cfg.selection, "seed": cfg.seed, "normalize": cfg.normalize,
                "template": result.template.to_dict()}
    return clf, ("prompt", model.spec.name, settings, result.metrics)


def _record(args: argparse.Namespace, clf, method: str, model: str, settings: dict, metrics) -> int:
    from llm_backend.store.database import Store

    store = Store()
    try:
        pid = store.ensure_project(args.project)
        settings = {**settings, "data": clf.source.get("data"), "n_texts": clf.source["corpus"]["n_texts"],
                    "corpus_fingerprint": clf.source["corpus"]["fingerprint"]}
        label_set = store.save_label_set(pid, f"{clf.name} labels", clf.labels).id
        return store.record_run(pid, "freeze", method, model, settings, metrics or {}, label_set_id=label_set)
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
