"""The Experiments page's saved label sets and templates: save the current label set, load one back, open a
template in the prompt page."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from llm_backend.data.labels import make_labels
from llm_backend.store.database import Store
from llm_backend.store.run_views import template_to_open

from . import state
from .errors import user_errors
from .persistence import TEMPLATE_TO_LOAD
from .text import plain

PAGES = Path(__file__).resolve().parent.parent / "pages"


def label_sets_panel(store: Store, project_id: int) -> None:
    current = state.get(state.LABELS)
    if current:
        c1, c2 = st.columns([2, 1])
        set_name = c1.text_input("Save the current label set as", value="my labels", key="exp_save_labels_name")
        c2.write("")
        if c2.button(f"Save {len(current)} labels", key="exp_save_labels_btn"):
            with user_errors("Saving the label set"):
                saved = store.save_label_set(project_id, set_name, current)
                st.success(f"Saved '{plain(saved.name)}' as version {saved.version}.")
    sets = store.list_label_sets(project_id)
    st.subheader("Label sets")
    if not sets:
        st.caption("No label sets saved yet. Runs save the label set they used; you can also save one above.")
        return
    by_id = {v.id: v for v in sets}
    ls_id = st.selectbox("Label set", list(by_id), key="exp_labelset",
                         format_func=lambda i: f"{by_id[i].name} · v{by_id[i].version} · {len(by_id[i].content)} labels")
    chosen = by_id[ls_id]
    st.dataframe(pd.DataFrame(chosen.content), width="stretch", hide_index=True, key="exp_labelset_preview")
    if st.button("Load into this session", key="exp_load_labels", type="primary"):
        with user_errors("Loading the label set"):
            st.session_state[state.LABELS] = make_labels(chosen.content)
            st.success(f"Loaded '{plain(chosen.name)}' v{chosen.version} ({len(chosen.content)} labels) as the "
                       "current label set.")
            if (PAGES / "1_Zero-shot_labels.py").is_file():
                st.page_link("pages/1_Zero-shot_labels.py", label="Open Zero-shot label testing", icon="🏷️")


def templates_panel(store: Store, project_id: int) -> None:
    st.subheader("Templates")
    templates = store.list_templates(project_id)
    if not templates:
        st.caption("No templates saved yet. The prompt page saves the templates its runs used.")
        return
    t_by_id = {v.id: v for v in templates}
    t_id = st.selectbox("Template", list(t_by_id), key="exp_template",
                        format_func=lambda i: f"{t_by_id[i].name} · v{t_by_id[i].version}")
    chosen = t_by_id[t_id]
    st.json(chosen.content, expanded=True)
    if st.button("Open in the prompt page", key="exp_load_template", type="primary"):
        st.session_state[TEMPLATE_TO_LOAD] = template_to_open(chosen)
        st.success(f"Template '{plain(chosen.name)}' v{chosen.version} is ready for the prompt page.")
        if (PAGES / "2_Prompt_templates.py").is_file():
            st.page_link("pages/2_Prompt_templates.py", label="Open Prompt templates", icon="📝")
