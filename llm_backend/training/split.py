"""Which rows train, which rows test, which rows the distillation teacher labels: one function for page and CLI.

The fine-tune page and ``train`` used to choose rows with two copies of this logic, and the copies differed: the CLI
gave the distillation student the test rows' texts (labelled by the teacher) and then evaluated it on those same
texts. Here the three sets are disjoint by construction (tests check it): training rows, test rows (gold known,
optionally only rows of a named held-out split, capped at ``max_test`` by a seeded sample), and the unlabelled
pool for distillation drawn only from what is left.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from llm_backend.data.sampler import normalise_labels, select_per_class


@dataclass
class TrainSplit:
    labels: list[str]  # the label column, normalised ("" = unlabelled)
    gold: list[str]  # the column test rows are judged against, normalised
    train_idx: list[int]
    test_idx: list[int]
    pool_idx: list[int] = field(default_factory=list)  # distillation only: texts the teacher labels
    notes: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return sorted({self.labels[i] for i in self.train_idx})

    def train_texts(self, texts: Sequence[str]) -> list[str]:
        return [texts[i] for i in self.train_idx]

    def train_labels(self) -> list[str]:
        return [self.labels[i] for i in self.train_idx]

    def test_texts(self, texts: Sequence[str]) -> list[str]:
        return [texts[i] for i in self.test_idx]

    def test_gold(self) -> list[str]:
        return [self.gold[i] for i in self.test_idx]

    def pool_texts(self, texts: Sequence[str]) -> list[str]:
        return [texts[i] for i in self.pool_idx]

    def train_counts(self) -> dict[str, int]:
        """Training rows per class, most first (ties in first-seen order): what the page lists under the split."""
        out: dict[str, int] = {}
        for i in self.train_idx:
            out[self.labels[i]] = out.get(self.labels[i], 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def test_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.test_idx:
            out[self.gold[i]] = out.get(self.gold[i], 0) + 1
        return out

    def unmeasured_classes(self, min_rows: int = 1) -> list[str]:
        """Trained classes with fewer than ``min_rows`` test rows: their recall and F1 mean nothing."""
        counts = self.test_counts()
        return [c for c in self.classes if counts.get(c, 0) < min_rows]

    def coverage_warning(self, min_rows: int = 3) -> str | None:
        """A message when the test rows cannot measure every class (issue 18: 69 test rows for 77 classes)."""
        if not self.test_idx:
            return None
        missing = self.unmeasured_classes(1)
        thin = [c for c in self.unmeasured_classes(min_rows) if c not in missing]
        if not missing and not thin:
            return None
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {len(self.classes)} classes have no test row at all")
        if thin:
            parts.append(f"{len(thin)} more have fewer than {min_rows}")
        return ("The test split cannot measure every class: " + " and ".join(parts) + f" ({len(self.test_idx)} test "
                "rows). Its macro-F1 is unreliable: use cross-validation on the labelled rows, a separate evaluation "
                "file, or fewer training rows per class.")


#: Unlabelled rows a run draws by default (distillation's teacher pool, pseudo-labels): the benches measured
#: pseudo-labelling with 2,000 (bench/fine_tune.py, bench/setfit_recipe_dev.py).
DEFAULT_POOL_ROWS = 2000


def make_split(
    label_values: Sequence[object],
    *,
    per_class: int | None,
    seed: int = 0,
    gold_values: Sequence[object] | None = None,
    test_mask: Sequence[bool] | None = None,
    max_test: int | None = None,
    n_pool: int = 0,
) -> TrainSplit:
    """Training rows (``per_class`` seeded per class, or every labelled row), test rows, and the teacher's pool.

    ``gold_values`` (default: the label column) is what test rows are judged against; ``test_mask`` restricts test
    rows to a held-out split. Test rows are never training rows; the pool (``n_pool`` seeded rows) is never a
    training or test row.
    """
    labels, notes = normalise_labels(list(label_values))
    gold = labels if gold_values is None else normalise_labels(list(gold_values))[0]
    if per_class:
        train_idx, sel_notes = select_per_class(labels, per_class, seed)
        notes += sel_notes
    else:
        train_idx = [i for i, l in enumerate(labels) if l]
    chosen = set(train_idx)
    test_idx = [i for i in range(len(labels)) if gold[i] and i not in chosen
                and (test_mask is None or bool(test_mask[i]))]
    if max_test and len(test_idx) > max_test:
        test_idx = sorted(np.random.default_rng(seed).choice(test_idx, max_test, replace=False).tolist())
    pool_idx: list[int] = []
    if n_pool > 0:
        held = chosen | set(test_idx)
        rest = [i for i in range(len(labels)) if i not in held]
        pool_idx = sorted(int(i) for i in np.random.default_rng(seed).permutation(rest)[:n_pool])
    return TrainSplit(labels, gold, list(train_idx), test_idx, pool_idx, notes)


# --- choosing the columns and the test rows on the page --------------------------------------------------------------
#: The column the Embedding map writes labels into; preferred when present, since a user who labelled rows there
#: came to train on them.
MAP_LABEL_COLUMN = "map_label"
#: Distinct values offered as a held-out split's test value; a split column has a handful (train/dev/test).
MAX_SPLIT_VALUES = 200


def label_columns(columns: Sequence[object], text_column: str) -> list[str]:
    """Every column but the text itself can hold labels (gold, map labels, any user column)."""
    return [str(c) for c in columns if str(c) != text_column]


def default_label_column(candidates: Sequence[str], gold_column: str | None) -> str:
    """Map labels first, then the gold column, else the first candidate."""
    if MAP_LABEL_COLUMN in candidates:
        return MAP_LABEL_COLUMN
    return gold_column if gold_column in candidates else candidates[0]


def split_values(values: Sequence[object]) -> list[str]:
    """The distinct non-empty values of a split column, sorted, at most :data:`MAX_SPLIT_VALUES`."""
    return sorted(map(str, pd.Series(list(values), dtype=object).dropna().unique()))[:MAX_SPLIT_VALUES]


def held_out_mask(values: Sequence[object], test_value: object) -> list[bool]:
    """True for the rows whose split column equals ``test_value`` (compared as text, as the picker shows it)."""
    return [str(v) == str(test_value) for v in values]
