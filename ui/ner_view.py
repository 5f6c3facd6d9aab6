"""Drawing named entities: sentences with highlighted entities, a tagger's evaluation, a training run's progress.

Every token a user supplied is shown as escaped text (``st.html`` of ``html.escape``'d spans, or dataframes), never
as markdown. The numbers are ``llm_backend.ner``'s (``evaluate``, ``report``).
"""
from __future__ import annotations

import html
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from llm_backend.ner.conll import spans
from llm_backend.ner.report import error_types, per_type_table
from llm_backend.training.runs import TrainingRun

MAX_SHOWN_ERRORS = 30
COLOURS = ["#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad"]


def _colour(kind: str, kinds: Sequence[str]) -> str:
    return COLOURS[sorted(kinds).index(kind) % len(COLOURS)] if kind in kinds else "#e0e0e0"


def highlighted(tokens: Sequence[str], tags: Sequence[str], kinds: Sequence[str],
                wrong: set[tuple[str, int, int]] | None = None) -> str:
    """HTML of one sentence with its entities marked; every token is escaped. ``wrong`` spans get a red border."""
    parts: list[str] = []
    starts = {s: (k, s, e) for k, s, e in spans(tags)}
    i = 0
    while i < len(tokens):
        if i in starts:
            kind, s, e = starts[i]
            border = "2px solid #d62828" if wrong and (kind, s, e) in wrong else "1px solid #999"
            text = html.escape(" ".join(tokens[s:e]))
            parts.append(f'<span style="background:{_colour(kind, kinds)};border:{border};border-radius:4px;'
                         f'padding:0 3px">{text} <b style="font-size:0.75em">{html.escape(kind)}</b></span>')
            i = e
        else:
            parts.append(html.escape(tokens[i]))
            i += 1
    return '<div style="line-height:1.9">' + " ".join(parts) + "</div>"


def evaluation_view(metrics: dict[str, Any], key: str) -> None:
    """Headline scores, the per-type table, the type confusion heatmap and the sentences with errors."""
    for note in metrics.get("notes", []):
        st.info(note)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Entity micro-F1", f"{metrics['micro_f1']:.3f}")
    m2.metric("Precision", f"{metrics['precision']:.3f}")
    m3.metric("Recall", f"{metrics['recall']:.3f}")
    m4.metric("Sentences with an error", f"{metrics.get('n_error_sentences', 0):,} / {metrics['n_sentences']:,}")
    conf = metrics["confusion"]
    v1, v2 = st.columns([2, 3])
    v1.dataframe(per_type_table(metrics), width="stretch", hide_index=True)
    v1.caption("Exact span and type (seqeval strict IOB2). A boundary error is a right-type entity with the wrong "
               "span: it counts once as missed and once as spurious.")
    fig = px.imshow(np.array(conf["matrix"]), x=conf["labels"], y=conf["labels"], text_auto=True,
                    labels=dict(x="predicted type", y="gold type", color="entities"), color_continuous_scale="Blues")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10))
    v2.plotly_chart(fig, width="stretch", key=f"ner_conf_{key}")
    v2.caption("Gold entities matched to the predicted entity they overlap most; (none) = missed or spurious.")
    errors = metrics.get("errors") or []
    if errors:
        with st.expander(f"Sentences with errors (first {min(len(errors), MAX_SHOWN_ERRORS)})", expanded=False):
            kinds = error_types(errors)
            st.html("".join(f"<p><b>#{e['index'] + 1}</b> gold:</p>"
                            + highlighted(e["tokens"], e["gold"], kinds, set(map(tuple, e["missed"])))
                            + "<p>predicted:</p>"
                            + highlighted(e["tokens"], e["pred"], kinds, set(map(tuple, e["spurious"])))
                            + "<hr>" for e in errors[:MAX_SHOWN_ERRORS]))
            st.caption("Red borders: gold entities the model missed (top) and predicted entities that are wrong "
                       "(bottom).")


def training_progress(run_key: str, on_finished: Callable[[TrainingRun], None]) -> None:
    """Progress and the loss curve of the run in ``st.session_state[run_key]``, polled once a second while it runs;
    ``on_finished`` is called when it ends (it must be idempotent), then the page is redrawn once."""
    run: TrainingRun | None = st.session_state.get(run_key)
    running = run is not None and run.running

    @st.fragment(run_every=1.0 if running else None)
    def _panel() -> None:
        run: TrainingRun | None = st.session_state.get(run_key)
        if run is None:
            return
        snap = run.snapshot()
        eta = f" · about {snap.eta_s:.0f} s left" if snap.eta_s is not None else ""
        st.progress(snap.fraction, text=f"{snap.method}: {snap.status} ({snap.done}/{snap.total}) · "
                                        f"{snap.elapsed_s:.0f} s{eta} · {snap.state}")
        if snap.history:
            hist = pd.DataFrame(snap.history)
            fig = go.Figure(go.Scatter(x=hist["epoch"], y=hist["loss"], mode="lines+markers", name="training loss"))
            fig.update_layout(height=240, margin=dict(l=10, r=10, t=20, b=10), xaxis_title="epoch",
                              yaxis_title="loss")
            st.plotly_chart(fig, width="stretch", key=f"ner_curve_{snap.run_id}_{len(snap.history)}")
        if snap.state == "failed":
            st.error(snap.error)
        if not run.running and snap.state != "failed":
            on_finished(run)
            if st.session_state.get("ner_drawn") != run.run_id:
                st.session_state["ner_drawn"] = run.run_id
                st.rerun()

    _panel()
