"""The prompt page's template editor: name, Jinja body, verbalizer table, few-shot count, download and save.

The editor's widgets are keyed (``pt_name``, ``pt_template``…) so loading a template means writing those keys
before the widgets are drawn; :func:`load_into_editor` does that and bumps a version so the verbalizer table (a
``data_editor``, whose edits Streamlit keeps per key) starts fresh. Validation is the backend's
(``llm_backend.prompts.templates``); errors show through :func:`ui.errors.user_errors`.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import streamlit as st

from llm_backend.core.paths import display_path
from llm_backend.data.dataset import Dataset
from llm_backend.prompts.templates import (
    RESERVED,
    PromptTemplate,
    TemplateLibrary,
    identifier_columns,
    starter_template,
    template_from_dict,
    verbalizer_from_labels,
    verbalizer_from_rows,
)

from .errors import user_errors
from .persistence import TEMPLATE_TO_LOAD
from .text import plain

VERSION = "pt_editor_version"
BASE = "pt_base"  # the template the editor started from


def load_into_editor(tpl: PromptTemplate) -> None:
    """Show ``tpl`` in the editor on the next draw (call before the editor widgets, or from a button callback)."""
    st.session_state[BASE] = tpl
    st.session_state["pt_name"] = tpl.name
    st.session_state["pt_template"] = tpl.template
    st.session_state["pt_desc"] = tpl.description
    st.session_state["pt_k"] = int(tpl.few_shot)
    st.session_state[VERSION] = st.session_state.get(VERSION, 0) + 1


def start_editor(gold_labels: Sequence[str]) -> None:
    """Open a template sent from the Experiments page, or the starter template on a first visit."""
    pending = st.session_state.pop(TEMPLATE_TO_LOAD, None)
    if pending is not None:
        with user_errors("Opening the saved template"):
            load_into_editor(template_from_dict(pending, source="saved template"))
            st.success(f"Opened the saved template '{plain(pending.get('name', ''))}'.")
    if BASE not in st.session_state:
        load_into_editor(starter_template(gold_labels))


def _fill_from_gold(gold_labels: Sequence[str]) -> None:
    load_into_editor(PromptTemplate(
        st.session_state["pt_name"], st.session_state["pt_template"], verbalizer_from_labels(gold_labels),
        int(st.session_state["pt_k"]), st.session_state["pt_desc"]))


def template_editor(ds: Dataset, gold_labels: Sequence[str]) -> PromptTemplate | None:
    """Draw the editor; returns the edited template, or None (with the error shown) when it is not valid."""
    base: PromptTemplate = st.session_state[BASE]
    left, right = st.columns([3, 2])
    with left:
        st.text_input("Name", key="pt_name")
        st.text_area("Template", key="pt_template", height=180,
                     help="Jinja placeholders: " + "; ".join(f"{{{{ {k} }}}}: {v}" for k, v in RESERVED.items())
                     + ". Other columns: {{ column_name }}.")
        cols = identifier_columns(ds.df.columns)
        st.caption("Placeholders: `{{ text }}` (the text column), "
                   + ", ".join(plain("{{ " + str(c) + " }}") for c in cols[:8])
                   + ", `{{ answers }}`, `{{ label_list }}`, `{{ examples_block }}`; `[MASK]` for cloze mode.")
        st.text_input("Description", key="pt_desc")
    with right:
        st.markdown("**Verbalizer**: answer words per label (comma-separated)")
        verb_df = pd.DataFrame({"label": list(base.verbalizer),
                                "words": [", ".join(w) for w in base.verbalizer.values()]})
        edited = st.data_editor(verb_df, num_rows="dynamic", hide_index=True, width="stretch",
                                key=f"pt_verb_{st.session_state[VERSION]}")
        if gold_labels:
            st.button("Fill from gold labels", key="pt_fill", on_click=_fill_from_gold, args=(list(gold_labels),))
        st.number_input("Few-shot examples per label", 0, 16, key="pt_k",
                        help="k rows per label with gold labels, never the row itself.")

    template: PromptTemplate | None = None
    with user_errors("Reading the template"):
        template = PromptTemplate(st.session_state["pt_name"].strip() or "template", st.session_state["pt_template"],
                                  verbalizer_from_rows(edited.to_dict("records")), int(st.session_state["pt_k"]),
                                  st.session_state["pt_desc"])
    if template is not None:
        d1, d2 = st.columns(2)
        d1.download_button("Download template (.yaml)", template.to_yaml(), file_name=f"{template.name}.yaml",
                           mime="application/x-yaml", key="pt_download")
        if d2.button("Save to library", key="pt_save"):
            with user_errors("Saving"):
                path = TemplateLibrary.at(st.session_state.get("pt_folder")).save(template)
                st.success(f"Saved as {plain(display_path(path))}.")
    return template
