"""The train/held-out split of tagged sentences the Named entities page trains and scores on.

A seeded shuffle: the first ``n_train`` sentences of it train, the last ``n_test`` are held out (never trained on,
even when the two counts add up to more than the data: the page's widgets keep them apart). Both keep the file's
order, so an error sentence's number still points into the file.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from llm_backend.core.errors import TrainingError
from llm_backend.ner.conll import TaggedData, TaggedSentence

#: Default sizes: a fifth held out (at most 500 sentences), up to 1,000 of the rest to train on; on a CPU a
#: 1,000-sentence run takes a few minutes (docs/ner.md).
MAX_DEFAULT_TEST = 500
MAX_DEFAULT_TRAIN = 1000


def default_test_size(n_sentences: int) -> int:
    return min(MAX_DEFAULT_TEST, n_sentences // 5)


def default_train_size(n_sentences: int, n_test: int) -> int:
    return min(MAX_DEFAULT_TRAIN, max(1, n_sentences - n_test))


def split_sentences(sentences: Sequence[TaggedSentence], n_train: int, n_test: int,
                    seed: int = 0) -> tuple[list[TaggedSentence], TaggedData]:
    """(training sentences, held-out data); a TrainingError when the training part has no entity to learn."""
    n = len(sentences)
    if n_train < 1 or n_test < 0 or n_train + n_test > n:
        raise TrainingError(f"Choose at least 1 training sentence and at most {n} sentences in all "
                            f"(asked for {n_train} + {n_test}).")
    order = np.random.default_rng(seed).permutation(n)
    train = [sentences[i] for i in sorted(order[:n_train])]
    test = TaggedData([sentences[i] for i in sorted(order[n - n_test:])] if n_test else [], [], "held-out sentences")
    if not any(t != "O" for s in train for t in s.tags):
        raise TrainingError("The chosen training sentences have no entities. Use more sentences.")
    return train, test
