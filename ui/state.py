"""What one browser session carries between pages: the active dataset, label set and latest predictions.

Keys are constants here so pages never disagree on a spelling. Everything is per session (st.session_state); shared
objects (models, embeddings) live in the backend caches.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from llm_backend.data.dataset import Dataset

DATASET = "zss_dataset"
LABELS = "zss_labels"  # list[llm_backend.data.labels.Label]: the current label set, shared by pages
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
        st.page_link("Home.py", label="Go to Home", icon="🏠")
        st.stop()
    return ds


def get(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


# -------------------------------------------------------------------- the active dataset across page changes
#: Home's loader widgets. Streamlit forgets a widget's value when its page is left, so coming back to Home used to
#: show the default (the first bundled sample) and silently replace the uploaded dataset (issue 18).
HOME_WIDGETS = ("home_source", "home_sample", "home_text_col", "home_gold_col", "home_n_rows", "home_seed",
                "home_encoding", "home_delimiter")
HOME_SAVED = "zss_home_saved"


def restore_home_widgets() -> None:
    """Put back the loader values that produced the active dataset (only when Home's widgets were forgotten)."""
    saved = st.session_state.get(HOME_SAVED) or {}
    if get_dataset() is None or "home_source" in st.session_state:
        return
    for key, value in saved.items():
        st.session_state[key] = value


def remember_home_widgets() -> None:
    st.session_state[HOME_SAVED] = {k: st.session_state[k] for k in HOME_WIDGETS if k in st.session_state}


def activate_dataset(ds: Dataset) -> list[str]:
    """Make ``ds`` the active dataset unless it is the same data; results tied to the old one are cleared.

    The same data (same fingerprint) keeps the existing object, so columns added on other pages (map labels)
    survive a visit to Home. Returns messages saying what was cleared.
    """
    old = get_dataset()
    if old is not None and old.fingerprint == ds.fingerprint:
        return []
    set_dataset(ds)
    if old is None:
        return []
    messages = []
    if st.session_state.pop(PREDICTIONS, None) is not None:
        messages.append(f"Predictions made on {old.name} were cleared.")
    if st.session_state.get(LABELS) and ds.gold_column:
        st.session_state.pop(LABELS)
        messages.append("The label set now starts from this dataset's gold labels (the old one was made for "
                        f"{old.name}; reload it from Experiments if you need it).")
    return messages
