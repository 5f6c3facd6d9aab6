"""Experiments: every saved run with its metrics, side-by-side comparison, saved label sets and templates.

The page only reads and edits the store (``llm_backend.store.database``); the other pages write runs through
``ui.persistence.record_run``. Nothing here recomputes a model, so it stays fast however many runs there are.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from llm_backend.data.files import to_csv_safe
from llm_backend.core.config import get_settings
from llm_backend.data.labels import make_labels
from llm_backend.store.database import Run, compare_metrics, diff_settings
from ui import state
from ui.charts import confusion_view
from ui.errors import user_errors
from ui.persistence import TEMPLATE_TO_LOAD, current_project, set_project, store_or_none
from ui.sidebar import render_sidebar
from ui.text import plain

st.set_page_config(page_title="Experiments · Zero-Shot Studio", page_icon="📒", layout="wide")
render_sidebar()
st.title("📒 Experiments")
st.caption("Runs saved by the other pages, with their settings and metrics. Compare two runs, reload a label set or "
           "template, and move a project between machines as one JSON file.")

ROOT = Path(__file__).resolve().parent.parent
store = store_or_none()
if store is None:
    st.error("The experiments database cannot be used, so nothing can be listed. See the warning above.")
    st.stop()


# ------------------------------------------------------------------------------------------------------ project
def _switch_project() -> None:
    set_project(st.session_state["exp_project_select"])


def _create_project() -> None:
    name = st.session_state.get("exp_new_project", "").strip()
    if name:
        set_project(name)
        st.session_state["exp_project_select"] = name
        st.session_state["exp_new_project"] = ""


pending = st.session_state.pop("exp_pending_project", None)  # set by an import: applied before the widget exists
if pending:
    set_project(pending)
project = current_project()
with user_errors("Opening the project"):
    project_id = store.ensure_project(project)
if get_settings().workshop_mode:
    st.info(f"Workshop mode: your runs are saved in your own project **{plain(project)}**; other participants do not "
            "see them unless you share a copy.")
    c1, c2 = st.columns([2, 1])
    shared = store.shared_projects()
    opened = c1.selectbox("Open a shared project (a copy; your own project stays as it is)", ["(my project)", *shared],
                          key="exp_shared_open")
    if opened != "(my project)" and opened != project and st.button("Open it", key="exp_shared_go"):
        set_project(opened)
        st.rerun()
    share_as = c2.text_input("Share a copy as", key="exp_share_label", max_chars=80, placeholder="e.g. team 3")
    if c2.button("Share a copy with everyone", key="exp_share", disabled=not share_as.strip()):
        with user_errors("Sharing the project"):
            st.success(f"Shared as {plain(store.share_project(project_id, share_as))}: everyone can open it here.")
else:
    names = sorted(set(store.list_projects()) | {project})
    if st.session_state.get("exp_project_select") != project:
        st.session_state["exp_project_select"] = project
    c1, c2 = st.columns([2, 1])
    c1.selectbox("Project", names, key="exp_project_select", on_change=_switch_project,
                 help="Runs, label sets and templates are grouped by project. Each browser session picks its own.")
    c2.text_input("New project", key="exp_new_project", placeholder="name, then press Enter", on_change=_create_project)

tab_runs, tab_compare, tab_sets, tab_models, tab_io = st.tabs(
    ["Runs", "Compare two runs", "Label sets & templates", "Trained models", "Import / export"])


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _runs_frame(runs: list[Run]) -> pd.DataFrame:
    return pd.DataFrame([{
        "id": r.id, "started": r.started_at.replace("T", " ")[:19], "kind": r.kind, "method": r.method,
        "model": r.model, "dataset": r.dataset_name or "—", "status": r.status, "accuracy": r.accuracy,
        "macro_f1": r.macro_f1, "n": r.metrics.get("n"), "seconds": r.duration_s, "note": r.note,
    } for r in runs])


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
                _runs_frame(runs), width="stretch", hide_index=True, key="exp_runs_table",
                column_config={
                    "accuracy": st.column_config.NumberColumn("accuracy", format="%.3f"),
                    "macro_f1": st.column_config.NumberColumn("macro-F1", format="%.3f"),
                    "seconds": st.column_config.NumberColumn("seconds", format="%.1f"),
                },
            )
            scored = [r for r in runs if r.accuracy is not None or r.macro_f1 is not None][::-1]
            if len(scored) >= 2:
                fig = go.Figure()
                x = [f"#{r.id} {r.method or r.kind}" for r in scored]
                fig.add_bar(name="accuracy", x=x, y=[r.accuracy for r in scored])
                fig.add_bar(name="macro-F1", x=x, y=[r.macro_f1 for r in scored])
                fig.update_layout(barmode="group", height=300, margin=dict(l=10, r=10, t=30, b=10),
                                  yaxis=dict(range=[0, 1]), title="Metrics by run (oldest first)")
                st.plotly_chart(fig, width="stretch", key="exp_runs_chart")

            st.subheader("Run details")
            run_id = st.selectbox("Run", [r.id for r in runs], format_func=lambda i: titles.get(i, f"#{i}"),
                                  key="exp_detail_run")
            run = next(r for r in runs if r.id == run_id)
            m1, m2, m3, m4 = st.columns(4)
            m1.metric("Accuracy", _fmt(run.accuracy))
            m2.metric("Macro-F1", _fmt(run.macro_f1))
            m3.metric("Rows scored", run.metrics.get("n", "—"))
            m4.metric("Status", run.status)
            if run.status == "interrupted":
                st.warning("This run never finished: the server stopped or restarted while it ran. Run it again.")
            if run.error:
                st.error(f"Error: {plain(run.error, 2000)}")
            c1, c2 = st.columns(2)
            with c1:
                st.markdown("**Settings**")
                st.json(run.settings, expanded=True)
                st.caption(f"Dataset: {plain(run.dataset_name or '—')} · model: {plain(run.model or '—')} · started {plain(run.started_at)}")
            with c2:
                per_class = run.metrics.get("per_class") or {}
                if per_class:
                    st.markdown("**Per class**")
                    st.dataframe(pd.DataFrame(per_class).T, width="stretch")
                other = {k: v for k, v in run.metrics.items() if k not in ("per_class", "confusion", "predictions")}
                if other:
                    with st.expander("All metrics"):
                        st.json(other, expanded=False)
            if run.metrics.get("confusion") or run.metrics.get("predictions"):
                with st.expander("Results of this run (confusion view, predictions)", expanded=False):
                    if run.metrics.get("confusion"):
                        confusion_view(run.metrics, f"exp_cm_{run.id}")
                    if run.metrics.get("predictions"):
                        preds = pd.DataFrame({"row": range(len(run.metrics["predictions"])),
                                              "predicted": run.metrics["predictions"]})
                        st.dataframe(preds, width="stretch", hide_index=True, height=240, key=f"exp_preds_{run.id}")
                        st.download_button("Download these predictions (CSV)", to_csv_safe(preds).encode("utf-8"),
                                           f"run-{run.id}-predictions.csv", "text/csv", key=f"exp_dl_{run.id}")
            note = st.text_input("Note", value=run.note, key=f"exp_note_{run.id}", placeholder="why this run?")
            if note != run.note and st.button("Save note", key=f"exp_note_save_{run.id}"):
                with user_errors("Saving the note"):
                    store.set_note(run.id, note)
                    st.rerun()

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
        if run_a.dataset_fingerprint != run_b.dataset_fingerprint:
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
        srows = diff_settings(
            {"kind": run_a.kind, "method": run_a.method, "model": run_a.model, **run_a.settings},
            {"kind": run_b.kind, "method": run_b.method, "model": run_b.model, **run_b.settings},
            only_changed=only)
        st.markdown("**Settings**")
        if srows:
            st.dataframe(pd.DataFrame(srows), width="stretch", hide_index=True, key="exp_cmp_settings")
        else:
            st.caption("The two runs have the same settings.")

# ------------------------------------------------------------------------------------------- label sets/templates
with tab_sets:
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
    else:
        by_id = {v.id: v for v in sets}
        ls_id = st.selectbox("Label set", list(by_id), key="exp_labelset",
                             format_func=lambda i: f"{by_id[i].name} · v{by_id[i].version} · {len(by_id[i].content)} labels")
        chosen = by_id[ls_id]
        st.dataframe(pd.DataFrame(chosen.content), width="stretch", hide_index=True, key="exp_labelset_preview")
        if st.button("Load into this session", key="exp_load_labels", type="primary"):
            with user_errors("Loading the label set"):
                st.session_state[state.LABELS] = make_labels(chosen.content)
                st.success(f"Loaded '{plain(chosen.name)}' v{chosen.version} ({len(chosen.content)} labels) as the current "
                           "label set.")
                if (ROOT / "pages/1_Zero-shot_labels.py").is_file():
                    st.page_link("pages/1_Zero-shot_labels.py", label="Open Zero-shot label testing", icon="🏷️")

    st.subheader("Templates")
    templates = store.list_templates(project_id)
    if not templates:
        st.caption("No templates saved yet. The prompt page saves the templates its runs used.")
    else:
        t_by_id = {v.id: v for v in templates}
        t_id = st.selectbox("Template", list(t_by_id), key="exp_template",
                            format_func=lambda i: f"{t_by_id[i].name} · v{t_by_id[i].version}")
        st.json(t_by_id[t_id].content, expanded=True)
        if st.button("Open in the prompt page", key="exp_load_template", type="primary"):
            st.session_state[TEMPLATE_TO_LOAD] = {"name": t_by_id[t_id].name, **dict(t_by_id[t_id].content)}
            st.success(f"Template '{plain(t_by_id[t_id].name)}' v{t_by_id[t_id].version} is ready for the prompt page.")
            if (ROOT / "pages/2_Prompt_templates.py").is_file():
                st.page_link("pages/2_Prompt_templates.py", label="Open Prompt templates", icon="📝")

# ------------------------------------------------------------------------------------------------ trained models
with tab_models:
    models = store.list_trained_models(project_id)
    if not models:
        st.caption("No trained models recorded in this project. The fine-tune page records the models it saves.")
    else:
        st.dataframe(pd.DataFrame([{
            "name": m["name"], "base model": m["base_model"], "run": m["run_id"], "saved": m["created_at"],
            "folder present": m["exists"], "folder": Path(m["path"]).name,
        } for m in models]), width="stretch", hide_index=True, key="exp_models_table")

# ------------------------------------------------------------------------------------------------ import/export
with tab_io:
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Export this project**")
        st.caption("Runs, settings, metrics, label sets, templates and dataset fingerprints — never the data rows.")
        with user_errors("Exporting"):
            st.download_button("Download project JSON", store.export_json(project_id).encode("utf-8"),
                               file_name=f"{project.replace(' ', '_')}.zss.json", mime="application/json",
                               key="exp_export")
    with c2:
        st.markdown("**Import a project**")
        upload = st.file_uploader("Project JSON exported by Zero-Shot Studio", type=["json"], key="exp_import_file")
        new_name = st.text_input("Import as (optional name)", key="exp_import_name")
        if st.button("Import", key="exp_import_btn", disabled=upload is None):
            with user_errors("Importing the project"):
                pid = store.import_project(upload.getvalue(), name=new_name or None)
                imported = next(n for n in store.list_projects() if store.project_id(n) == pid)
                st.session_state["exp_pending_project"] = imported
                st.session_state["exp_flash"] = f"Imported project '{plain(imported)}' ({store.count_runs(pid)} runs)."
                st.rerun()
