"""Ensembles: averaging the probabilities of several methods.

Methods fail differently (embeddings confuse near-synonym labels, a small LM prefers short or frequent words, NLI
needs good hypotheses), so their averaged probabilities are usually better than the best member. Scores of
different kinds cannot be averaged raw (a cosine of 0.3 and a log-probability of -4 mean nothing together), so each
member is calibrated and turned into a per-row distribution with :func:`to_probabilities` first.

The ensemble returns the log of the averaged probabilities (kind "logprob"), so ``to_probabilities`` on its output
gives back exactly the averaged distribution and it plugs into the same decision step as any single method.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from llm_backend.core.errors import UserError
from llm_backend.core.progress import Progress, report
from llm_backend.data.labels import Label
from llm_backend.scorers.base import Scorer, to_probabilities
from llm_backend.scorers.calibration import calibrate

_EPS = 1e-12


def average_probabilities(prob_list: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of row-normalised probability matrices of the same shape."""
    if not prob_list:
        raise UserError("An ensemble needs at least one method.")
    shapes = {np.asarray(p).shape for p in prob_list}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members disagree on shape: {sorted(shapes)}")
    w = np.ones(len(prob_list)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(prob_list),) or np.any(w < 0) or w.sum() <= 0:
        raise UserError("Ensemble weights must be non-negative numbers, one per method, not all zero.")
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in prob_list])
    return np.tensordot(w / w.sum(), stacked, axes=1)


class EnsembleScorer:
    """Calibrates each member the same way, normalises it, and averages (kind "logprob")."""

    kind = "logprob"

    def __init__(self, members: Sequence[Scorer], calibration: str = "none",
                 weights: Sequence[float] | None = None) -> None:
        if not members:
            raise UserError("Choose at least one method for the ensemble.")
        self.members = list(members)
        self.calibration = calibration
        self.weights = list(weights) if weights is not None else None
        self.name = "ensemble(" + "+".join(m.name for m in self.members) + ")"
        self.notes: list[str] = []

    def member_probabilities(self, texts: Sequence[str], labels: Sequence[Label],
                             progress: Progress = None) -> list[np.ndarray]:
        probs = []
        self.notes = []
        m = len(self.members)
        for i, member in enumerate(self.members):
            def _sub(done: int, total: int, i: int = i) -> None:
                report(progress, int(1000 * (i + (done / total if total else 1)) / m), 1000)

            raw = member.score(texts, labels, progress=_sub)
            cal, info = calibrate(raw, self.calibration, scorer=member, labels=labels)
            if info.note:
                self.notes.append(f"{member.name}: {info.note}")
            probs.append(to_probabilities(cal, member.kind))
        return probs

    def score(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(labels)))
        avg = average_probabilities(self.member_probabilities(texts, labels, progress), self.weights)
        return np.log(np.clip(avg, _EPS, None))

    def scored(self, texts: Sequence[str], labels: Sequence[Label], *, calibration: str, multi_label: bool = False,
               progress: Progress = None):  # noqa: ANN201 - returns pipeline.Scored
        """Members are calibrated inside the ensemble; calibrating the average again would count it twice."""
        from .calibration import CalibrationInfo
        from .pipeline import Scored, independent_probabilities

        self.calibration = calibration
        raw = np.asarray(self.score(texts, labels, progress=progress), dtype=np.float64)
        probs = to_probabilities(raw, self.kind)
        if multi_label:
            probs = independent_probabilities(probs)
        info = CalibrationInfo(calibration, calibration, np.zeros(len(labels)),
                               f"Applied to each member before averaging: {calibration}.")
        return Scored(raw, raw, probs, info, list(self.notes))
