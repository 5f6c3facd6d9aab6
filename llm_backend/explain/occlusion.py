"""Occlusion (leave one word out): a word's weight is how much the label's probability falls without it.

It needs nothing but the scorer's own forward pass, so it works for every scorer — embedding similarity, trained
heads on embeddings, ensembles, and as the fallback for models that give no gradients. All variants of a text
(the full text and one copy per left-out word) are scored in **one** call, so the embedder encodes them as one
batch: ``bench/explain_faithfulness.py`` measures the cost against a plain score of the same row.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from llm_backend.explain.scoring import ProbFn
from llm_backend.explain.words import Word, remove_words


#: Most variants one explanation encodes. A 256-token text has about 200 words; beyond this many, neighbouring
#: words are left out together (each word of a group gets the group's weight divided by its size), which keeps one
#: explanation to about one batch of encodes.
MAX_VARIANTS = 96


def word_groups(n_words: int, max_variants: int = MAX_VARIANTS) -> list[list[int]]:
    """Consecutive word indices left out together: one word per group unless there are more than ``max_variants``."""
    size = max(1, -(-n_words // max_variants))
    return [list(range(i, min(i + size, n_words))) for i in range(0, n_words, size)]


def occlusion_probabilities(text: str, words: Sequence[Word], prob_fn: ProbFn,
                            max_variants: int = MAX_VARIANTS) -> tuple[np.ndarray, np.ndarray, int]:
    """(the full text's probabilities, (n_words, n_labels) per-word drop-out probabilities, group size), one call.

    The weight of word i for label j is ``full[j] - without[i, j]``: how much the label lost when the word went.
    With grouping, ``without`` is the group's row and the caller divides the drop by the group size.
    """
    groups = word_groups(len(words), max_variants)
    variants = [text] + [remove_words(text, words, g) for g in groups]
    probs = prob_fn(variants)
    without = np.zeros((len(words), probs.shape[1]))
    for row, g in enumerate(groups):
        without[g] = probs[1 + row]
    return probs[0], without, len(groups[0]) if groups else 1


def token_limit_chars(tokenizer: Any, text: str, max_tokens: int | None) -> int | None:
    """The character where a tokenizer's truncation to ``max_tokens`` text tokens cuts ``text``; None if it fits.

    Used to attribute only the part of a long text the model saw (sentence-transformers and classifiers truncate
    silently).
    """
    if not max_tokens or max_tokens <= 0 or tokenizer is None:
        return None
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, TypeError, ValueError):  # slow tokenizers have no offsets
        return None
    offsets = enc["offset_mapping"]
    if len(offsets) <= max_tokens:
        return None
    return int(offsets[max_tokens - 1][1])


def model_token_limit(scorer: Any) -> tuple[Any, int | None]:
    """(tokenizer, text tokens the model reads) for scorers that truncate silently; (None, None) if unknown."""
    from llm_backend.scorers.embedding import EmbeddingScorer

    def st_limit(st_model: Any) -> tuple[Any, int | None]:
        n = getattr(st_model, "max_seq_length", None)
        return getattr(st_model, "tokenizer", None), (int(n) - 2 if n else None)  # [CLS] and [SEP]

    if isinstance(scorer, EmbeddingScorer):
        return st_limit(scorer.loaded.model)
    inner = getattr(scorer, "model", None)
    body = getattr(inner, "body", None)  # EmbeddingHeadModel
    if body is not None:
        return st_limit(body.model)
    if inner is not None and hasattr(inner, "max_length") and hasattr(inner, "tokenizer"):  # SequenceModel
        return inner.tokenizer, int(inner.max_length) - 2
    return None, None
