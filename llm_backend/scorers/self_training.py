"""Self-training from the zero-shot pass: the corpus teaches a classifier its own most confident answers.

Zero-shot embedding similarity compares every text with one label vector per class. The texts themselves hold far
more evidence: a logistic head fitted on the texts the zero-shot pass is *surest* about learns directions in the
embedding space that separate the classes as they actually appear in this corpus (the words, lengths and styles
the users wrote), not as a label sentence describes them. Re-predicting every text with that head is the
"self-training" step of Gera et al. (2022, "Zero-Shot Text Classification with Self-Training") done on frozen
sentence embeddings, so it costs one logistic regression (about a second) on top of the zero-shot pass.

How the pseudo-labels are chosen (each choice measured on dev slices of AG News and Banking77, see
docs/zero-shot.md; held-out figures are in bench/results/zero_shot_quality.md):

* the zero-shot pass is the default embedding scorer (prototype refinement, prior centering), so the teacher is
  the best zero-shot answer we have;
* per predicted class, the ``top_fraction`` of its rows with the largest margin over the runner-up label; per-class
  selection keeps rare classes in the training set (a global confidence cut leaves them out);
* the label sentences themselves join as weighted anchor rows (as in the few-shot head), so a class with few
  confident rows still has its meaning;
* ``rounds`` repeats the selection with the head's own probabilities.

It needs a corpus: with fewer than ``MIN_ROWS_PER_LABEL`` rows per label there is too little to learn from and the
scorer returns the zero-shot scores (and says so in its notes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from llm_backend.core.progress import Progress, report
from llm_backend.data.labels import Label
from llm_backend.models.loaded import LoadedModel
from llm_backend.scorers.embedding import (
    DEFAULT_REFINE,
    EmbeddingScorer,
    refine_label_vectors,
)

#: Fewer rows than this per label: return the zero-shot scores (a head on a handful of rows only adds noise).
MIN_ROWS_PER_LABEL = 4


@dataclass(frozen=True)
class SelfTrainingSettings:
    """Knobs of the pseudo-labelling; the defaults were chosen on dev slices (docs/zero-shot.md)."""

    top_fraction: float = 0.5  # share of each predicted class's rows (by margin) used as pseudo-labels
    rounds: int = 1  # selections: the first from the zero-shot scores, later ones from the head
    c: float = 10.0  # inverse L2 strength of the logistic head (unit-length embeddings need a large C)
    anchor_weight: float = 2.0  # weight of each label's own sentence vector as a training row


def _centred(scores: np.ndarray) -> np.ndarray:
    return scores - scores.mean(axis=0, keepdims=True)


def select_confident(scores: np.ndarray, top_fraction: float, min_per_class: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, their predicted class) for the ``top_fraction`` most confident rows of each predicted class.

    Confidence is the margin of the top score over the runner-up, compared only within one predicted class, so a
    class whose scores run low (a vague label) still contributes its best rows.
    """
    n, k = scores.shape
    pred = scores.argmax(axis=1)
    if k > 1:
        runner_up = np.partition(scores, -2, axis=1)[:, -2]
    else:
        runner_up = np.zeros(n)
    margin = scores[np.arange(n), pred] - runner_up
    rows: list[np.ndarray] = []
    for j in range(k):
        idx = np.flatnonzero(pred == j)
        if idx.size == 0:
            continue
        take = max(min(min_per_class, idx.size), int(np.ceil(top_fraction * idx.size)))
        rows.append(idx[np.argsort(-margin[idx])[:take]])
    chosen = np.concatenate(rows) if rows else np.zeros(0, dtype=int)
    return chosen, pred[chosen]


def self_train(text_vecs: np.ndarray, zero_shot_scores: np.ndarray, anchors: np.ndarray,
               settings: SelfTrainingSettings = SelfTrainingSettings(), seed: int = 0,
               extra_x: np.ndarray | None = None, extra_y: np.ndarray | None = None) -> np.ndarray:
    """(n, k) log-probabilities of a logistic head trained on the corpus's own confident zero-shot predictions.

    ``extra_x``/``extra_y`` are gold-labelled rows (few-shot): they join every round's training set with weight 1
    and are never replaced by pseudo-labels.
    """
    from sklearn.linear_model import LogisticRegression

    n, k = zero_shot_scores.shape
    scores = _centred(np.asarray(zero_shot_scores, dtype=np.float64))
    log_probs = None
    for _ in range(max(1, settings.rounds)):
        idx, y = select_confident(scores, settings.top_fraction)
        xs = [text_vecs[idx]]
        ys = [y]
        ws = [np.ones(len(idx))]
        if extra_x is not None and extra_y is not None and len(extra_y):
            xs.append(extra_x)
            ys.append(np.asarray(extra_y))
            ws.append(np.ones(len(extra_y)))
        if settings.anchor_weight > 0:
            xs.append(anchors)
            ys.append(np.arange(k))
            ws.append(np.full(k, settings.anchor_weight))
        x, yy, w = np.vstack(xs), np.concatenate(ys), np.concatenate(ws)
        if len(np.unique(yy)) < 2:
            break
        clf = LogisticRegression(C=settings.c, max_iter=1000, random_state=seed)
        clf.fit(x, yy, sample_weight=w)
        proba = np.full((n, k), 1e-9)
        proba[:, clf.classes_] = clf.predict_proba(text_vecs)
        log_probs = np.log(proba)
        scores = _centred(log_probs)
    return log_probs if log_probs is not None else np.asarray(zero_shot_scores, dtype=np.float64)


class SelfTrainingScorer(EmbeddingScorer):
    """Embedding zero-shot, then a logistic head trained on its confident answers (kind "logprob")."""

    name = "self-training"
    kind = "logprob"

    def __init__(self, loaded: LoadedModel, templates: str | Sequence[str] | None = None,
                 use_descriptions: bool = True, refine: int = DEFAULT_REFINE,
                 settings: SelfTrainingSettings | None = None, seed: int = 0) -> None:
        super().__init__(loaded, templates, use_descriptions=use_descriptions, refine=refine)
        self.settings = settings or SelfTrainingSettings()
        self.seed = seed
        self.notes: list[str] = []

    def score(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        self.notes = []
        if not texts:
            return np.zeros((0, len(labels)), dtype=np.float64)
        text_vecs = self.text_embeddings(texts, progress=lambda d, t: report(progress, d, t + 1))
        anchors = self.label_embeddings(labels)
        label_vecs = refine_label_vectors(text_vecs, anchors, self.refine)
        zero_shot = text_vecs @ label_vecs.T
        if len(texts) < MIN_ROWS_PER_LABEL * len(labels) or len(labels) < 2:
            self.notes.append(f"Self-training skipped: it needs at least {MIN_ROWS_PER_LABEL} texts per label "
                              f"({MIN_ROWS_PER_LABEL * len(labels)} here, got {len(texts)}); these are the plain "
                              "embedding-similarity scores.")
            report(progress, 1, 1)
            return np.log(np.clip(_softmax(_centred(zero_shot) / 0.05), 1e-9, None))
        out = self_train(text_vecs, zero_shot, anchors, self.settings, self.seed)
        report(progress, 1, 1)
        return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
