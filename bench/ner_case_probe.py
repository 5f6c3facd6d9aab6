"""Is the case cue worth adding to an uncased encoder? A cheap CPU answer: a linear probe on frozen features.

    nice -n 10 .venv/bin/python bench/ner_case_probe.py     # about 3-5 minutes on 2 (shared) cores

Encodes 600 CoNLL-2003 training sentences and 300 dev sentences once with the frozen default encoder
(all-MiniLM-L6-v2, uncased), takes each word's first-piece vector (the same alignment ``ner-train`` uses), fits a
logistic regression over BIO tags with and without a one-hot of the word's case shape
(:func:`llm_backend.ner.features.case_shape`), and scores entity-level micro-F1 on the dev sentences (seqeval
strict). Fine-tuning is the real use (bench/gpu_ner.py ablates it there); this isolates the cue itself, in one run,
side by side. Appends to bench/results/ner_case_probe.jsonl.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.shared_data import SHARED, _require  # noqa: E402

N_TRAIN, N_DEV = 600, 300


def main() -> None:
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from llm_backend.models.registry import ModelRegistry, resolve_location
    from llm_backend.ner.conll import read_tagged_path
    from llm_backend.ner.evaluate import evaluate_tags
    from llm_backend.ner.features import N_SHAPES, build_chunks, collate, repair_iob2
    from llm_backend.ner.train import _load_encoder, tag_vocabulary

    train = read_tagged_path(_require(SHARED / "conll2003_train.txt")).sentences[:N_TRAIN]
    dev = read_tagged_path(_require(SHARED / "conll2003_dev.txt")).sentences[:N_DEV]
    encoder, tokenizer = _load_encoder(resolve_location(ModelRegistry().default("embedder")))
    encoder.eval()
    tags = tag_vocabulary(train)
    index = {t: i for i, t in enumerate(tags)}

    def features(sentences):  # noqa: ANN001, ANN202
        chunks, _ = build_chunks(tokenizer, [s.tokens for s in sentences], 128,
                                 [[index.get(t, 0) for t in s.tags] for s in sentences])
        X, y, shape, where = [], [], [], []
        for b in range(0, len(chunks), 32):
            batch = chunks[b : b + 32]
            enc = collate(batch, tokenizer.pad_token_id, "cpu")
            with torch.inference_mode():
                hidden = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            for r, c in enumerate(batch):
                for w, pos in enumerate(c.first_piece):
                    X.append(hidden[r, pos].numpy())
                    y.append(c.labels[pos])
                    shape.append(c.shape_ids[pos])
                    where.append((c.sentence, c.word_start + w))
        return np.array(X), np.array(y), np.eye(N_SHAPES)[np.array(shape)], where

    t0 = time.perf_counter()
    Xt, yt, St, _ = features(train)
    Xd, _, Sd, where = features(dev)
    encode_s = time.perf_counter() - t0
    rows = []
    for name, A, B in [("plain", Xt, Xd), ("+case one-hot", np.hstack([Xt, 3 * St]), np.hstack([Xd, 3 * Sd]))]:
        pred_ids = LogisticRegression(max_iter=500, C=1.0).fit(A, yt).predict(B)
        pred = [["O"] * len(s.tokens) for s in dev]
        for (s, w), k in zip(where, pred_ids):
            pred[s][w] = tags[k]
        m = evaluate_tags([s.tags for s in dev], [repair_iob2(p) for p in pred])
        rows.append({"probe": name, "train_sentences": N_TRAIN, "dev_sentences": N_DEV,
                     "dev_entities": m["n_gold_entities"], "micro_f1": round(m["micro_f1"], 4),
                     "per_type_f1": {k: round(v["f1"], 3) for k, v in m["per_type"].items()},
                     "encode_seconds": round(encode_s, 1), "load_avg": round(os.getloadavg()[0], 1)})
        print(json.dumps(rows[-1]), flush=True)
    with open(ROOT / "bench" / "results" / "ner_case_probe.jsonl", "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"case one-hot adds {rows[1]['micro_f1'] - rows[0]['micro_f1']:+.3f} entity micro-F1 to the frozen probe")


if __name__ == "__main__":
    main()
