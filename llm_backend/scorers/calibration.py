"""Calibration: removing each label's built-in head start before deciding.

Zero-shot scores carry a bias per label that has nothing to do with the text: some label sentences sit closer to
*every* text in embedding space, and language models prefer frequent words. Two generic corrections, both applied
in score space (cosines, log-probabilities or logits), where subtracting a per-label offset equals dividing that
label's probability by a constant:

- **centering** (prior centering): subtract each label's mean score over the corpus being labelled. Needs no extra
  model calls and assumes no label is expected to dominate the corpus overwhelmingly.
- **contextual** (Zhao et al., 2021, "Calibrate before use"): score content-free inputs ("N/A", "[blank]", "") with
  the same scorer and subtract their average score per label. Works on a single text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from llm_backend.core.errors import UserError
from llm_backend.data.labels import Label
from llm_backend.scorers.base import Scorer

CALIBRATIONS: tuple[str, ...] = ("none", "centering", "contextual")
CALIBRATION_TITLES = {
    "none": "none (raw scores)",
    "centering": "prior centering (subtract each label's mean over the corpus)",
    "contextual": "contextual (subtract the scores of content-free inputs)",
}
CONTENT_FREE_INPUTS: tuple[str, ...] = ("N/A", "[blank]", "")
#: Below this many texts a corpus mean says more about the texts than about the labels.
MIN_TEXTS_FOR_CENTERING = 10


@dataclass
class CalibrationInfo:
    """Which calibration was applied and the per-label offsets subtracted, for display next to the results."""

    requested: str
    applied: str
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0))
    note: str = ""


def check_calibration(method: str) -> str:
    method = (method or "none").strip().lower()
    if method not in CALIBRATIONS:
        raise UserError(f"Unknown calibration '{method}'. Choose one of: {', '.join(CALIBRATIONS)}.")
    return method


def calibrate(
    scores: np.ndarray,
    method: str,
    *,
    scorer: Scorer | None = None,
    labels: Sequence[Label] | None = None,
) -> tuple[np.ndarray, CalibrationInfo]:
    """Return calibrated scores (same shape) and what was done. ``contextual`` needs the scorer and labels."""
    method = check_calibration(method)
    scores = np.asarray(scores, dtype=np.float64)
    k = scores.shape[1] if scores.ndim == 2 else 0
    if method == "none" or scores.size == 0:
        return scores, CalibrationInfo(method, "none", np.zeros(k))
    if method == "centering":
        if scores.shape[0] < MIN_TEXTS_FOR_CENTERING:
            return scores, CalibrationInfo(
                method, "none", np.zeros(k),
                f"Centering skipped: it needs at least {MIN_TEXTS_FOR_CENTERING} texts (got {scores.shape[0]}); "
                "use contextual calibration for a handful of texts.")
        offsets = scores.mean(axis=0)
        return scores - offsets, CalibrationInfo(method, "centering", offsets,
                                                 f"Subtracted each label's mean score over {scores.shape[0]} texts.")
    if scorer is None or labels is None:
        raise ValueError("contextual calibration needs the scorer and the labels")
    cf = np.asarray(scorer.score(list(CONTENT_FREE_INPUTS), labels), dtype=np.float64)
    offsets = cf.mean(axis=0)
    shown = ", ".join(repr(t) for t in CONTENT_FREE_INPUTS)
    return scores - offsets, CalibrationInfo(method, "contextual", offsets,
                                             f"Subtracted each label's mean score on the content-free inputs {shown}.")
