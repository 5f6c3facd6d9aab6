"""The full-train CoNLL-2003 figure on one GPU (the 2-core CPU machines would need hours for it).

    .venv/bin/python bench/gpu_ner.py             # under 2 minutes on one H200 (estimated: 6,100 steps of batch 16)
    .venv/bin/python bench/gpu_ner.py --with-e5   # + the cased multilingual-e5-small, about 2 minutes more

Trains with ``ner-train``'s defaults (all-MiniLM-L6-v2 + case-shape embedding, 3 epochs on the full set) on 100,
1,000 and all 14,041 training sentences and scores entity-level micro-F1 on the whole dev file (3,250 sentences);
then the ablation: MiniLM without the case-shape embedding on the full set; with --with-e5, where it is registered,
the cased multilingual-e5-small (1,000 and full). Appends to bench/results/ner_gpu.jsonl row by row and prints a table;
without CUDA it prints a message and exits. The defaults' rows come first.
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

    from llm_backend.models.registry import ModelRegistry

    out = str(ROOT / "bench" / "results" / "ner_gpu.jsonl")
    # ner-train's defaults first (the figures the README needs), then the ablations: each row is appended to the
    # results file as soon as it is measured, so a run cut short still leaves the first figures.
    rows = bench(["--sizes", "100", "1000", "full", "--out", out])
    rows += bench(["--sizes", "full", "--no-case", "--out", out])
    names = {s.name for s in ModelRegistry().by_role("embedder")}
    if "--with-e5" not in sys.argv:
        print("encoder comparison skipped (add --with-e5: about 2 more minutes).")
    elif "multilingual-e5-small" in names:  # cased XLM-R vocabulary, 12 layers (registered by the encoders work)
        rows += bench(["--sizes", "1000", "full", "--no-case", "--encoder", "multilingual-e5-small", "--out", out])
    else:
        print("multilingual-e5-small is not registered in this checkout: encoder comparison skipped.")
    print("\nall GPU rows:")
    for r in rows:
        print(f"{r['encoder']}, {r['train_sentences']:>6} sents, case={r['use_case']}: dev micro-F1 {r['micro_f1']:.3f} "
              f"(P {r['precision']:.3f} R {r['recall']:.3f}) {r['per_type_f1']}, {r['train_minutes']} min, "
              f"{r['tag_sentences_per_s']} sents/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
