"""Seconds per 100 texts of the bundled causal LMs on the same first rows of one shipped-template setting, run one
after the other in one process (a speed ratio: run it under ``flock /tmp/zss-speed.lock``; the rows are too few for
accuracy). Used where the 200-row quality run (bench/prompt_templates.py) of one model could not finish.

Usage: ``OMP_NUM_THREADS=1 flock /tmp/zss-speed.lock nice .venv/bin/python bench/prompt_lm_side_by_side.py
SmolLM2-135M-Instruct,Gemma-3-270M intent:0 8`` (models, setting, rows); prints one dict per model.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import prompt_templates as pt

from llm_backend.models.loading import get_model
from llm_backend.models.registry import ModelRegistry


def main() -> None:
    models, setting, n = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3])
    key, k = setting.split(":")
    reg = ModelRegistry()
    title, df, ev = pt.datasets(200)[key]
    for m in models:
        t0 = time.perf_counter()
        lm = get_model(reg.get(m))
        loaded = time.perf_counter() - t0
        row = pt.measure(key, int(k), {key: (title, df, ev[:n])}, m, lm)
        print(f"load {loaded:.1f}", row, flush=True)


if __name__ == "__main__":
    main()
