"""Faithfulness measured, not assumed: the deletion test.

If an attribution is faithful, removing the words it ranks highest should lower the explained label's probability
more than removing the same number of words at random. :func:`deletion_test` does that for one row (random removal
averaged over several seeded draws, every variant scored in one call); :func:`summarise` aggregates rows into the
figures bench/explain_faithfulness.py reports: mean drops, the share of rows where the top-k drop is larger, and a
paired Wilcoxon signed-rank test (scipy) of top-k against random.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from llm_backend.explain.attribution import Attribution
from llm_backend.explain.scoring import ProbFn
from llm_backend.explain.words import remove_words


@dataclass
class DeletionResult:
    k: int
    drop_top: float  # p(label | text) - p(label | text without the k top-attributed words)
    drop_random: float  # the same for k random words, averaged over draws


def deletion_test(attr: Attribution, prob_fn: ProbFn, k: int, n_random: int = 5,
                  rng: np.random.Generator | None = None) -> DeletionResult | None:
    """One row's deletion test; None when the text has no more than ``k`` words (removing all tells nothing)."""
    n = len(attr.words)
    if n <= k or attr.method == "none":
        return None
    rng = rng or np.random.default_rng(0)
    labels = list(attr.probabilities)
    j = labels.index(attr.label)
    top = [int(i) for i in np.argsort(-attr.weights, kind="stable")[:k]]
    randoms = [rng.choice(n, size=k, replace=False).tolist() for _ in range(n_random)]
    variants = [attr.scored_text, remove_words(attr.scored_text, attr.words, top)]
    variants += [remove_words(attr.scored_text, attr.words, r) for r in randoms]
    p = prob_fn(variants)[:, j]
    return DeletionResult(k, float(p[0] - p[1]), float(np.mean(p[0] - p[2:])))


def summarise(results: Sequence[DeletionResult | None]) -> dict[str, float]:
    """Mean drops, how often top-k beat random, and the paired Wilcoxon p-value (one-sided: top > random)."""
    rows = [r for r in results if r is not None]
    if not rows:
        return {"n": 0}
    top = np.array([r.drop_top for r in rows])
    rand = np.array([r.drop_random for r in rows])
    out = {"n": len(rows), "k": rows[0].k, "mean_drop_top": float(top.mean()), "mean_drop_random": float(rand.mean()),
           "share_top_beats_random": float(np.mean(top > rand))}
    diff = top - rand
    if np.any(diff != 0):
        from scipy.stats import wilcoxon

        out["wilcoxon_p"] = float(wilcoxon(top, rand, alternative="greater").pvalue)
    return out
