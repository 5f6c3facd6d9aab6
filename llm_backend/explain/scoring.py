"""One function per scorer that maps texts to label probabilities, the way a plain score of those texts would.

Occlusion and the deletion test both need "the label probabilities of these variants of one text", many times.
Calling ``scorer.score`` on the variants is right for most scorers, with two exceptions handled here:

- The embedding scorer's *prototype refinement* moves the label vectors toward the corpus being scored. Scoring 30
  variants of one text as if they were a corpus would refine the labels on the variants themselves. So the label
  vectors are computed once — refined on the real corpus when one is given (the page's dataset, the CLI's file),
  exactly as a run over that corpus does — and each variant is only encoded and compared with them. All variants
  go through one ``embed_texts`` call (one batched encode).
- Ensembles and any other scorer that holds an embedding member get the same treatment through a copy with
  refinement off (a note says so), since they cannot take fixed label vectors.
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np

from llm_backend.models.embedding_cache import embed_texts
from llm_backend.data.labels import Label
from llm_backend.scorers.base import Scorer, to_probabilities
from llm_backend.scorers.embedding import EmbeddingScorer, refine_label_vectors

ProbFn = Callable[[Sequence[str]], np.ndarray]


def _without_refinement(scorer: Scorer) -> tuple[Scorer, bool]:
    """A shallow copy of ``scorer`` (and of ensemble members) with embedding refinement off; True if it was on."""
    changed = False
    if getattr(scorer, "refine", 0):
        scorer = copy.copy(scorer)
        scorer.refine = 0  # type: ignore[attr-defined]
        changed = True
    members = getattr(scorer, "members", None)
    if members:
        new_members = []
        for m in members:
            m2, c = _without_refinement(m)
            new_members.append(m2)
            changed |= c
        if changed:
            scorer = copy.copy(scorer)
            scorer.members = new_members  # type: ignore[attr-defined]
    return scorer, changed


def probability_function(scorer: Scorer, labels: Sequence[Label], corpus: Sequence[str] | None = None,
                         notes: list[str] | None = None) -> ProbFn:
    """``f(texts) -> (n, n_labels)`` probabilities, consistent with scoring those texts inside ``corpus``."""
    labels = list(labels)
    explainer = getattr(scorer, "explainer", None)  # self-training: the head fitted on the corpus
    if explainer is not None and corpus is not None and len(corpus):
        return explainer(corpus, labels)
    if isinstance(scorer, EmbeddingScorer):
        if explainer is not None and notes is not None:
            notes.append("Self-training needs the corpus: without it these are the embedding-similarity "
                         "probabilities.")
        label_vecs = scorer.label_embeddings(labels)
        if scorer.refine and corpus is not None and len(corpus):
            label_vecs = refine_label_vectors(embed_texts(scorer.loaded, list(corpus)), label_vecs, scorer.refine)
        elif scorer.refine and notes is not None:
            notes.append("Label vectors were not refined (no corpus given): probabilities may differ slightly "
                         "from a run over the whole dataset.")

        def embedding_probs(texts: Sequence[str]) -> np.ndarray:
            vecs = embed_texts(scorer.loaded, list(texts))
            return to_probabilities(vecs @ label_vecs.T, "similarity")

        return embedding_probs
    plain, changed = _without_refinement(scorer)
    if changed and notes is not None:
        notes.append("Embedding label refinement is off while explaining an ensemble (variants of one text are not "
                     "a corpus).")

    def scorer_probs(texts: Sequence[str]) -> np.ndarray:
        return to_probabilities(plain.score(list(texts), labels), plain.kind)

    return scorer_probs
