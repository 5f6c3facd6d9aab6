"""Experiments: every saved run with its metrics, side-by-side comparison, saved label sets and templates.

The page only reads and edits the store (``llm_backend.store.database``; its tables are
``llm_backend.store.run_views``); the other pages write runs through ``ui.persistence.record_run``. The project bar,
run details and saved items are ``ui.project_picker``, ``ui.run_details`` and ``ui.saved_items``. Nothing here
recomputes a model, so it stays fast however many runs there are.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from llm_backend.store.database import compare_metrics, diff_settings
from llm_backend.store.run_views import (
    comparable_settings,
    different_data,
    export_file_name,
    runs_table,
    runs_with_metrics,
    trained_models_table,
)
from ui.charts import runs_metrics_chart
from ui.errors import user_errors
from ui.persistence import store_or_none
from ui.project_picker import PENDING, project_picker
from ui.run_details import run_details
from ui.saved_items import label_sets_panel, templates_panel
from ui.sidebar import render_sidebar
from ui.text import plain

st.set_page_config(page_title="Experiments · Zero-Shot Studio", page_icon="📒", layout="wide")
render_sidebar()
st.title("📒 Experiments")
st.caption("Runs saved by the other pages, with their settings and metrics. Compare two runs, reload a label set or "
           "template, and move a project between machines as one JSON file.")

store = store_or_none()
if store is None:
    st.error("The experiments database cannot be used, so nothing can be listed. See the warning above.")
    st.stop()

project, project_id = project_picker(store)
if project_id is None:  # the store refused the project; the error is shown above
    st.stop()
tab_runs, tab_compare, tab_sets, tab_models, tab_io = st.tabs(
    ["Runs", "Compare two runs", "Label sets & templates", "Trained models", "Import / export"])
all_runs = store.list_runs(project_id)
titles = {r.id: r.title for r in all_runs}

# --------------------------------------------------------------------------------------------------------- runs
with tab_runs:
    if not all_runs:
        st.info("No runs saved in this project yet. Runs appear here when a page scores, prompts or trains.")
    else:
        datasets = {d["id"]: d["name"] for d in store.list_datasets(project_id)}
        f1, f2, f3, f4 = st.columns(4)
        kinds = f1.multiselect("Kind", sorted({r.kind for r in all_runs}), key="exp_f_kind")
        methods = f2.multiselect("Method", sorted({r.method for r in all_runs if r.method}), key="exp_f_method")
        ds_ids = f3.multiselect("Dataset", list(datasets), format_func=lambda i: f"{datasets[i]} (#{i})",
                                key="exp_f_dataset")
        search = f4.text_input("Search", key="exp_f_search", placeholder="model, setting, note…")
        statuses = st.multiselect("Status", ["done", "failed", "interrupted", "running"],
                                  default=["done", "failed", "interrupted", "running"], key="exp_f_status")
        runs = store.list_runs(project_id, kinds=kinds or None, methods=methods or None, dataset_ids=ds_ids or None,
                               search=search or None, statuses=statuses)
        st.caption(f"{len(runs)} of {len(all_runs)} runs")
        if runs:
            st.dataframe(
                runs_table(runs), width="stretch", hide_index=True, key="exp_runs_table",
                column_config={
                    "accuracy": st.column_config.NumberColumn("accuracy", format="%.3f"),
                    "macro_f1": st.column_config.NumberColumn("macro-F1", format="%.3f"),
                    "seconds": st.column_config.NumberColumn("seconds", format="%.1f"),
                },
            )
            scored = runs_with_metrics(runs)
            if len(scored) >= 2:
                runs_metrics_chart(scored, key="exp_runs_chart")

            st.subheader("Run details")
            run_id = st.selectbox("Run", [r.id for r in runs], format_func=lambda i: titles.get(i, f"#{i}"),
                                  key="exp_detail_run")
            run_details(store, next(r for r in runs if r.id == run_id))

        st.subheader("Delete runs")
        to_delete = st.multiselect("Runs to delete", [r.id for r in all_runs],
                                   format_func=lambda i: titles.get(i, f"#{i}"), key="exp_delete_ids")
        confirm = st.checkbox("Yes, delete them for good", key="exp_delete_confirm", disabled=not to_delete)
        if st.button("Delete selected runs", key="exp_delete_btn", disabled=not (to_delete and confirm)):
            with user_errors("Deleting runs"):
                n = store.delete_runs(to_delete)
                for key in ("exp_delete_ids", "exp_delete_confirm"):
                    st.session_state.pop(key, None)
                st.session_state["exp_flash"] = f"Deleted {n} run(s)."
                st.rerun()
    if st.session_state.get("exp_flash"):
        st.success(st.session_state.pop("exp_flash"))

# ------------------------------------------------------------------------------------------------------ compare
with tab_compare:
    if len(all_runs) < 2:
        st.info("Save at least two runs to compare them.")
    else:
        ids = [r.id for r in all_runs]
        c1, c2 = st.columns(2)
        a_id = c1.selectbox("Run A", ids, index=1, format_func=lambda i: titles[i], key="exp_cmp_a")
        b_id = c2.selectbox("Run B", ids, index=0, format_func=lambda i: titles[i], key="exp_cmp_b")
        run_a, run_b = store.get_run(a_id), store.get_run(b_id)
        if a_id == b_id:
            st.info("Pick two different runs.")
        if different_data(run_a, run_b):
            st.warning(f"The runs used different data ({plain(run_a.dataset_name or '—')} vs {plain(run_b.dataset_name or '—')}): "
                       "their metrics are not directly comparable.")
        st.markdown("**Metrics** (delta = B − A)")
        mrows = compare_metrics(run_a, run_b)
        if mrows:
            st.dataframe(pd.DataFrame(mrows), width="stretch", hide_index=True, key="exp_cmp_metrics",
                         column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in ("a", "b", "delta")})
        else:
            st.caption("Neither run has metrics.")
        only = st.toggle("Only settings that differ", value=True, key="exp_cmp_only")
        srows = diff_settings(comparable_settings(run_a), comparable_settings(run_b), only_changed=only)
        st.markdown("**Settings**")
        if srows:
            st.dataframe(pd.DataFrame(srows), width="stretch", hide_index=True, key="exp_cmp_settings")
        else:
            st.caption("The two runs have the same settings.")

# ------------------------------------------------------------------------------------------- label sets/templates
with tab_sets:
    label_sets_panel(store, project_id)
    templates_panel(store, project_id)

# ------------------------------------------------------------------------------------------------ trained models
with tab_models:
    models = store.list_trained_models(project_id)
    if not models:
        st.caption("No trained models recorded in this project. The fine-tune page records the models it saves.")
    else:
        st.dataframe(trained_models_table(models), width="stretch", hide_index=True, key="exp_models_table")

# ------------------------------------------------------------------------------------------------ import/export
with tab_io:
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Export this project**")
        st.caption("Runs, settings, metrics, label sets, templates and dataset fingerprints — never the data rows.")
        with user_errors("Exporting"):
            st.download_button("Download project JSON", store.export_json(project_id).encode("utf-8"),
                               file_name=export_file_name(project), mime="application/json",
                               key="exp_export")
    with c2:
        st.markdown("**Import a project**")
        upload = st.file_uploader("Project JSON exported by Zero-Shot Studio", type=["json"], key="exp_import_file")
        new_name = st.text_input("Import as (optional name)", key="exp_import_name")
        if st.button("Import", key="exp_import_btn", disabled=upload is None):
            with user_errors("Importing the project"):
                pid = store.import_project(upload.getvalue(), name=new_name or None)
                imported = next(n for n in store.list_projects() if store.project_id(n) == pid)
                st.session_state[PENDING] = imported
                st.session_state["exp_flash"] = f"Imported project '{plain(imported)}' ({store.count_runs(pid)} runs)."
                st.rerun()
