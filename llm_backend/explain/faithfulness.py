"""Faithfulness measured, not assumed: the deletion test.

If an attribution is faithful, removing the words it ranks highest should lower the explained label's probability
more than removing the same number of words at random. :func:`deletion_test` does that for one row (random removal
averaged over several seeded draws, every variant scored in one call); :func:`summarise` aggregates rows into the
figures bench/explain_faithfulness.py reports: mean drops, the share of rows where the top-k drop is larger, and a
paired Wilcoxon signed-rank test (scipy) of top-k against random.

Drops are measured twice: in the label's probability, and in its **log-odds** ``log p - log(sum of the other
labels' p)`` (the logit margin over the rest of the label set). A confident model's probability sits at ≈1 and
barely moves when words go (a fine-tuned MiniLM's top-3 drop was 0.0017 on 50 AG News rows), so a faithful and an
unfaithful ranking look alike in probability; the log-odds do not saturate. The other labels' mass is summed
directly, never as ``1 - p``, so it stays exact when ``p`` rounds to 1.
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
    logodds_top: float = float("nan")  # the same drops in the label's log-odds (see the module docstring)
    logodds_random: float = float("nan")


def log_odds(probs: np.ndarray, j: int) -> np.ndarray:
    """Per row: log p_j - log(sum of the other labels' probabilities), clipped away from log(0)."""
    probs = np.asarray(probs, dtype=np.float64)
    rest = np.delete(probs, j, axis=1).sum(axis=1)
    tiny = np.finfo(np.float64).tiny
    return np.log(np.maximum(probs[:, j], tiny)) - np.log(np.maximum(rest, tiny))


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
    probs = prob_fn(variants)
    p, lo = probs[:, j], log_odds(probs, j)
    return DeletionResult(k, float(p[0] - p[1]), float(np.mean(p[0] - p[2:])), float(lo[0] - lo[1]),
                          float(np.mean(lo[0] - lo[2:])))


def _paired(top: np.ndarray, rand: np.ndarray, suffix: str) -> dict[str, float]:
    out = {f"mean_drop_top{suffix}": float(top.mean()), f"mean_drop_random{suffix}": float(rand.mean()),
           f"share_top_beats_random{suffix}": float(np.mean(top > rand))}
    if np.any(top - rand != 0):
        from scipy.stats import wilcoxon

        out[f"wilcoxon_p{suffix}"] = float(wilcoxon(top, rand, alternative="greater").pvalue)
    return out


def summarise(results: Sequence[DeletionResult | None]) -> dict[str, float]:
    """Mean drops, how often top-k beat random, and the paired Wilcoxon p-value (one-sided: top > random), in
    probability and (keys ending ``_logodds``) in log-odds."""
    rows = [r for r in results if r is not None]
    if not rows:
        return {"n": 0}
    out: dict[str, float] = {"n": len(rows), "k": rows[0].k}
    out.update(_paired(np.array([r.drop_top for r in rows]), np.array([r.drop_random for r in rows]), ""))
    lo_top = np.array([r.logodds_top for r in rows])
    lo_rand = np.array([r.logodds_random for r in rows])
    if np.isfinite(lo_top).all() and np.isfinite(lo_rand).all():
        out.update(_paired(lo_top, lo_rand, "_logodds"))
    return out
