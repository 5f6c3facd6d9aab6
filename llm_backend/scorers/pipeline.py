"""The decision pipeline every scorer goes through: score → calibrate → probabilities (→ decide).

Written once here, so the zero-shot page, the ``score`` command, the fine-tune baseline, the distillation teacher
and the benches turn raw scores into probabilities the same way (issue 11: the fine-tune page's "zero-shot
baseline" used to skip the calibration the zero-shot page applies, so one label set showed two baselines).

A scorer may specialise the step by defining ``scored(texts, labels, *, calibration, multi_label, progress)``
returning a :class:`Scored` (the ensemble calibrates each member before averaging; NLI in multi-label mode works on
entailment-vs-contradiction log-odds); every other scorer gets :func:`default_scored`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from llm_backend.data.labels import Label
from llm_backend.core.progress import Progress
from llm_backend.scorers.base import to_probabilities
from llm_backend.scorers.calibration import CalibrationInfo, calibrate

_EPS = 1e-12


@dataclass
class Scored:
    """What one scorer returned for one (texts × labels) matrix, before any decision."""

    raw: np.ndarray  # as the method returned them
    scores: np.ndarray  # after calibration
    probs: np.ndarray  # row distribution (single-label) or independent per-label probabilities (multi-label)
    calibration: CalibrationInfo
    notes: list[str] = field(default_factory=list)


def independent_probabilities(probs: np.ndarray) -> np.ndarray:
    """Multi-label probabilities for methods that only *rank* labels (embeddings, LMs, classifiers).

    ``p·k / (p·k + 1)``: 0.5 exactly when a label is as likely as the uniform 1/k, so a threshold of 0.5 keeps the
    labels the method favours above average and higher thresholds keep fewer.
    """
    k = probs.shape[1] if probs.ndim == 2 else 1
    pk = probs * k
    return pk / (pk + 1.0)


def default_scored(scorer: Any, texts: Sequence[str], labels: Sequence[Label], *, calibration: str,
                   multi_label: bool = False, progress: Progress = None) -> Scored:
    """score → calibrate → to_probabilities (→ independent probabilities in multi-label mode)."""
    raw = np.asarray(scorer.score(texts, labels, progress=progress), dtype=np.float64)
    scores, info = calibrate(raw, calibration, scorer=scorer, labels=labels)
    probs = to_probabilities(scores, scorer.kind)
    if multi_label:
        probs = independent_probabilities(probs)
    return Scored(raw, scores, probs, info, list(getattr(scorer, "notes", None) or []))


def scored(scorer: Any, texts: Sequence[str], labels: Sequence[Label], *, calibration: str,
           multi_label: bool = False, progress: Progress = None) -> Scored:
    """The one entry point: the scorer's own ``scored`` when it specialises the pipeline, else the default."""
    own = getattr(scorer, "scored", None)
    if callable(own):
        return own(texts, labels, calibration=calibration, multi_label=multi_label, progress=progress)
    return default_scored(scorer, texts, labels, calibration=calibration, multi_label=multi_label,
                          progress=progress)


class CalibratedScorer:
    """A scorer whose scores are the log of the pipeline's probabilities (kind "logprob").

    The fine-tune baseline and the distillation teacher use it, so the rows they see are labelled exactly as the
    zero-shot page labels them (same calibration, same label descriptions). ``labels_by_name`` swaps in the user's
    richer label (description, phrasings) when a caller passes bare class names.
    """

    kind = "logprob"

    def __init__(self, inner: Any, calibration: str, labels: Sequence[Label] | None = None) -> None:
        self.inner = inner
        self.calibration = calibration
        self.labels_by_name = {l.name: l for l in (labels or [])}
        self.name = getattr(inner, "name", "zero-shot")
        self.notes: list[str] = []

    def score(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        labs = [self.labels_by_name.get(l.name, l) for l in labels]
        if not len(texts):
            return np.zeros((0, len(labs)))
        out = scored(self.inner, texts, labs, calibration=self.calibration, progress=progress)
        self.notes = out.notes + ([out.calibration.note] if out.calibration.note else [])
        return np.log(np.clip(out.probs, _EPS, None))
