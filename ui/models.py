"""Models shared by every browser session of one server process.

``st.cache_resource`` wraps the backend loader, so the first session pays the load and the others reuse it. The
spec is passed unhashed (leading underscore) and identified by its key string.
"""
from __future__ import annotations

import streamlit as st

from llm_backend.loading import LoadedModel, load_model
from llm_backend.registry import ModelRegistry, ModelSpec, Role

from . import state


@st.cache_resource(show_spinner=False, max_entries=8)
def _loaded_models() -> dict[str, ModelSpec]:
    """Process-wide record of what is loaded, for the sidebar."""
    return {}


@st.cache_resource(show_spinner=False, max_entries=8)
def _load(key: str, _spec: ModelSpec) -> LoadedModel:
    model = load_model(_spec)
    _loaded_models()[key] = _spec
    return model


def get_model(spec: ModelSpec) -> LoadedModel:
    with st.spinner(f"Loading {spec.name}… (first use only; later sessions reuse it)"):
        return _load(spec.key, spec)


def loaded_models() -> list[ModelSpec]:
    return list(_loaded_models().values())


def registry() -> ModelRegistry:
    """Defaults, trained models on disk, and the models this session added."""
    return ModelRegistry(extra=list(state.get(state.USER_MODELS, [])))


def model_picker(role: Role, label: str, key: str, index: int = 0) -> ModelSpec:
    """A selectbox of the registered models of one role; returns the chosen spec."""
    specs = registry().by_role(role)
    names = [s.name for s in specs]
    if not names:
        st.warning(f"No model of role '{role}' is registered: add one in the sidebar (Models → add).")
        st.stop()
    name = st.selectbox(label, names, key=key, index=min(max(index, 0), len(names) - 1), help="; ".join(f"{s.name}: {s.description}" for s in specs))
    return next(s for s in specs if s.name == name)
