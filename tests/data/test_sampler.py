"""Row selection and pair sampling: seeded, bounded, and loud about what they change."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from llm_backend.core.errors import TrainingError
from llm_backend.data.sampler import (
    default_num_pairs,
    normalise_labels,
    prepare_training_set,
    sample_pairs,
    select_per_class,
    split_validation,
)


def test_normalise_labels_merges_case_and_space_variants_and_says_so():
    labels, notes = normalise_labels(["Sports", " sports", "SPORTS ", "World", "World", "world", None, "  "])
    assert labels[:3] == ["Sports", "Sports", "Sports"]
    assert labels[3:6] == ["World", "World", "World"]
    assert labels[6:] == ["", ""]
    assert any("merged into 'Sports'" in n for n in notes)
    assert any("trimmed" in n for n in notes)


def test_select_per_class_is_seeded_and_balanced(banking77):
    labels = banking77["label"].tolist()
    a, _ = select_per_class(labels, 8, seed=1)
    b, _ = select_per_class(labels, 8, seed=1)
    c, _ = select_per_class(labels, 8, seed=2)
    assert a == b and a != c
    counts = Counter(labels[i] for i in a)
    assert len(counts) == 77 and set(counts.values()) == {8}


def test_select_per_class_keeps_small_classes_whole_and_names_them():
    labels = ["a"] * 10 + ["b"] * 3 + [""] * 5
    idx, notes = select_per_class(labels, 5, seed=0)
    assert Counter(labels[i] for i in idx) == {"a": 5, "b": 3}
    assert notes and "'b' (3)" in notes[0]


def test_prepare_drops_singleton_classes_with_a_message():
    data = prepare_training_set(["t1", "t2", "t3", "t4", "t5"], ["x", "x", "y", "y", "lonely"])
    assert data.classes == ["x", "y"]
    assert any("lonely" in n and "Dropped" in n for n in data.notes)


@pytest.mark.parametrize("labels, needle", [
    (["only", "only", "only"], "at least two classes"),
    (["a", "b", "c", "d", "e"], "5 classes but only 5"),
    (["", None, " "], "None of the training rows has a label"),
])
def test_prepare_refuses_untrainable_sets(labels, needle):
    with pytest.raises(TrainingError, match=needle):
        prepare_training_set([f"text {i}" for i in range(len(labels))], labels)


def test_sample_pairs_is_bounded_balanced_and_valid():
    y = np.repeat(np.arange(77), 8)  # 616 rows: 189,420 possible pairs
    pairs = sample_pairs(y, 500, seed=3)
    assert len(pairs) == 500
    assert pairs == sample_pairs(y, 500, seed=3)
    pos = [p for p in pairs if p[2] == 1.0]
    assert abs(len(pos) - 250) <= 1
    assert all(i != j for i, j, _ in pairs)
    assert all((y[i] == y[j]) == (s == 1.0) for i, j, s in pairs)
    anchors = Counter(i for i, _, _ in pairs)
    assert max(anchors.values()) - min(anchors.values()) <= 1  # anchors cycle through the rows evenly
    assert default_num_pairs(616) == 2000 and default_num_pairs(32) == 1280


def test_sample_pairs_refuses_singletons():
    with pytest.raises(TrainingError, match="two examples of every class"):
        sample_pairs([0, 0, 1], 10)


def test_split_validation_keeps_every_class_in_training():
    y = np.array([0] * 8 + [1] * 8 + [2] * 2)
    tr, va = split_validation(y, 0.25, seed=0)
    assert set(y[tr]) == {0, 1, 2}
    assert Counter(y[va].tolist()) == {0: 2, 1: 2}
    assert len(set(tr) & set(va)) == 0 and len(tr) + len(va) == len(y)
