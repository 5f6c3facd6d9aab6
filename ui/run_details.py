"""One saved run in full on the Experiments page: metrics, settings, per-class table, saved results, its note.

The tables are ``llm_backend.store.run_views``'s; nothing here recomputes a model.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from llm_backend.data.files import to_csv_safe
from llm_backend.store.database import Run, Store
from llm_backend.store.run_views import format_metric, other_metrics, predictions_table

from .charts import confusion_view
from .errors import user_errors
from .text import plain


def run_details(store: Store, run: Run) -> None:
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Accuracy", format_metric(run.accuracy))
    m2.metric("Macro-F1", format_metric(run.macro_f1))
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
        st.caption(f"Dataset: {plain(run.dataset_name or '—')} · model: {plain(run.model or '—')} · started "
                   f"{plain(run.started_at)}")
    with c2:
        per_class = run.metrics.get("per_class") or {}
        if per_class:
            st.markdown("**Per class**")
            st.dataframe(pd.DataFrame(per_class).T, width="stretch")
        other = other_metrics(run.metrics)
        if other:
            with st.expander("All metrics"):
                st.json(other, expanded=False)
    if run.metrics.get("confusion") or run.metrics.get("predictions"):
        with st.expander("Results of this run (confusion view, predictions)", expanded=False):
            if run.metrics.get("confusion"):
                confusion_view(run.metrics, f"exp_cm_{run.id}")
            if run.metrics.get("predictions"):
                preds = predictions_table(run.metrics["predictions"])
                st.dataframe(preds, width="stretch", hide_index=True, height=240, key=f"exp_preds_{run.id}")
                st.download_button("Download these predictions (CSV)", to_csv_safe(preds).encode("utf-8"),
                                   f"run-{run.id}-predictions.csv", "text/csv", key=f"exp_dl_{run.id}")
    note = st.text_input("Note", value=run.note, key=f"exp_note_{run.id}", placeholder="why this run?")
    if note != run.note and st.button("Save note", key=f"exp_note_save_{run.id}"):
        with user_errors("Saving the note"):
            store.set_note(run.id, note)
            st.rerun()
