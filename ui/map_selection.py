"""The embedding map's tabs for picked rows: the selection (download, clear, label it) and a query's neighbours.

Selecting and labelling rows is ``llm_backend.maps.embedding_map``'s (``selected_rows``, ``assign_label``); the new
label column replaces the session's dataset, so the fine-tune page can train from it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from llm_backend.data.dataset import Dataset
from llm_backend.data.files import to_csv_safe
from llm_backend.data.labels import Label
from llm_backend.maps.embedding_map import DEFAULT_MAP_COLUMN, assign_label, label_counts, selected_rows

from . import state
from .errors import user_errors
from .map_clusters import FLASH
from .text import plain, plain_list

SELECTED = "map_selected"  # dataset row positions; tests may set it directly


def selection_tab(ds: Dataset, selected: list[int], label_set: Sequence[Label]) -> None:
    if not selected:
        st.caption("Nothing selected yet. Use box or lasso select on the map, or select a query's neighbours.")
        return
    rows = selected_rows(ds.df, selected)
    st.dataframe(rows, width="stretch")
    b1, b2 = st.columns([1, 3])
    b1.download_button("Download selected rows (CSV)", to_csv_safe(rows, index=True).encode("utf-8"),
                       file_name="selected_rows.csv", mime="text/csv", key="map_download")
    if b2.button("Clear selection", key="map_clear_selection"):
        st.session_state[SELECTED] = []
        st.rerun()
    st.markdown("**Label the selection** — kept as a column of the session's dataset; the fine-tune page can "
                "train from it.")
    a1, a2, a3 = st.columns([2, 2, 1])
    column = a1.text_input("Column", value=DEFAULT_MAP_COLUMN, key="map_assign_column")
    value = a2.text_input("Label", key="map_assign_value",
                          placeholder=", ".join(l.name for l in label_set[:5]) or "e.g. billing")
    if a3.button("Assign label", key="map_assign_btn"):
        with user_errors("Assigning the label"):
            new_df = assign_label(ds.df, selected, value, column, protected=[ds.text_column])
            state.set_dataset(replace(ds, df=new_df))
            counts = label_counts(new_df, column)
            st.session_state[FLASH] = [("success", f"Labelled {len(selected)} rows '{plain(value.strip())}' in column "
                                                   f"'{plain(column.strip())}' "
                                                   f"({plain_list(f'{k}: {v}' for k, v in counts.items())}).")]
            st.rerun()


def neighbours_tab(neighbours: pd.DataFrame | None, positions: np.ndarray, highlight: np.ndarray | None) -> None:
    if neighbours is None:
        st.caption("Type a query above the map to list its nearest texts (cosine similarity of the embeddings).")
        return
    st.dataframe(neighbours, width="stretch", hide_index=True)
    if st.button(f"Select these {len(neighbours)} texts", key="map_select_neighbours"):
        st.session_state[SELECTED] = [int(positions[i]) for i in highlight]
        st.rerun()
