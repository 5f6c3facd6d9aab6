"""``train``: few-shot training from a table, saved into the models folder (or any folder) as a reusable model.

Rows are chosen by the page's function (:func:`llm_backend.training.split.make_split`): ``--per-class K`` seeded
picks from the label column (or every labelled row); the remaining labelled rows are the test split, scored by the
model and by the same zero-shot baseline as the page; distillation's teacher labels only rows left over after both.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_backend.data.dataset import text_fingerprints
from llm_backend.core.errors import DataError, TrainingError
from llm_backend.core.progress import stderr_progress
from llm_backend.training.loop import TRAINING_METHODS, TrainCallbacks, TrainConfig
from llm_backend.training.split import DEFAULT_POOL_ROWS


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
    p.add_argument("--unlabelled", type=int, default=DEFAULT_POOL_ROWS, metavar="N",
                   help="distill / --pseudo-labels: at most N rows (never training or test rows) labelled by the "
                        "teacher or the few-shot model")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--num-pairs", type=int, default=None, help="setfit: contrastive pairs per epoch")
    p.add_argument("--label-anchor-weight", type=float, default=2.0,
                   help="head/setfit: weight of each class's label sentence as an extra training row (0 = off)")
    p.add_argument("--pseudo-labels", action="store_true",
                   help="head/setfit: label up to --unlabelled rows that are neither training nor test rows (never "
                        "their gold) with the few-shot model and refit on gold + its confident answers "
                        "(docs/fine-tune.md)")
    p.add_argument("--no-base-view", action="store_true",
                   help="setfit: the head reads the tuned embedder alone (default: the tuned and the untouched "
                        "embedder side by side, which won on the dev slices; docs/fine-tune.md)")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="share of training rows held out for early stopping (default 0.2 for fine-tunes, else 0)")
    p.add_argument("--max-test", type=int, default=None, help="evaluate on at most this many test rows (seeded)")
    p.add_argument("--embedder", default=None, help="embedder name or folder (default: the registry's default; "
                   "multilingual-e5-small for non-English texts)")
    p.add_argument("--out", required=True, metavar="MODEL_DIR",
                   help="a model name (saved in the models folder) or a path to a new folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model of that name")
    p.add_argument("--metrics-json", default=None, help="write run and test metrics here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm_backend.data.dataset import Dataset
    from llm_backend.data.language import detect_language, recommended_embedder
    from llm_backend.data.labels import make_labels
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.training.trained_models import save_model, writable_models_dir
    from llm_backend.training.split import make_split
    from llm_backend.training.runs import teacher_scorer, train_and_evaluate_job, zero_shot_scorer

    try:
        ds = Dataset.from_file(args.data, args.text_column, args.label_column, sheet=args.sheet,
                               encoding=args.encoding)
    except DataError as exc:
        raise TrainingError(str(exc).replace("is not in the file", f"is not in {Path(args.data).name}")) from None
    texts = ds.texts()
    distill = args.method == "distill"
    # The same split as the fine-tune page: train / test / (distillation) teacher pool, disjoint.
    split = make_split(ds.df[args.label_column].tolist(), per_class=args.per_class, seed=args.seed,
                       max_test=args.max_test,
                       n_pool=args.unlabelled if distill or args.pseudo_labels else 0)
    for note in ds.notes + ds.text_notes() + split.notes:
        print(f"note: {note}", file=sys.stderr)
    warning = split.coverage_warning()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if distill and not split.pool_idx:
        print("note: no rows are left for the teacher to label (every row is a training or test row); pass "
              "--max-test to keep some for distillation.", file=sys.stderr)
    fine_tune = args.method in ("finetune", "finetune-head", "lora", "distill")
    cfg = TrainConfig(method=args.method, epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, num_pairs=args.num_pairs, seed=args.seed,
                      val_fraction=args.val_fraction if args.val_fraction is not None else (0.2 if fine_tune else 0.0),
                      student=args.student, label_anchor_weight=args.label_anchor_weight,
                      pseudo_labels=bool(args.pseudo_labels) and args.method in ("head", "setfit"),
                      base_view=not args.no_base_view)
    out = Path(args.out)
    models_dir = out.parent if (out.parent != Path(".") or out.is_absolute()) else None
    registry = ModelRegistry()
    # the page's default: the multilingual embedder for non-English texts (MiniLM is near chance on them)
    embedder_name = args.embedder or recommended_embedder(detect_language(texts))
    embedder = get_model(registry.resolve(embedder_name, "embedder"))
    label_set = make_labels(split.classes) if split.classes else None
    teacher = teacher_scorer(args.teacher, embedder, label_set, get_model, registry) if distill else None
    if cfg.pseudo_labels:
        print(f"note: pseudo-labelling {len(split.pool_idx)} rows that are neither training nor test rows (their gold "
              "labels are not read).", file=sys.stderr)
    writable_models_dir(models_dir)  # fail before training, not after
    job = train_and_evaluate_job(
        split.train_texts(texts), split.train_labels(), cfg, embedder, test_texts=split.test_texts(texts),
        test_gold=split.test_gold(), teacher=teacher, unlabelled=split.pool_texts(texts),
        baseline=zero_shot_scorer(embedder, label_set), baseline_labels=label_set)
    result = job(TrainCallbacks(progress=stderr_progress(f"train {args.method}")))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    ev = result.evaluation
    metrics: dict = {"method": args.method, "n_train": result.n_train, "classes": result.classes,
                     "train_seconds": round(result.wall_s, 2), "history": result.history,
                     "split": {"train": split.train_idx, "test": split.test_idx, "pool": split.pool_idx}}
    for key in ("test", "baseline", "teacher", "speed"):
        if key in ev:
            metrics[key] = ev[key]
    if "test" in metrics:
        base = f"  zero-shot macro-F1: {ev['baseline']['macro_f1']:.3f}" if "baseline" in ev else ""
        print(f"test rows: {metrics['test']['n']}  accuracy: {metrics['test']['accuracy']:.3f}  "
              f"macro-F1: {metrics['test']['macro_f1']:.3f}{base}")
    meta = result.meta(metrics=metrics.get("test", {}))
    meta["train_fingerprints"] = text_fingerprints(split.train_texts(texts) + split.pool_texts(texts))
    folder = save_model(result.model, out.name, meta, models_dir, overwrite=args.overwrite)
    print(f"saved: {folder}")
    if args.metrics_json:
        Path(args.metrics_json).write_text(json.dumps({**metrics, "model_dir": str(folder)}, indent=2, default=str),
                                           encoding="utf-8")
    return 0
