"""How long will a run take? Estimates from measured per-(text × label) cost, never from guesses.

Issue 18: an ensemble that included the LM ran 30 minutes on 77 labels with no warning. The page now measures a
configuration on a handful of rows (:func:`probe`) or reuses what earlier runs in this process measured
(:func:`record`), and shows ``rows × labels × cost`` before a slow run starts. Costs are kept per scorer name and
model, process-wide (the same server scores at the same speed for every session).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Sequence

from llm_backend.data.labels import Label

_COSTS: dict[str, float] = {}  # key -> seconds per (text × label)
_LOCK = threading.Lock()
PROBE_ROWS = 4


def cost_key(scorer_name: str, model_name: str) -> str:
    return f"{scorer_name}|{model_name}"


def training_cost_key(method: str, student: str, num_pairs: int | None) -> str:
    """Training runs are timed per method and the settings that change their cost per row and epoch."""
    return f"train|{method}|{student}|{num_pairs}"


def record(key: str, n_texts: int, n_labels: int, seconds: float) -> None:
    """Remember the per-(text × label) cost of a finished run (larger runs are better measurements: they win)."""
    if n_texts <= 0 or n_labels <= 0 or seconds <= 0:
        return
    with _LOCK:
        _COSTS[key] = seconds / (n_texts * n_labels)


def estimate(key: str, n_texts: int, n_labels: int) -> float | None:
    """Seconds for ``n_texts × n_labels`` at the measured cost, or None when this configuration was never measured."""
    with _LOCK:
        c = _COSTS.get(key)
    return None if c is None else c * n_texts * n_labels


def probe(scorer: Any, texts: Sequence[str], labels: Sequence[Label], key: str) -> float:
    """Score the first few texts once to measure the cost; returns seconds per (text × label).

    The probe's first call includes one-off work (a model's first batch, caches), so it overestimates a little:
    an estimate that errs long is the safe side for a "this will take N minutes" warning.
    """
    sample = list(texts[:PROBE_ROWS])
    if not sample or not labels:
        return 0.0
    start = time.perf_counter()
    scorer.score(sample, list(labels))
    seconds = time.perf_counter() - start
    record(key, len(sample), len(labels), seconds)
    return seconds / (len(sample) * len(labels))


def describe_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"
