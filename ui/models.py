"""Models shared by every browser session of one server process.

The backend's process-wide model cache (:func:`llm_backend.models.loading.get_model`) is the only one: the first
session pays the load and the others, the CLI code paths and trained models built on the same embedder reuse it.
A second ``st.cache_resource`` layer used to hold its own copies, so a head-only trained model loaded MiniLM twice.
"""
from __future__ import annotations

import streamlit as st

from llm_backend.models import loading
from llm_backend.models.loaded import LoadedModel
from llm_backend.models.registry import ModelRegistry, ModelSpec, Role

from . import state
from .text import plain


def get_model(spec: ModelSpec) -> LoadedModel:
    with st.spinner(f"Loading {plain(spec.name)}… (first use only; later sessions reuse it)"):
        return loading.get_model(spec)


def loaded_models() -> list[ModelSpec]:
    return loading.loaded_specs()


def registry() -> ModelRegistry:
    """Defaults, trained models on disk, and the models this session added."""
    return ModelRegistry(extra=list(state.get(state.USER_MODELS, [])))


def model_picker(role: Role, label: str, key: str, index: int = 0, default: str | None = None) -> ModelSpec:
    """A selectbox of the registered models of one role; returns the chosen spec. ``default`` (a model name)
    preselects that model when it is registered, so a page starts where its CLI command does."""
    specs = registry().by_role(role)
    names = [s.name for s in specs]
    if not names:
        st.warning(f"No model of role '{role}' is registered: add one in the sidebar (Models → add).")
        st.stop()
    if default in names:
        index = names.index(default)
    name = st.selectbox(label, names, key=key, index=min(max(index, 0), len(names) - 1), help="; ".join(f"{s.name}: {s.description}" for s in specs))
    return next(s for s in specs if s.name == name)
