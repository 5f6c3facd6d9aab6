"""``train``: few-shot training from a table, saved into the models folder (or any folder) as a reusable model.

Rows are chosen like on the page: ``--per-class K`` seeded picks from the label column (or every labelled row),
and the remaining labelled rows are the test split the metrics are computed on.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_backend.core.errors import TrainingError
from llm_backend.core.progress import stderr_progress
from llm_backend.training.loop import TRAINING_METHODS, TrainCallbacks, TrainConfig
from llm_backend.training.trainer import train as train_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a few-shot classifier (head, setfit, finetune, lora, distill)")
    p.add_argument("--data", required=True, help="CSV/XLSX/JSON/Parquet file with texts and labels")
    p.add_argument("--sheet", help="sheet of an Excel workbook (default: the first)")
    p.add_argument("--encoding", help="text encoding of a CSV/JSON file (default: detected)")
    p.add_argument("--text-column", required=True)
    p.add_argument("--label-column", required=True, help="gold labels; empty cells are unlabelled rows")
    p.add_argument("--per-class", type=int, default=None, metavar="K",
                   help="train on K seeded examples per class (default: every labelled row, no test split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", choices=list(TRAINING_METHODS), default="head")
    p.add_argument("--teacher", default="zero-shot",
                   help="distill only: 'zero-shot' (embedding scorer with the class names) or a trained model "
                        "name/folder")
    p.add_argument("--student", choices=["small", "head"], default="small", help="distill only")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--num-pairs", type=int, default=None, help="setfit: contrastive pairs per epoch")
    p.add_argument("--label-anchor-weight", type=float, default=2.0,
                   help="head/setfit: weight of each class's label sentence as an extra training row (0 = off)")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="share of training rows held out for early stopping (default 0.2 for fine-tunes, else 0)")
    p.add_argument("--max-test", type=int, default=None, help="evaluate on at most this many test rows (seeded)")
    p.add_argument("--embedder", default=None, help="embedder name or folder (default: the registry's default)")
    p.add_argument("--out", required=True, metavar="MODEL_DIR",
                   help="a model name (saved in the models folder) or a path to a new folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model of that name")
    p.add_argument("--metrics-json", default=None, help="write run and test metrics here")
    p.set_defaults(func=run)


def _teacher(name: str, embedder):  # noqa: ANN001, ANN202 - small factory
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.training.trained_models import TrainedScorer

    if name == "zero-shot":
        from llm_backend.scorers.embedding import EmbeddingScorer

        return EmbeddingScorer(embedder)
    spec = ModelRegistry().resolve(name, "classifier")
    if spec.source != "trained":
        raise TrainingError(f"'{name}' is not a model trained here; use 'zero-shot' or a trained model.")
    return TrainedScorer(get_model(spec))


def run(args: argparse.Namespace) -> int:
    from llm_backend.data.files import read_path, text_column_report
    from llm_backend.data.sampler import normalise_labels, select_per_class
    from llm_backend.evaluation.metrics import evaluate
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.training.trained_models import (
        predict,
        save_model,
        writable_models_dir,
    )

    table = read_path(args.data, sheet=args.sheet, encoding=args.encoding)
    df = table.df
    for col in (args.text_column, args.label_column):
        if col not in df.columns:
            raise TrainingError(f"Column '{col}' is not in {Path(args.data).name}. Columns: {', '.join(map(str, df.columns))}")
    texts, notes = text_column_report(df[args.text_column])
    labels, label_notes = normalise_labels(df[args.label_column].tolist())
    for note in table.notes + notes + label_notes:
        print(f"note: {note}", file=sys.stderr)
    if args.per_class:
        train_idx, sel_notes = select_per_class(labels, args.per_class, args.seed)
        for note in sel_notes:
            print(f"note: {note}", file=sys.stderr)
    else:
        train_idx = [i for i, l in enumerate(labels) if l]
    chosen = set(train_idx)
    test_idx = [i for i, l in enumerate(labels) if l and i not in chosen]
    if args.max_test and len(test_idx) > args.max_test:
        import numpy as np

        test_idx = sorted(np.random.default_rng(args.seed).choice(test_idx, args.max_test, replace=False).tolist())
    fine_tune = args.method in ("finetune", "finetune-head", "lora", "distill")
    cfg = TrainConfig(method=args.method, epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, num_pairs=args.num_pairs, seed=args.seed,
                      val_fraction=args.val_fraction if args.val_fraction is not None else (0.2 if fine_tune else 0.0),
                      student=args.student, label_anchor_weight=args.label_anchor_weight)
    out = Path(args.out)
    models_dir = out.parent if (out.parent != Path(".") or out.is_absolute()) else None
    registry = ModelRegistry()
    embedder = get_model(registry.resolve(args.embedder, "embedder"))
    teacher = _teacher(args.teacher, embedder) if args.method == "distill" else None
    unlabelled = [texts[i] for i in test_idx] if args.method == "distill" else []
    if unlabelled:
        print("note: the student learns from the teacher's labels on the test rows' texts (never their gold labels).",
              file=sys.stderr)
    writable_models_dir(models_dir)  # fail before training, not after
    result = train_model(
        [texts[i] for i in train_idx], [labels[i] for i in train_idx], cfg, embedder,
        TrainCallbacks(progress=stderr_progress(f"train {args.method}")), teacher=teacher, unlabelled=unlabelled)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    metrics: dict = {"method": args.method, "n_train": result.n_train, "classes": result.classes,
                     "train_seconds": round(result.wall_s, 2), "history": result.history}
    if test_idx:
        pred, _ = predict(result.model, [texts[i] for i in test_idx], progress=stderr_progress("evaluate"))
        metrics["test"] = evaluate([labels[i] for i in test_idx], pred, result.classes)
        print(f"test rows: {metrics['test']['n']}  accuracy: {metrics['test']['accuracy']:.3f}  "
              f"macro-F1: {metrics['test']['macro_f1']:.3f}")
    folder = save_model(result.model, out.name, result.meta(metrics=metrics.get("test", {})), models_dir,
                        overwrite=args.overwrite)
    print(f"saved: {folder}")
    if args.metrics_json:
        Path(args.metrics_json).write_text(json.dumps({**metrics, "model_dir": str(folder)}, indent=2, default=str),
                                           encoding="utf-8")
    return 0
