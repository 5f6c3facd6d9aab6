"""A Streamlit progress bar wired to the backend's ``progress(done, total)`` callback convention."""
from __future__ import annotations

import time
from typing import Callable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from llm_backend.core.workshop import RunTimer


def progress_bar(label: str, timer: RunTimer | None = None) -> tuple[DeltaGenerator, Callable[[int, int], None]]:
    """A bar showing ``label done/total (elapsed)`` and the callback that moves it.

    With ``timer`` the callback also enforces the workshop's time limit between batches, so a run stopped for
    time leaves no half-written state.
    """
    bar = st.progress(0.0, text=label)
    started = time.perf_counter()

    def _cb(done: int, total: int) -> None:
        if timer is not None:
            timer.check()
        frac = min(done / total, 1.0) if total else 1.0
        bar.progress(frac, text=f"{label} {done:,}/{total:,} ({time.perf_counter() - started:.0f}s)")

    return bar, _cb
