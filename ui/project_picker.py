"""The Experiments page's project bar: pick or create a project, or (workshop mode) share and open copies.

Which project a session uses is ``ui.persistence``'s (``current_project``/``set_project``); sharing goes through the
store's validated export/import path (``Store.share_project``).
"""
from __future__ import annotations

import streamlit as st

from llm_backend.core.config import get_settings
from llm_backend.store.database import Store

from .errors import user_errors
from .persistence import current_project, set_project
from .text import plain

PENDING = "exp_pending_project"  # set by an import: applied before the project widget exists


def _switch_project() -> None:
    set_project(st.session_state["exp_project_select"])


def _create_project() -> None:
    name = st.session_state.get("exp_new_project", "").strip()
    if name:
        set_project(name)
        st.session_state["exp_project_select"] = name
        st.session_state["exp_new_project"] = ""


def project_picker(store: Store) -> tuple[str, int | None]:
    """Draw the project bar; returns the session's project name and id (None if the store refused it)."""
    pending = st.session_state.pop(PENDING, None)
    if pending:
        set_project(pending)
    project = current_project()
    project_id = None
    with user_errors("Opening the project"):
        project_id = store.ensure_project(project)
    if get_settings().workshop_mode:
        st.info(f"Workshop mode: your runs are saved in your own project **{plain(project)}**; other participants "
                "do not see them unless you share a copy.")
        c1, c2 = st.columns([2, 1])
        opened = c1.selectbox("Open a shared project (a copy; your own project stays as it is)",
                              ["(my project)", *store.shared_projects()], key="exp_shared_open")
        if opened != "(my project)" and opened != project and st.button("Open it", key="exp_shared_go"):
            set_project(opened)
            st.rerun()
        share_as = c2.text_input("Share a copy as", key="exp_share_label", max_chars=80, placeholder="e.g. team 3")
        if c2.button("Share a copy with everyone", key="exp_share", disabled=not share_as.strip()):
            with user_errors("Sharing the project"):
                st.success(f"Shared as {plain(store.share_project(project_id, share_as))}: everyone can open it "
                           "here.")
    else:
        names = sorted(set(store.list_projects()) | {project})
        if st.session_state.get("exp_project_select") != project:
            st.session_state["exp_project_select"] = project
        c1, c2 = st.columns([2, 1])
        c1.selectbox("Project", names, key="exp_project_select", on_change=_switch_project,
                     help="Runs, label sets and templates are grouped by project. Each browser session picks its own.")
        c2.text_input("New project", key="exp_new_project", placeholder="name, then press Enter",
                      on_change=_create_project)
    return project, project_id
