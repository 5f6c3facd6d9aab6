"""``ner-train``: fine-tune a named-entity tagger on CoNLL data (or a CSV/JSONL of tokens and tags) and save it.

The defaults are the ones measured in docs/ner.md (the registry's default encoder, all-MiniLM-L6-v2, plus a case-shape
embedding; epochs chosen from the data size). ``--sentences N`` trains on N sentences picked with a fixed seed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_backend.ner import METHODS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ner-train", help="fine-tune a named-entity tagger (BIO tags) and save it")
    p.add_argument("--data", required=True, metavar="CONLL",
                   help="CoNLL file (token TAG per line, blank line between sentences) or CSV/JSONL with tokens "
                        "and tags")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="a model name (saved in the models folder) or a path to a new folder")
    p.add_argument("--sentences", type=int, default=None, metavar="N",
                   help="train on N sentences picked with a fixed seed (default: all)")
    p.add_argument("--epochs", type=int, default=None, metavar="E",
                   help="passes over the data (default: about 600 steps, 3 to 30 epochs)")
    p.add_argument("--method", choices=list(METHODS), default="full",
                   help="full: every encoder weight; lora: LoRA adapters (peft)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from llm_backend.core.errors import TrainingError
    from llm_backend.ner.conll import read_tagged_path
    from llm_backend.ner.train import NerTrainConfig, train_ner
    from llm_backend.core.progress import stderr_progress
    from llm_backend.models.registry import ModelRegistry, resolve_location
    from llm_backend.training.trained_models import save_model, writable_models_dir
    from llm_backend.training.trainer import TrainCallbacks

    data = read_tagged_path(args.data)
    for note in data.notes:
        print(f"note: {note}", file=sys.stderr)
    if not data.tagged:
        raise TrainingError(f"{Path(args.data).name} has no tags to learn from.")
    sentences = data.sentences
    if args.sentences is not None:
        if args.sentences < 1:
            raise TrainingError("--sentences must be at least 1.")
        if args.sentences < len(sentences):
            order = np.random.default_rng(0).permutation(len(sentences))[: args.sentences]
            sentences = [sentences[i] for i in sorted(order)]
        else:
            print(f"note: the file has {len(sentences):,} sentences; training on all of them.", file=sys.stderr)
    out = Path(args.out)
    models_dir = out.parent if (out.parent != Path(".") or out.is_absolute()) else None
    writable_models_dir(models_dir)  # fail before training, not after
    spec = ModelRegistry().default("embedder")
    result = train_ner(sentences, NerTrainConfig(method=args.method, epochs=args.epochs), resolve_location(spec),
                       TrainCallbacks(progress=stderr_progress(f"ner-train {args.method}")), base_model=spec.name)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    metrics = {"method": args.method, "n_train": result.n_train, "tags": result.classes,
               "train_seconds": round(result.wall_s, 2), "history": result.history}
    meta = result.meta(description=f"NER {args.method} on {result.n_train} sentences "
                                   f"({', '.join(result.extra['entity_types'])})", metrics=metrics)
    folder = save_model(result.model, out.name, meta, models_dir)
    print(f"saved: {folder}")
    print(json.dumps({"model_dir": str(folder), "train_seconds": metrics["train_seconds"]}))
    return 0
