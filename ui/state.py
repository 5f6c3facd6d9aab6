"""What one browser session carries between pages: the active dataset, label set and latest predictions.

Keys are constants here so pages never disagree on a spelling. Everything is per session (st.session_state); shared
objects (models, embeddings) live in the backend caches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import streamlit as st

from llm_backend.data.files import text_column_report

DATASET = "zss_dataset"
LABELS = "zss_labels"  # list[llm_backend.data.labels.Label]: the current label set, shared by pages
PREDICTIONS = "zss_predictions"  # dict: {"method": str, "pred": list[str], "probs": ndarray, "labels": list[str]}
USER_MODELS = "zss_user_models"  # list[ModelSpec] the user added in the sidebar


@dataclass
class ActiveDataset:
    """The dataset every page works on. ``df`` is already sampled; ``source_rows`` is the size before sampling."""

    df: pd.DataFrame
    name: str
    text_column: str
    gold_column: str | None = None
    source_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def texts(self) -> list[str]:
        return text_column_report(self.df[self.text_column])[0]

    def gold(self) -> list[str] | None:
        if not self.gold_column:
            return None
        return [str(v).strip() if v is not None and str(v) != "nan" else "" for v in self.df[self.gold_column].tolist()]

    @property
    def fingerprint(self) -> str:
        """Changes when rows or columns change, so pages can drop results computed on other data."""
        return f"{self.name}:{len(self.df)}:{self.text_column}:{self.gold_column}:{pd.util.hash_pandas_object(self.df[self.text_column], index=True).sum()}"


def get_dataset() -> ActiveDataset | None:
    return st.session_state.get(DATASET)


def set_dataset(ds: ActiveDataset) -> None:
    st.session_state[DATASET] = ds


def require_dataset() -> ActiveDataset:
    """The active dataset, or a pointer to the home page and a stop: pages never run on nothing."""
    ds = get_dataset()
    if ds is None:
        st.info("No dataset is loaded yet. Load a file or a bundled sample on the Home page first.")
        st.page_link("app.py", label="Go to Home", icon="🏠")
        st.stop()
    return ds


def get(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)
