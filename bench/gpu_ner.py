"""The full-train CoNLL-2003 figure on one GPU (the 2-core CPU machines would need hours for it).

    .venv/bin/python bench/gpu_ner.py          # about 1-2 minutes on one H200

Trains with ``ner-train``'s defaults (all-MiniLM-L6-v2 + case-shape embedding, 3 epochs on the full set) on 100,
1,000 and all 14,041 training sentences, scores entity-level micro-F1 on the whole dev file (3,250 sentences), and
trains the full set once more without the case-shape embedding (the ablation). Writes bench/results/ner_gpu.jsonl
and prints a table; without CUDA it prints a message and exits.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("bench/gpu_ner.py needs a CUDA GPU; on CPU run bench/ner.py --sizes 100 1000 instead.")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = True
    from bench.ner import main as bench

    out = str(ROOT / "bench" / "results" / "ner_gpu.jsonl")
    rows = bench(["--sizes", "100", "1000", "full", "--out", out])
    rows += bench(["--sizes", "100", "1000", "full", "--no-case", "--out", out])
    print("\nall GPU rows:")
    for r in rows:
        print(f"{r['train_sentences']:>6} sents, case={r['use_case']}: dev micro-F1 {r['micro_f1']:.3f} "
              f"(P {r['precision']:.3f} R {r['recall']:.3f}) {r['per_type_f1']}, {r['train_minutes']} min, "
              f"{r['tag_sentences_per_s']} sents/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
