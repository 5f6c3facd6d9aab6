"""The zero-shot page's label wording help: propose additions to short or cryptic label names, show what accepting
them would change on the user's rows (and the gold-free check that advises it), and write them back on Accept.

Kept out of the page so the page only wires; the suggestions themselves come from
llm_backend.scorers.wording_help.wording_help, the same function `suggest-labels` calls.
"""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from llm_backend.scorers.wording_help import embedding_scorer_for, wording_help
from llm_backend.scorers.zero_shot import ZeroShotResult
from ui.errors import user_errors
from ui.label_editor import set_labels
from ui.models import get_model, registry
from ui.text import plain

WORDING = "zs_wording"  # {"help": WordingHelp, "fingerprint": str}


def wording_help_panel(build_run_scorer: Callable[[], Any], texts: list[str], res: ZeroShotResult,
                       gold: list[str] | None, fingerprint: str) -> None:
    """Draw the section for the run ``res`` on ``texts``; ``build_run_scorer`` builds the run's scorer on demand
    (only when the user asks), and ``fingerprint`` ties stored suggestions to the dataset they were made for."""
    st.subheader("Label wording help")
    st.caption("For short or cryptic label names: the name spelled out where its words are cut short (\"car_arr\" "
               "reads as \"card arrived\"), words from each label's most confident rows and, if you ask, a "
               "sentence from the small bundled LM. Accepting adds them to the label (its name stays). Before you "
               "accept you see what it would change on these rows, and whether a check that reads no gold labels "
               "advises it.")
    ask_lm = st.checkbox("Also ask the LM (SmolLM2) for a sentence per label: a few seconds per label on a CPU, "
                         "cached; a sentence is kept only where it points to the label's own rows",
                         key="zs_wording_lm")
    if st.button("Suggest wordings", key="zs_wording_btn"):
        with user_errors("Suggesting label wordings"), st.spinner("Reading the texts nearest each label…"):
            run_scorer_a = build_run_scorer()
            lm = get_model(registry().default("causal_lm")) if ask_lm else None
            st.session_state[WORDING] = {
                "help": wording_help(embedding_scorer_for(run_scorer_a, registry(), get_model), texts, res.labels,
                                     lm=lm, accept_lm=ask_lm, gold=gold, calibration=res.calibration.requested),
                "fingerprint": fingerprint}
    wording = st.session_state.get(WORDING)
    if wording and wording["fingerprint"] == fingerprint:
        wh = wording["help"]
        st.dataframe(wh.table(), width="stretch", hide_index=True)
        if wh.n_accepted:
            c1, c2, c3 = st.columns(3)
            c1.metric("Labels with additions", f"{wh.n_accepted} of {len(wh.checks)}")
            c2.metric("Rows whose label would change", f"{wh.changed_rows:,} of {wh.n_rows:,}")
            (sb, cb), (sa, ca) = wh.signals_names, wh.signals_candidate
            c3.metric("Cluster tightness (silhouette) if you accept", f"{sa:.3f}", delta=f"{sa - sb:+.3f}")
            st.caption(f"Mean top probability {cb:.3f} → {ca:.3f}. Both rising is what the check asks for; it reads no "
                       "gold labels.")
            if wh.macro_f1_before is not None and wh.macro_f1_after is not None:
                st.metric("Macro-F1 against your gold column if you accept", f"{wh.macro_f1_after:.3f}",
                          delta=f"{wh.macro_f1_after - wh.macro_f1_before:+.3f} vs the names")
            else:
                st.caption("No gold column: whether accuracy would rise cannot be measured here. On labelled benchmark "
                           "data the check's record is in docs/zero-shot.md.")
            if wh.recommended:
                st.success("Proposed: the check advises accepting these additions.")
        for note in wh.notes:
            st.caption(plain(note, None))
        if wh.changed_examples:
            with st.expander("Rows that would change label"):
                st.dataframe(wh.changed_examples, width="stretch", hide_index=True)
        if wh.n_accepted and st.button("Accept the proposal" if wh.recommended else "Accept the additions anyway",
                                       key="zs_wording_accept"):
            set_labels(wh.candidate)
            st.session_state.pop(WORDING, None)
            st.rerun()
