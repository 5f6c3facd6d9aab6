"""Drawing the prompt page's runs: one run's metrics and predictions, and up to four runs compared.

Display only: the comparison (common rows, agreement, disagreements) is ``llm_backend.prompts.runner.compare``;
nothing here reruns a model, so switching the shown run or the compared set answers instantly.
"""
from __future__ import annotations

from typing import MutableMapping

import streamlit as st

from llm_backend.data.files import to_csv_safe
from llm_backend.prompts.runner import PromptRunResult, compare

from .errors import user_errors
from .text import plain


def run_results(results: MutableMapping[str, PromptRunResult], newest: str | None) -> str:
    """The picked run's metrics, notes and predictions (CSV download); ``newest``, when given, is picked.
    Returns the name of the run shown (the one the page's export freezes).

    A run that just ended replaces the picked one, so the panel never keeps showing an older run (issue 18).
    """
    st.subheader("Results")
    if newest in results:
        st.session_state["pt_show"] = newest
    shown = st.selectbox("Run", list(results), index=len(results) - 1, key="pt_show")
    res = results[shown]
    m = res.metrics
    c = st.columns(4)
    c[0].metric("Rows", len(res.rows))
    if m and m.get("accuracy") is not None:
        c[1].metric("Accuracy", f"{m['accuracy']:.3f}")
        c[2].metric("Macro-F1", f"{m['macro_f1']:.3f}")
    if res.mode == "generate":
        c[3].metric("Unmapped", res.n_unmapped)
    else:
        c[3].metric("Seconds / 100 rows", f"{100 * res.seconds / max(1, len(res.rows)):.1f}")
    for note in res.notes:
        st.caption(note)
    st.dataframe(res.frame(), width="stretch", hide_index=True)
    st.download_button("Download predictions (CSV)", to_csv_safe(res.frame()), file_name=f"{shown}.csv",
                       key="pt_dl_results")
    return shown


def compare_runs(results: MutableMapping[str, PromptRunResult]) -> None:
    """Up to four runs side by side: summary, agreement matrix, disagreeing rows and one row's prompts."""
    st.subheader("Compare templates")
    names = st.multiselect("Runs to compare (up to 4)", list(results), default=list(results)[-4:],
                           max_selections=4, key="pt_compare")
    if len(names) < 2:
        return
    with user_errors("Comparing"):
        cmp = compare([results[n] for n in names])
        st.dataframe(cmp["summary"], width="stretch", hide_index=True)
        st.markdown("**Agreement** (share of rows with the same prediction)")
        st.dataframe(cmp["agreement"].round(3), width="stretch")
        st.markdown(f"**Rows where they disagree**: {len(cmp['disagreements'])} of {len(cmp['rows'])}")
        st.dataframe(cmp["disagreements"], width="stretch", hide_index=True)
        one = st.selectbox("Prompts side by side for row", cmp["rows"], key="pt_cmp_row")
        for col, n, label in zip(st.columns(len(names)), names, cmp["names"]):
            r = results[n]
            with col:
                st.markdown(f"**{plain(label)}**")
                st.code(r.prompts[r.rows.index(one)], language=None, wrap_lines=True)
