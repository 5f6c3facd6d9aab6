"""The fine-tune page's choices around the split, on the real Banking77 labels: which column to learn from, the
held-out split's values and mask, training rows per class, the label set for the trained classes, the cost key."""
from __future__ import annotations

import numpy as np
import pandas as pd

from llm_backend.data.labels import Label, labels_for_classes
from llm_backend.scorers.estimate import training_cost_key
from llm_backend.training.split import (
    MAX_SPLIT_VALUES,
    default_label_column,
    held_out_mask,
    label_columns,
    make_split,
    split_values,
)


def test_label_column_choices():
    cols = label_columns(["text", "label", "source"], "text")
    assert cols == ["label", "source"]
    assert default_label_column(cols, "label") == "label"
    assert default_label_column(cols + ["map_label"], "label") == "map_label"  # labels given on the map come first
    assert default_label_column(cols, None) == "label" and default_label_column(["source"], "label") == "source"


def test_held_out_split_values_and_mask():
    values = ["train", "test", None, "dev", "test", np.nan, 3]
    assert split_values(values) == ["3", "dev", "test", "train"]
    assert held_out_mask(values, "test") == [False, True, False, False, True, False, False]
    assert held_out_mask(values, 3) == [False] * 6 + [True]
    assert len(split_values([str(i) for i in range(500)])) == MAX_SPLIT_VALUES


def test_train_counts_on_banking77(banking77: pd.DataFrame):
    labels = banking77["label"].tolist()[:3000]
    split = make_split(labels, per_class=4, seed=1)
    counts = split.train_counts()
    assert sum(counts.values()) == len(split.train_idx) and set(counts) == set(split.classes)
    assert list(counts.values()) == sorted(counts.values(), reverse=True) and max(counts.values()) <= 4
    every = make_split(labels, per_class=None).train_counts()
    assert every == pd.Series(labels).value_counts().to_dict()


def test_labels_for_classes_keeps_descriptions_of_trained_classes_only():
    current = [Label("refund", "money back"), Label("delivery", "", ["where is my parcel"]), Label("other")]
    labs = labels_for_classes(current, ["delivery", "refund", "card"])
    assert [l.name for l in labs] == ["delivery", "refund", "card"]
    assert labs[1].description == "money back" and labs[0].phrasings == ["where is my parcel"]
    assert [l.name for l in labels_for_classes(None, ["a", "b"])] == ["a", "b"]


def test_training_cost_key_separates_what_changes_the_cost():
    keys = {training_cost_key("setfit", "small", None), training_cost_key("setfit", "small", 200),
            training_cost_key("distill", "head", None), training_cost_key("distill", "small", None)}
    assert len(keys) == 4 and all(k.startswith("train|") for k in keys)
