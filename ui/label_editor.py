"""The label-set editor (table, pasted list, file) shared through ``st.session_state[state.LABELS]``.

Edits in the table are deltas on the list the editor started from; another page changing the label set (the map's
"add cluster as label", Experiments' "load label set") restarts the editor from the new list.
"""
from __future__ import annotations

import streamlit as st

from llm_backend.core.errors import LabelError
from llm_backend.data.labels import Label, dump_labels, load_labels_text, parse_label_list
from llm_backend.data.labels import labels_from_gold
from llm_backend.scorers.zero_shot import gold_coverage, labels_from_frame, labels_to_frame

from . import state
from .errors import user_errors
from .text import plain_list

EDITOR_VERSION = "zs_editor_version"
EDITOR_BASE = "zs_editor_base"  # the label list the editor started from
LABELS_SEEN = "zs_labels_seen"  # the list this editor last stored, to notice other pages changing the label set


def set_labels(labels: list[Label]) -> None:
    """Replace the label set and restart the editor from it (a fresh key drops the old edits)."""
    st.session_state[state.LABELS] = labels
    st.session_state[EDITOR_BASE] = labels
    st.session_state[LABELS_SEEN] = labels
    st.session_state[EDITOR_VERSION] = st.session_state.get(EDITOR_VERSION, 0) + 1


def label_editor(gold: list[str] | None) -> tuple[list[Label], str | None]:
    """Draw the editor; returns the current labels and the problem with them (None when they are valid)."""
    if state.LABELS not in st.session_state:
        st.session_state[state.LABELS] = labels_from_gold(gold) if gold else []
    if st.session_state.get(LABELS_SEEN) is not st.session_state[state.LABELS]:
        set_labels(st.session_state[state.LABELS])
    problem: str | None = None
    tab_edit, tab_paste, tab_file = st.tabs(["Edit table", "Paste a list", "Load / save"])
    with tab_edit:
        st.caption("One row per label. Names are written to the predictions; names like `card_arrival` or `Sci/Tech` "
                   "are turned into words automatically. Add a description or extra phrasings (separated by `;`).")
        edited = st.data_editor(labels_to_frame(st.session_state[EDITOR_BASE]), num_rows="dynamic", hide_index=True,
                                key=f"zs_label_editor_{st.session_state.get(EDITOR_VERSION, 0)}",
                                column_config={"name": st.column_config.TextColumn("name", required=True),
                                               "reads as": st.column_config.TextColumn(
                                                   "reads as", help="What the model reads instead of the name "
                                                   "(blank: the name, with `_` and `/` turned into words)"),
                                               "description": st.column_config.TextColumn("description"),
                                               "phrasings": st.column_config.TextColumn("extra phrasings (; separated)")})
        try:
            current = labels_from_frame(edited)
            st.session_state[state.LABELS] = current
            st.session_state[LABELS_SEEN] = current
        except LabelError as exc:
            problem = str(exc)
            st.error(problem)
        if gold and st.button("Reset to the gold labels", key="zs_reset_gold"):
            set_labels(labels_from_gold(gold))
            st.rerun()
    with tab_paste:
        pasted = st.text_area("One label per line (or comma-separated); `name: description` keeps a description",
                              key="zs_paste", height=150)
        if st.button("Use this list", key="zs_paste_apply"):
            with user_errors("Reading the list"):
                set_labels(parse_label_list(pasted))
                st.rerun()
    with tab_file:
        upload = st.file_uploader("Load a label set (YAML or JSON)", type=["yaml", "yml", "json"],
                                  key="zs_label_upload")
        if upload is not None and st.button("Load this file", key="zs_label_load"):
            with user_errors("Loading the label set"):
                set_labels(load_labels_text(upload.getvalue().decode("utf-8", errors="replace")))
                st.rerun()
        labs = st.session_state[state.LABELS]
        if labs:
            c1, c2 = st.columns(2)
            c1.download_button("Download label set (YAML)", dump_labels(labs, "yaml"), "labels.yaml", "text/yaml",
                               key="zs_dl_labels_yaml")
            c2.download_button("Download label set (JSON)", dump_labels(labs, "json"), "labels.json",
                               "application/json", key="zs_dl_labels_json")
    labels: list[Label] = st.session_state[state.LABELS]
    if gold and labels:
        missing, n_rows = gold_coverage(gold, [l.name for l in labels])
        if missing:
            st.warning(f"{n_rows} row(s) have gold labels that are not in the label set (they count as errors): "
                       + plain_list(missing))
    return labels, problem
