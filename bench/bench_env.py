"""What every bench script sets up before it imports the project: the repository and ``bench/`` on ``sys.path``,
the project's model cache (``.cache``, where the dequantised LMs already are) and no model-hub downloads (this
environment has no internet; a hub call would hang or fail instead of saying which local file is missing).

Import it first (``from bench_env import OUT, ROOT``): Python puts a script's own folder on ``sys.path``, so
``python bench/<script>.py`` finds it from any working directory.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results"

for _path in (str(ROOT / "bench"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("ZSS_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
