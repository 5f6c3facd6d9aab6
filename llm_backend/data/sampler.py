"""Choosing few-shot training rows and contrastive pairs, reproducibly and within a fixed budget.

Few-shot results swing with *which* eight examples were drawn, so every choice here takes a seed and the same seed
gives the same rows on every machine. Contrastive training compares pairs of texts; the number of possible pairs
grows with the square of the rows (616 Banking77 rows give 189,420 pairs), so pairs are *sampled* up to a fixed
number per epoch and the cost of an epoch does not depend on how many rows were labelled.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from llm_backend.core.errors import TrainingError
from llm_backend.evaluation.metrics import normalise_label


def _canonical(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip()).casefold()


def normalise_labels(values: Sequence[object]) -> tuple[list[str], list[str]]:
    """Trimmed labels with case/space variants merged into their most frequent spelling, plus notes saying so.

    Hand-labelled columns often hold "Sports", "sports " and "SPORTS" for one class; training three classes from
    them would split the examples and teach the model a distinction nobody meant. Empty values stay "" (unlabelled).
    """
    cleaned = [re.sub(r"\s+", " ", normalise_label(v)) for v in values]
    spellings: dict[str, Counter[str]] = {}
    for value in cleaned:
        if value:
            spellings.setdefault(_canonical(value), Counter())[value] += 1
    chosen = {key: counts.most_common(1)[0][0] for key, counts in spellings.items()}
    notes: list[str] = []
    stripped = sum(1 for raw, c in zip(values, cleaned) if c and str(raw) != c)
    merged = {key: sorted(counts) for key, counts in spellings.items() if len(counts) > 1}
    if stripped:
        notes.append(f"{stripped} labels had stray spaces; they were trimmed.")
    for key, variants in merged.items():
        notes.append(f"Labels {', '.join(repr(v) for v in variants)} differ only in case or spacing and were "
                     f"merged into '{chosen[key]}'.")
    return [chosen[_canonical(v)] if v else "" for v in cleaned], notes


def select_per_class(labels: Sequence[str], per_class: int, seed: int = 0) -> tuple[list[int], list[str]]:
    """Row indices: ``per_class`` seeded picks from each class (all rows of a smaller class), in row order.

    Empty labels are never picked. A class with fewer rows than asked is kept whole and named in the notes, so
    nobody mistakes a 3-example class for an 8-example one.
    """
    if per_class < 1:
        raise TrainingError("Examples per class must be at least 1.")
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        if lab:
            by_class.setdefault(lab, []).append(i)
    if not by_class:
        raise TrainingError("The label column has no labelled rows to train on.")
    chosen: list[int] = []
    short: list[str] = []
    for lab in sorted(by_class):
        rows = by_class[lab]
        if len(rows) <= per_class:
            chosen.extend(rows)
            if len(rows) < per_class:
                short.append(f"'{lab}' ({len(rows)})")
        else:
            chosen.extend(int(i) for i in rng.choice(rows, size=per_class, replace=False))
    notes = [f"Fewer than {per_class} examples for {len(short)} classes, all of their rows are used: "
             f"{', '.join(short[:10])}{' …' if len(short) > 10 else ''}."] if short else []
    return sorted(chosen), notes


@dataclass
class TrainingSet:
    """Texts and labels ready to train on, after the checks, with what was changed written in ``notes``."""

    texts: list[str]
    labels: list[str]
    classes: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def y(self) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[l] for l in self.labels], dtype=np.int64)


def prepare_training_set(texts: Sequence[str], labels: Sequence[object], min_per_class: int = 2) -> TrainingSet:
    """Check and clean training rows: normalise labels, drop unlabelled rows and classes that are too small.

    A class with one example cannot form a positive pair for contrastive training, nor be split for validation,
    so classes below ``min_per_class`` are dropped *with a message* rather than failing later inside torch.
    Fewer than two classes left is refused: a classifier needs something to tell apart.
    """
    if len(texts) != len(labels):
        raise TrainingError(f"{len(texts)} texts but {len(labels)} labels.")
    norm, notes = normalise_labels(labels)
    rows = [(str(t), l) for t, l in zip(texts, norm) if l]
    if len(rows) < len(norm):
        notes.append(f"{len(norm) - len(rows)} rows have no label and are not used for training.")
    if not rows:
        raise TrainingError("None of the training rows has a label.")
    counts = Counter(l for _, l in rows)
    n_labelled = len(rows)
    small = sorted(c for c, n in counts.items() if n < min_per_class)
    if small:
        notes.append(f"Dropped {len(small)} classes with fewer than {min_per_class} examples: "
                     f"{', '.join(repr(s) for s in small[:10])}{' …' if len(small) > 10 else ''}.")
        rows = [(t, l) for t, l in rows if l not in small]
    classes = sorted({l for _, l in rows})
    if len(classes) < 2:
        if len(counts) > n_labelled / min_per_class:
            raise TrainingError(
                f"There are {len(counts)} classes but only {n_labelled} labelled training rows, so no class has "
                f"{min_per_class} examples. Label more rows or choose more examples per class.")
        raise TrainingError(
            f"Training needs at least two classes with {min_per_class}+ examples each; found {len(classes)}"
            f"{' (' + classes[0] + ')' if classes else ''}. Label examples of more classes.")
    return TrainingSet([t for t, _ in rows], [l for _, l in rows], classes, notes)


def split_validation(y: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx), stratified; every class keeps at least one training row.

    With 8 examples per class a 20% split holds out one or two per class. Classes with a single row give none.
    """
    if fraction <= 0:
        return np.arange(len(y)), np.array([], dtype=np.int64)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = min(int(round(fraction * len(idx))), len(idx) - 1)
        if n_val == 0 and len(idx) >= 3 and fraction > 0:
            n_val = 1
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def default_num_pairs(n_rows: int, cap: int = 2000) -> int:
    """SetFit's default draws 20 positive and 20 negative pairs per row; capped so an epoch stays minutes on CPU."""
    return int(min(max(40 * n_rows, 64), cap))


def sample_pairs(y: Sequence[int], num_pairs: int, seed: int = 0) -> list[tuple[int, int, float]]:
    """``num_pairs`` (i, j, similarity) pairs, half same-class (1.0) and half different-class (0.0).

    Anchors cycle through the rows in a shuffled order so every row is used about equally; the partner is drawn at
    random. Memory and time are O(num_pairs), never O(n²). Classes with one row give no positive pair, so the
    caller must drop them first (:func:`prepare_training_set`).
    """
    y = np.asarray(y)
    if num_pairs < 1:
        raise TrainingError("The number of contrastive pairs must be at least 1.")
    classes = np.unique(y)
    if len(classes) < 2:
        raise TrainingError("Contrastive training needs at least two classes.")
    members = {int(c): np.flatnonzero(y == c) for c in classes}
    if any(len(m) < 2 for m in members.values()):
        raise TrainingError("Contrastive training needs at least two examples of every class.")
    rng = np.random.default_rng(seed)
    n = len(y)
    anchors = np.concatenate([rng.permutation(n) for _ in range(num_pairs // n + 1)])[:num_pairs]
    pairs: list[tuple[int, int, float]] = []
    for k, a in enumerate(anchors):
        same = members[int(y[a])]
        if k % 2 == 0:
            b = a
            while b == a:
                b = int(rng.choice(same))
            pairs.append((int(a), int(b), 1.0))
        else:
            b = int(rng.integers(n - 1))
            # Draw among the rows of other classes without building the complement for each anchor.
            while y[b] == y[a]:
                b = int(rng.integers(n))
            pairs.append((int(a), int(b), 0.0))
    return pairs
