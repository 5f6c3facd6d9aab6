"""The sidebar every page shows: device, loaded models, memory, the dataset, and adding a model."""
from __future__ import annotations

import streamlit as st

from llm_backend.core.device import pick_device, process_memory_mb
from llm_backend.core.paths import safe_model_folder
from llm_backend.models.registry import ROLE_TITLES, ROLES, spec_from_hub

from . import state
from .errors import user_errors
from .models import loaded_models, registry
from .text import plain, plain_list


def dataset_caption(slot) -> None:
    """Describe the active dataset in a sidebar slot; the home page refreshes it after loading a new one."""
    ds = state.get_dataset()
    if ds is None:
        slot.caption("**Dataset:** none loaded yet")
        return
    gold = f", gold: {plain(ds.gold_column)}" if ds.gold_column else ""
    slot.caption(f"**Dataset:** {plain(ds.name)} — {len(ds.df):,} rows, text: {plain(ds.text_column)}{gold}")


def render_sidebar():
    """Draw the sidebar; returns the dataset slot so a page that changes the dataset can refresh it."""
    with st.sidebar:
        dev = pick_device()
        mem = f"{process_memory_mb():,.0f} MB RAM"
        if dev.kind == "cuda" and dev.memory_total_gb:
            mem += f" · GPU {dev.memory_used_gb:.1f}/{dev.memory_total_gb:.0f} GB"
        st.caption(f"**Device:** {dev.name} ({dev.kind}, {str(dev.dtype).replace('torch.', '')})  \n**Memory:** {mem}")
        loaded = loaded_models()
        st.caption("**Loaded models:** " + (plain_list(s.name for s in loaded) if loaded else "none yet"))
        slot = st.empty()
        dataset_caption(slot)
        with st.expander("Add a model"):
            _add_model_form()
    return slot


def _add_model_form() -> None:
    kind = st.radio("From", ["Local folder", "Hub id"], horizontal=True, key="zss_add_model_kind")
    where = st.text_input("Folder path" if kind == "Local folder" else "Hub id (org/name)", key="zss_add_model_where")
    role = st.selectbox("Role", ["(detect)", *ROLES], key="zss_add_model_role",
                        format_func=lambda r: ROLE_TITLES.get(r, r))
    if st.button("Add model", key="zss_add_model_btn"):
        with user_errors("Adding the model"):
            if not where.strip():
                st.warning("Type a folder path or a hub id first.")
                return
            chosen = None if role == "(detect)" else role
            if kind == "Local folder":
                spec = safe_model_folder(where.strip(), role=chosen)
            else:
                spec = spec_from_hub(where.strip(), chosen or "embedder")
            spec = registry().add(spec)
            models = [m for m in state.get(state.USER_MODELS, []) if m.name != spec.name] + [spec]
            st.session_state[state.USER_MODELS] = models
            st.success(f"Added {plain(spec.name)} as a {ROLE_TITLES[spec.role]}.")
