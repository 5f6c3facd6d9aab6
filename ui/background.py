"""Background runs seen from a page: the session-liveness hook and the polling progress panel with Stop.

A run in a thread (``llm_backend.training.runs``) keeps the page usable while it works; the page polls it from a
fragment once a second. ``session_alive`` lets the run stop itself when its browser tab closes (issue 18: closing
the tab used to leave the server burning CPU for the rest of an hour-long run).
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

from llm_backend.training.runs import TrainingRun


def session_alive() -> Callable[[], bool]:
    """A callable that turns False once this browser session has disconnected (always True outside a server)."""
    try:
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        session_id = ctx.session_id if ctx is not None else None
    except Exception:  # noqa: BLE001 - streamlit internals moved: never stop a run because of that
        return lambda: True
    if session_id is None:
        return lambda: True

    def _alive() -> bool:
        try:
            return not Runtime.exists() or Runtime.instance().is_active_session(session_id)
        except Exception:  # noqa: BLE001
            return True

    return _alive


def progress_text(run: TrainingRun) -> tuple[float, str]:
    snap = run.snapshot()
    eta = f" · about {snap.eta_s:.0f} s left" if snap.eta_s is not None else ""
    return snap.fraction, (f"{snap.status} ({snap.done:,}/{snap.total:,}) · {snap.elapsed_s:.0f} s{eta} · "
                           f"{snap.state}")


def run_panel(key: str, state_key: str, on_finished: Callable[[TrainingRun], None]) -> None:
    """Progress + Stop for the run in ``st.session_state[state_key]``; calls ``on_finished`` once when it ends."""
    run: TrainingRun | None = st.session_state.get(state_key)
    running = run is not None and run.running

    @st.fragment(run_every=1.0 if running else None)
    def _panel() -> None:
        r: TrainingRun | None = st.session_state.get(state_key)
        if r is None:
            return
        frac, text = progress_text(r)
        c1, c2 = st.columns([5, 1])
        c1.progress(frac, text=text)
        if c2.button("■ Stop", key=f"{key}_stop", disabled=not r.running):
            r.stop()
            st.toast("Stopping after the current batch…")
        snap = r.snapshot()
        if snap.state == "failed":
            st.error(snap.error or "The run failed.")
        if not r.running and st.session_state.get(f"{key}_done") != r.run_id:
            st.session_state[f"{key}_done"] = r.run_id
            if r.result is not None:
                on_finished(r)
            elif snap.state == "stopped":
                st.session_state[f"{key}_stopped"] = r.run_id
            st.rerun()  # redraw the whole page once so the results appear

    _panel()
    if run is not None and st.session_state.get(f"{key}_stopped") == run.run_id:
        st.info("The run was stopped; its partial results were discarded.")
