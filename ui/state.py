"""What one browser session carries between pages: the active dataset, label set and latest predictions.

Keys are constants here so pages never disagree on a spelling. Everything is per session (st.session_state); shared
objects (models, embeddings) live in the backend caches.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from llm_backend.data.dataset import Dataset

DATASET = "zss_dataset"
LABELS = "zss_labels"  # list[llm_backend.labels.Label]: the current label set, shared by pages
PREDICTIONS = "zss_predictions"  # dict: {"method": str, "pred": list[str], "probs": ndarray, "labels": list[str]}
USER_MODELS = "zss_user_models"  # list[ModelSpec] the user added in the sidebar


#: The dataset every page works on: the backend type the CLI uses too (texts cleaned once, one fingerprint).
ActiveDataset = Dataset


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
