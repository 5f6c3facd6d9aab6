"""Named-entity workbench figures: entity-level micro-F1 on CoNLL-2003 dev after training on n sentences with
``ner-train``'s defaults, training minutes on this machine, and tagging throughput.

    nice -n 10 .venv/bin/python bench/ner.py --sizes 100 1000            # minutes on 2 cores
    nice -n 10 .venv/bin/python bench/ner.py --sizes full                 # the full train set (long on CPU)
    nice -n 10 .venv/bin/python bench/ner.py --sizes 1000 --ablate-case   # case-shape embedding on / off

The training sentences are the first n of a seeded shuffle of conll2003_train.txt; the dev figure is on the whole
dev file (3,250 sentences) unless --dev-limit is given. Results append to bench/results/ner.jsonl and print as a
table. Only dev is used to choose defaults; the held-out figure the product is judged on is not available here.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.shared_data import SHARED, _require  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["100", "1000"])
    ap.add_argument("--dev-limit", type=int, default=None)
    ap.add_argument("--ablate-case", action="store_true", help="also train without the case-shape embedding")
    ap.add_argument("--no-case", action="store_true", help="train only without the case-shape embedding")
    ap.add_argument("--method", default="full")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--encoder", default=None,
                    help="registered embedder name or encoder folder (default: ner-train's, the registry's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed-only", action="store_true",
                    help="CPU: time one epoch on n sentences (seconds per step) and tagging, no quality figure")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ner.jsonl"))
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from llm_backend.ner.conll import read_tagged_path
    from llm_backend.ner.model import throughput
    from llm_backend.ner.tagging import evaluate_model
    from llm_backend.ner.train import NerTrainConfig, train_ner
    from llm_backend.models.registry import ModelRegistry, resolve_location
    from llm_backend.training.trainer import TrainCallbacks

    train = read_tagged_path(_require(SHARED / "conll2003_train.txt")).sentences
    dev = read_tagged_path(_require(SHARED / "conll2003_dev.txt"))
    if args.dev_limit:
        dev.sentences = dev.sentences[: args.dev_limit]
    order = np.random.default_rng(args.seed).permutation(len(train))
    registry = ModelRegistry()
    spec = registry.get(args.encoder) if args.encoder and not Path(args.encoder).is_dir() else \
        registry.default("embedder")
    location = args.encoder if args.encoder and Path(args.encoder).is_dir() else resolve_location(spec)
    device = "cuda" if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}"
    rows = []
    for size in args.sizes:
        n = len(train) if size == "full" else int(size)
        chosen = [train[i] for i in order[:n]]
        for use_case in ([True, False] if args.ablate_case else [not args.no_case]):
            cfg = NerTrainConfig(method=args.method, epochs=args.epochs, seed=args.seed, use_case=use_case)
            last = [0.0]
            steps_done = [0]

            def progress(done: int, total: int) -> None:
                steps_done[0] = done
                if time.perf_counter() - last[0] > 30 or done == total:
                    last[0] = time.perf_counter()
                    print(f"  step {done}/{total}", file=sys.stderr, flush=True)

            encoder_name = Path(location).name if args.encoder and Path(args.encoder).is_dir() else spec.name
            result = train_ner(chosen, cfg, location, TrainCallbacks(progress=progress), base_model=encoder_name)
            if args.speed_only:
                metrics = {"micro_f1": None, "precision": None, "recall": None, "per_type": {}}
            else:
                metrics = evaluate_model(result.model, dev)
            speed = throughput(result.model, [s.tokens for s in dev.sentences[:1000]])
            row = {"train_sentences": n, "method": args.method, "use_case": use_case,
                   "epochs": result.config.epochs, "encoder": encoder_name,
                   "dev_sentences": len(dev.sentences),
                   **{k: None if metrics[k] is None else round(metrics[k], 4) for k in ("micro_f1", "precision", "recall")},
                   "per_type_f1": {k: round(v["f1"], 4) for k, v in metrics["per_type"].items()},
                   "train_minutes": round(result.wall_s / 60, 2), "tag_sentences_per_s": round(speed, 1),
                   "steps": result.extra["steps"], "seconds_per_step": result.extra["seconds_per_step"], "speed_only": args.speed_only,
                   "device": device, "load_avg": os.getloadavg()[0],
                   "time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
            print(json.dumps(row), flush=True)
            rows.append(row)
            with open(args.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
    print("\ntrain sents | case | epochs | dev micro-F1 (P / R) | train min | tag sents/s")
    for r in rows:
        quality = "—" if r["micro_f1"] is None else f"{r['micro_f1']:.3f} ({r['precision']:.3f} / {r['recall']:.3f})"
        print(f"{r['train_sentences']:>11} | {str(r['use_case']):>5} | {r['epochs']:>6} | {quality} | "
              f"{r['train_minutes']:>9} | {r['tag_sentences_per_s']}")
    return rows


if __name__ == "__main__":
    main()
