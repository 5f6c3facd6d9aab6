"""The prompt page's template library panel: load, rename, delete and upload templates in a library folder.

The folder rules (inside the allowed roots, YAML files, shipped templates read-only) are
``llm_backend.prompts.templates.TemplateLibrary``'s; this module only draws the panel and hands a chosen template
to the editor.
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

from llm_backend.core.paths import display_path
from llm_backend.prompts.templates import PromptTemplate, TemplateLibrary, load_template_upload, shipped_templates

from .errors import user_errors
from .text import plain


def template_library(load: Callable[[PromptTemplate], None]) -> None:
    """Draw the library expander; ``load`` puts a chosen template into the editor (called from button callbacks)."""
    with st.expander("Template library: load, save, rename, delete, download, upload", expanded=False):
        folder = st.text_input("Library folder", value=str(TemplateLibrary().folder), key="pt_folder",
                               help="A folder inside the allowed roots; templates are saved there as YAML files.")
        lib = None
        with user_errors("Opening the library"):
            lib = TemplateLibrary.at(folder)
            st.caption(f"Folder: {plain(display_path(lib.folder))}")
        shipped = {f"[shipped] {t.name}": t for t in shipped_templates()}
        saved = {t.name: t for t in lib.list()} if lib else {}
        options = list(saved) + list(shipped)
        c1, c2 = st.columns([3, 1])
        choice = c1.selectbox("Template", options, key="pt_pick") if options else None
        c2.button("Load", key="pt_load", disabled=not choice,
                  on_click=lambda: load(saved.get(choice) or shipped[choice]))
        if choice in saved and lib is not None:
            c3, c4 = st.columns([3, 1])
            new_name = c3.text_input("Rename to", key="pt_rename_to")
            if c4.button("Rename", key="pt_rename"):
                with user_errors("Renaming"):
                    lib.rename(choice, new_name)
                    st.success(f"Renamed to '{plain(new_name)}'.")
            if st.button("Delete", key="pt_delete"):
                with user_errors("Deleting"):
                    lib.delete(choice)
                    st.success(f"Deleted '{plain(choice)}'.")
        upload = st.file_uploader("Upload a template (.yaml)", type=["yaml", "yml"], key="pt_upload")
        if upload is not None:
            with user_errors("Reading the template"):
                uploaded = load_template_upload(upload.getvalue(), upload.name)  # parsed once per content
                st.button(f"Load '{plain(uploaded.name)}'", key="pt_load_upload", on_click=lambda: load(uploaded))
