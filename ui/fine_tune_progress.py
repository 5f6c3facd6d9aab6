"""The fine-tune page's progress panel: bar, training curves, and what happens once when a run ends.

A fragment polls the background run (``llm_backend.training.runs``) once a second while it runs. When it ends, a
training run joins the session's history and the experiment store (``fine_tune_view.record_finished``) and its
measured time feeds the next estimate; a cross-validation's metrics are kept for the summary line.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from llm_backend.scorers import estimate as est

from .charts import training_curves
from .fine_tune_view import record_finished
from .text import plain


def _finished(run: Any, cv_key: str, history_key: str, keep_models: int) -> None:
    if isinstance(run.result, dict):  # cross-validation metrics
        st.session_state[cv_key] = run.result
        return
    record_finished(run, st.session_state[history_key], keep_models)
    if run.result is not None and not run.result.stopped:
        est.record(run.settings.get("cost_key", ""), run.settings["train rows"] + run.config["unlabelled rows"],
                   run.result.config.epochs or 1, run.result.wall_s)


def progress_panel(run_key: str, cv_key: str, history_key: str, keep_models: int) -> None:
    run = st.session_state.get(run_key)
    running = run is not None and run.running

    @st.fragment(run_every=1.0 if running else None)
    def _panel() -> None:
        run = st.session_state.get(run_key)
        if run is None:
            st.caption("No run yet. Choose the rows and a method, then start a run.")
            return
        snap = run.snapshot()
        eta = f" · about {snap.eta_s:.0f} s left" if snap.eta_s is not None else ""
        st.progress(snap.fraction, text=f"{snap.method}: {snap.status} ({snap.done}/{snap.total}) · "
                                        f"{snap.elapsed_s:.0f} s{eta} · {snap.state}")
        # A finished run's own history is complete (the head's loss is filled in after its single fitting step).
        history = getattr(run.result, "history", None) if not run.running and run.result is not None else None
        history = history or snap.history
        if history:
            st.plotly_chart(training_curves(history), width="stretch",
                            key=f"ft_curve_{snap.run_id}_{len(history)}_{run.running}")
        if snap.state == "failed":
            st.error(plain(snap.error, 1000))
        if not run.running and snap.state != "failed":
            _finished(run, cv_key, history_key, keep_models)
            if st.session_state.get("ft_drawn") != run.run_id:
                st.session_state["ft_drawn"] = run.run_id
                st.rerun()  # redraw the whole page once, so the results below appear

    _panel()
    cv = st.session_state.get(cv_key)
    if cv:
        skipped = (f" {len(cv['skipped_classes'])} classes with fewer than {cv['folds']} rows were left out."
                   if cv["skipped_classes"] else "")
        st.info(f"Cross-validation ({cv['folds']} folds, {cv['n']:,} rows): accuracy {cv['accuracy']:.3f}, macro-F1 "
                f"{cv['macro_f1']:.3f}." + skipped)
