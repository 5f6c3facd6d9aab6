"""Explain: why a scorer gives a text its label (word attributions), and what a transformer attends to.

Thin page: widgets → llm_backend.explain → drawings (ui/explain_panel.py). Works on the active dataset's rows or on
a typed text, with any scorer of the zero-shot page (embedding, LM, NLI, trained) and the current label set.
"""
from __future__ import annotations

import streamlit as st

from llm_backend.core.errors import UserError
from llm_backend.data.labels import parse_label_list
from llm_backend.scorers.factory import METHOD_ROLES, METHOD_TITLES, make_scorer, method_available
from ui import state
from ui.errors import user_errors
from ui.explain_panel import explain_row_panel
from ui.models import get_model, registry
from ui.sidebar import render_sidebar

st.set_page_config(page_title="Explain · Zero-Shot Studio", page_icon="🔎", layout="wide")
render_sidebar()
st.title("🔎 Why this label?")
st.caption("Which words pushed a label up or down (occlusion by default for every scorer — the method measured "
           "faithful; gradients on request for the LM, NLI and fine-tuned transformers), and the attention view of "
           "the model next to it.")

ds = state.get_dataset()
texts = ds.texts() if ds is not None else []
if ds is None:
    st.info("No dataset loaded: type a text below, or load a dataset on the Home page to explain its rows.")

labels = state.get(state.LABELS) or []
typed_labels = st.text_input("Labels (comma-separated; default: the label set of the zero-shot page)",
                             ", ".join(l.name for l in labels), key="xp_labels", max_chars=4000)
reg = registry()
methods = [m for m in METHOD_ROLES if method_available(m) and reg.by_role(METHOD_ROLES[m])]
c1, c2 = st.columns(2)
method = c1.selectbox("Scorer", methods, format_func=lambda m: METHOD_TITLES[m], key="xp_scorer")
specs = reg.by_role(METHOD_ROLES[method])
model_name = c2.selectbox("Model", [s.name for s in specs], key="xp_model")

with user_errors("Reading the labels"):
    labels = parse_label_list(typed_labels) if typed_labels.strip() else []
    if len(labels) < 2:
        raise UserError("Give at least two labels to explain a choice between them.")
    spec = next(s for s in specs if s.name == model_name)
    explain_row_panel(texts, labels, lambda: make_scorer(method, get_model(spec)), key="xp", expanded=True)
