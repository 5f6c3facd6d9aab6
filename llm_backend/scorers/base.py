"""The one contract every zero-shot method and trained model follows.

``score(texts, labels) -> (n_texts, n_labels)`` (the BTZSC shape): higher means more likely. What the numbers mean
differs by method (cosines, log-probabilities, logits), so :func:`to_probabilities` turns them into a distribution
per row before decisions, ensembles and displays. Keeping the decision step separate lets calibration, thresholds
and "none of these" work the same way for every method.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from llm_backend.core.progress import Progress
from llm_backend.data.labels import Label

NONE_LABEL = "(none)"


@runtime_checkable
class Scorer(Protocol):
    """A zero-shot method or a trained model seen as a scorer."""

    name: str
    #: "similarity" (cosines), "logprob" (log-likelihoods) or "logit" (classifier outputs); tells how to normalise.
    kind: str

    def score(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray: ...


def to_probabilities(scores: np.ndarray, kind: str, temperature: float | None = None) -> np.ndarray:
    """Row-wise softmax with a temperature fitting the score kind.

    Cosines live in a narrow band (differences of 0.05 matter), so they get a sharp temperature; log-probs and
    logits are already on a log scale.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    t = temperature if temperature is not None else (0.05 if kind == "similarity" else 1.0)
    z = scores / t
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class Decision:
    """Predicted labels plus the evidence an analyst wants to see next to them."""

    labels: list[str]  # single-label: one name per row (or NONE_LABEL); multi-label: "a; b" joined names
    top_score: np.ndarray  # probability of the top label
    margin: np.ndarray  # top minus runner-up probability: small margins are the rows to check
    chosen: list[list[str]] = field(default_factory=list)  # multi-label: the labels above threshold per row


def decide(
    probs: np.ndarray,
    label_names: Sequence[str],
    *,
    multi_label: bool = False,
    threshold: float = 0.5,
    none_below: float | None = None,
) -> Decision:
    """Single-label argmax (optionally "none of these" under a confidence floor) or multi-label thresholds."""
    n, k = probs.shape if probs.ndim == 2 else (0, len(label_names))
    if n == 0:
        return Decision([], np.zeros(0), np.zeros(0), [])
    order = np.argsort(-probs, axis=1)
    top = probs[np.arange(n), order[:, 0]]
    second = probs[np.arange(n), order[:, 1]] if k > 1 else np.zeros(n)
    margin = top - second
    if multi_label:
        chosen = [[label_names[j] for j in np.flatnonzero(row >= threshold)] for row in probs]
        names = ["; ".join(c) if c else NONE_LABEL for c in chosen]
        return Decision(names, top, margin, chosen)
    names = [label_names[j] for j in order[:, 0]]
    if none_below is not None:
        names = [NONE_LABEL if t < none_below else nm for nm, t in zip(names, top)]
    return Decision(names, top, margin, [[nm] for nm in names])
