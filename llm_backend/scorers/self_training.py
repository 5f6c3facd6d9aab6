"""Self-training from the zero-shot pass: the corpus teaches a classifier its own most confident answers.

Zero-shot embedding similarity compares every text with one label vector per class. The texts themselves hold far
more evidence: a logistic head fitted on the texts the zero-shot pass is *surest* about learns directions in the
embedding space that separate the classes as they actually appear in this corpus (the words, lengths and styles
the users wrote), not as a label sentence describes them. Re-predicting every text with that head is the
"self-training" step of Gera et al. (2022, "Zero-Shot Text Classification with Self-Training") done on frozen
sentence embeddings, so it costs one logistic regression (about a second) on top of the zero-shot pass.

How the pseudo-labels are chosen (each choice measured on the dev slices of AG News, Banking77, THUCNews and ECDT,
with MiniLM, mpnet and e5 embeddings; bench/zero_shot_options.py, docs/zero-shot.md):

* the zero-shot pass is the default embedding scorer (prototype refinement, prior centering), so the teacher is
  the best zero-shot answer we have;
* *balanced* per-class selection: each predicted class contributes its rows with the largest margin over the
  runner-up label, up to the same quota for every class (``top_fraction`` x rows / labels). A class the teacher
  over-predicts (a vague label that attracts many texts) no longer floods the training set with its mistakes, and
  rare classes still contribute their best rows. Against the earlier "top half of each predicted class": +2.2
  points on Banking77 dev (MiniLM), +1.4 (mpnet), +1.2 on THUCNews dev, −1.0 on AG News dev, −0.8 on ECDT dev;
  +0.7 on the mean of six dev slices;
* the label sentences themselves join as weighted anchor rows (as in the few-shot head), so a class with few
  confident rows still has its meaning;
* two rounds: the second selection is made from the first head's probabilities (a better teacher than the
  zero-shot scores).

It needs a corpus: with fewer than ``MIN_ROWS_PER_LABEL`` rows per label (or ``MIN_ROWS`` in all) there is too
little to learn from and the scorer returns the zero-shot scores (and says so in its notes). On dev subsamples,
self-training helped from 2–4 rows per label on 31–77 intents and tied or lost at 4 per label on 4 news topics
(16 rows).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

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
#: ... and fewer rows than this in all (4 labels x 4 rows tied or lost on the AG News dev subsamples).
MIN_ROWS = 24


def enough_rows(n_texts: int, n_labels: int) -> bool:
    """Whether a corpus is large enough for self-training (else the zero-shot scores are returned)."""
    return n_labels >= 2 and n_texts >= max(MIN_ROWS_PER_LABEL * n_labels, MIN_ROWS)


@dataclass(frozen=True)
class SelfTrainingSettings:
    """Knobs of the pseudo-labelling; the defaults were chosen on dev slices (docs/zero-shot.md)."""

    top_fraction: float = 0.3  # share of the rows used as pseudo-labels (per class: of rows / labels if balanced)
    balanced: bool = True  # the same quota per predicted class (else top_fraction of each predicted class)
    rounds: int = 2  # selections: the first from the zero-shot scores, later ones from the head
    c: float = 10.0  # inverse L2 strength of the logistic head (unit-length embeddings need a large C)
    anchor_weight: float = 2.0  # weight of each label's own sentence vector as a training row


#: Softmax temperature of the fallback (too few rows to self-train) over centred cosine similarities.
FALLBACK_TEMPERATURE = 0.05
#: Smallest probability a self-training run reports (classes the head never saw, and underflow): logs stay finite.
PROBA_FLOOR = 1e-9


def _centred(scores: np.ndarray) -> np.ndarray:
    return scores - scores.mean(axis=0, keepdims=True)


def select_confident(scores: np.ndarray, top_fraction: float, min_per_class: int = 2,
                     balanced: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, their predicted class) for the most confident rows of each predicted class.

    Confidence is the margin of the top score over the runner-up, compared only within one predicted class, so a
    class whose scores run low (a vague label) still contributes its best rows. Each class keeps ``top_fraction``
    of its own rows, or with ``balanced`` up to ``top_fraction`` x rows / classes (the same quota for every class).
    """
    n, k = scores.shape
    pred = scores.argmax(axis=1)
    if k > 1:
        runner_up = np.partition(scores, -2, axis=1)[:, -2]
    else:
        runner_up = np.zeros(n)
    margin = scores[np.arange(n), pred] - runner_up
    rows: list[np.ndarray] = []
    quota = int(np.ceil(top_fraction * n / max(k, 1)))
    for j in range(k):
        idx = np.flatnonzero(pred == j)
        if idx.size == 0:
            continue
        share = quota if balanced else int(np.ceil(top_fraction * idx.size))
        take = min(idx.size, max(min_per_class, share))
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
    return fit_self_training(text_vecs, zero_shot_scores, anchors, settings, seed, extra_x, extra_y)[0]


def fit_self_training(text_vecs: np.ndarray, zero_shot_scores: np.ndarray, anchors: np.ndarray,
                      settings: SelfTrainingSettings = SelfTrainingSettings(), seed: int = 0,
                      extra_x: np.ndarray | None = None, extra_y: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
    """:func:`self_train` and the fitted head (a scikit-learn LogisticRegression; None when none could be fitted)."""
    from sklearn.linear_model import LogisticRegression

    n, k = zero_shot_scores.shape
    scores = _centred(np.asarray(zero_shot_scores, dtype=np.float64))
    log_probs, clf = None, None
    for _ in range(max(1, settings.rounds)):
        idx, y = select_confident(scores, settings.top_fraction, balanced=settings.balanced)
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
        proba = np.full((n, k), PROBA_FLOOR)
        proba[:, clf.classes_] = clf.predict_proba(text_vecs)
        log_probs = np.log(np.clip(proba, PROBA_FLOOR, None))  # the floor keeps logs finite; frozen heads use it too
        scores = _centred(log_probs)
    if log_probs is None:
        return np.asarray(zero_shot_scores, dtype=np.float64), None
    return log_probs, clf


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
        self._fitted: tuple[Any, np.ndarray, np.ndarray] | None = None  # (head or None, label vectors, offsets)

    def score(self, texts: Sequence[str], labels: Sequence[Label], progress: Progress = None) -> np.ndarray:
        self.notes = []
        if not texts:
            return np.zeros((0, len(labels)), dtype=np.float64)
        text_vecs = self.text_embeddings(texts, progress=lambda d, t: report(progress, d, t + 1))
        anchors = self.label_embeddings(labels)
        label_vecs = refine_label_vectors(text_vecs, anchors, self.refine)
        zero_shot = text_vecs @ label_vecs.T
        self._fitted = (None, label_vecs, zero_shot.mean(axis=0))
        if not enough_rows(len(texts), len(labels)):
            need = max(MIN_ROWS_PER_LABEL * len(labels), MIN_ROWS)
            self.notes.append(f"Self-training skipped: it needs at least {MIN_ROWS_PER_LABEL} texts per label and "
                              f"{MIN_ROWS} in all ({need} here, got {len(texts)}); these are the embedding-similarity "
                              "scores (prototype refinement, centering).")
            report(progress, 1, 1)
            return floored_log_probs(_centred(zero_shot) / FALLBACK_TEMPERATURE)
        out, head = fit_self_training(text_vecs, zero_shot, anchors, self.settings, self.seed)
        self._fitted = (head, label_vecs, zero_shot.mean(axis=0))
        report(progress, 1, 1)
        return out

    def linear_head(self, corpus: Sequence[str], labels: Sequence[Label]) -> tuple[np.ndarray, np.ndarray]:
        """``(W, b)`` with ``score(texts) == log(clip(softmax(embed(texts) @ W.T + b), PROBA_FLOOR))`` for any texts,
        as the run over ``corpus`` scores them. Everything self-training learns from the corpus is linear in the
        text's embedding (a multinomial or binary logistic head, or the centred, refined label vectors of the
        fallback), so a frozen classifier can keep it as a matrix and a bias and score each row on its own."""
        self.score(list(corpus), labels)
        head, label_vecs, means = self._fitted  # type: ignore[misc]
        k = len(labels)
        if head is None:
            return label_vecs / FALLBACK_TEMPERATURE, -np.asarray(means, dtype=np.float64) / FALLBACK_TEMPERATURE
        coef = np.asarray(head.coef_, dtype=np.float64)
        icpt = np.asarray(head.intercept_, dtype=np.float64)
        classes = np.asarray(head.classes_, dtype=int)
        if len(classes) == 2 and coef.shape[0] == 1:  # binary: p1 = sigmoid(z) = softmax([0, z])[1]
            coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
            icpt = np.array([0.0, icpt[0]])
        w = np.zeros((k, coef.shape[1]))
        # A class the head never saw gets a logit of about -1e4: softmax mass 0, floored like the live run.
        b = np.full(k, -1e4)
        w[classes], b[classes] = coef, icpt
        return w, b

    def explainer(self, corpus: Sequence[str], labels: Sequence[Label]) -> Callable[[Sequence[str]], np.ndarray]:
        """``f(texts) -> (n, k)`` probabilities of new texts (e.g. variants of one row, for explanations) as the
        run over ``corpus`` scores them: the head fitted on ``corpus``, or the refined, centred label vectors when
        the corpus was too small to self-train."""
        self.score(list(corpus), labels)
        head, label_vecs, offsets = self._fitted  # type: ignore[misc]
        k = len(labels)

        def probabilities(texts: Sequence[str]) -> np.ndarray:
            vecs = self.text_embeddings(list(texts))
            if head is None:
                return _softmax((vecs @ label_vecs.T - offsets) / FALLBACK_TEMPERATURE)
            p = np.full((len(vecs), k), 1e-9)
            p[:, head.classes_] = head.predict_proba(vecs)
            return p / p.sum(axis=1, keepdims=True)

        return probabilities


def floored_log_probs(logits: np.ndarray) -> np.ndarray:
    """Log-softmax floored at :data:`PROBA_FLOOR`: what a self-training run returns for its fallback's logits and
    what a frozen self-training head returns for ``embedding @ W.T + b`` (one definition, so they cannot drift)."""
    return np.log(np.clip(_softmax(logits), PROBA_FLOOR, None))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
