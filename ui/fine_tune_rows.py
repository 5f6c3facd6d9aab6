"""The fine-tune page's "Training rows" form: label column, k per class, seed, which rows test, the test cap.

Returns plain choices; the split itself is ``llm_backend.training.split.make_split`` (the page's and ``train``'s one
function), and the column defaults and held-out mask are that module's too.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from llm_backend.data.dataset import Dataset
from llm_backend.data.files import read_table
from llm_backend.training.split import default_label_column, held_out_mask, label_columns, split_values

from .errors import user_errors
from .text import plain

K_MODE = "k per class (seeded)"


@dataclass
class RowsChoice:
    label_col: str
    per_class: int | None  # None: every labelled row
    seed: int
    gold_col: str  # what test rows are judged against
    test_mask: list[bool] | None  # None: every row not used for training may test
    eval_ds: Dataset | None  # a separate evaluation file, when chosen and read
    max_test: int


def training_rows_form(ds: Dataset) -> RowsChoice:
    """Draw the form; stops the page with a message when the dataset has no column to learn from."""
    candidates = label_columns(ds.df.columns, ds.text_column)
    if not candidates:
        st.warning("This dataset has only a text column. Add a label column (gold labels, or labels given on the "
                   "Embedding map page) to train a model.")
        st.stop()
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
    label_col = c1.selectbox("Label column to learn from", candidates,
                             index=candidates.index(default_label_column(candidates, ds.gold_column)),
                             key="ft_label_col", help="The gold column, or a column of labels given on the Embedding "
                                                      "map page. Empty cells are unlabelled rows.")
    mode = c2.radio("Rows", [K_MODE, "every labelled row"], key="ft_mode", horizontal=True)
    k = int(c3.number_input("k per class", 1, 1000, 8, key="ft_k", disabled=mode != K_MODE))
    seed = int(c4.number_input("Seed", 0, 10_000, 0, key="ft_seed"))
    gold_col = ds.gold_column if ds.gold_column else label_col
    t1, t2, t3 = st.columns([2, 2, 2])
    split_kind = t1.radio("Test rows", ["rows not used for training", "a held-out split",
                                        "a separate evaluation file"], key="ft_split_kind")
    test_mask, eval_ds = None, None
    if split_kind == "a held-out split":
        split_col = t2.selectbox("Split column", candidates, key="ft_split_col")
        split_val = t3.selectbox("Test value", split_values(ds.df[split_col].tolist()), key="ft_split_val")
        test_mask = held_out_mask(ds.df[split_col].tolist(), split_val)
    elif split_kind == "a separate evaluation file":
        up = t2.file_uploader(f"File with columns {plain(ds.text_column)} and {plain(gold_col)}", key="ft_eval_file")
        test_mask = [False] * len(ds.df)
        if up is not None:
            with user_errors("Reading the evaluation file"):
                eval_ds = Dataset(read_table(up.getvalue(), up.name).df, up.name, ds.text_column, gold_col)
                eval_ds.texts(), eval_ds.gold()
    max_test = int(st.number_input("Score at most this many test rows (seeded sample, keeps runs quick)", 50,
                                   200_000, 2000, step=50, key="ft_max_test"))
    return RowsChoice(label_col, k if mode == K_MODE else None, seed, gold_col, test_mask, eval_ds, max_test)
