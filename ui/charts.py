"""Charts that stay readable from 2 to 150 classes: label counts, the confusion view, training curves.

Sizes grow with the number of classes (one row of pixels per bar or cell row, never a fixed 400 px), tick labels are
shortened but every hover shows the full name, and the confusion view zooms onto the most confused classes with
the rows behind any cell one click away (issue 18).
"""
from __future__ import annotations

import html
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from llm_backend.evaluation.confusion import (
    confusion_order,
    focus_classes,
    misclassified_rows,
    sub_matrix,
    top_confused_pairs,
)

TICK_CHARS = 22  # longer names are cut on the axis; the hover shows them whole


def short(name: str, n: int = TICK_CHARS) -> str:
    """Shortened and HTML-escaped: plotly renders tags such as <a href> in tick labels, legends and hovers."""
    s = str(name)
    return html.escape(s if len(s) <= n else s[: n - 1] + "…")


def _unique_ticks(names: Sequence[str]) -> list[str]:
    """Shortened names that stay distinct ("balance_not_upd…" twice would merge two bars)."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for n in names:
        s = short(n)
        if s in seen:
            seen[s] += 1
            s = short(n, TICK_CHARS - 3) + f"#{seen[s]}"
        else:
            seen[s] = 0
        out.append(s)
    return out


def label_counts_chart(values: Sequence[Any], title: str, key: str, top: int = 30) -> None:
    """Horizontal bars, one per label, most frequent first; beyond ``top`` labels a toggle shows them all."""
    counts = pd.Series([str(v) for v in values]).value_counts()
    if counts.empty:
        return
    show_all = True
    if len(counts) > top:
        show_all = st.toggle(f"Show all {len(counts)} labels (top {top} shown)", key=f"{key}_all")
    shown = counts if show_all else counts.head(top)
    names = list(shown.index)
    fig = go.Figure(go.Bar(x=shown.to_numpy(), y=_unique_ticks(names), orientation="h",
                           customdata=[html.escape(n) for n in names],
                           hovertemplate="%{customdata}: %{x} rows<extra></extra>"))
    fig.update_layout(title=title, height=90 + 20 * len(shown), margin=dict(l=10, r=10, t=40, b=10),
                      yaxis=dict(autorange="reversed", tickmode="array", tickvals=_unique_ticks(names),
                                 automargin=True),
                      xaxis_title="rows")
    st.plotly_chart(fig, width="stretch", key=key)


def confusion_view(metrics: dict[str, Any], key: str, texts: Sequence[str] | None = None,
                   gold: Sequence[Any] | None = None, pred: Sequence[Any] | None = None,
                   scores: Sequence[float] | None = None) -> None:
    """Confusion heatmap ordered by confusion, zoomed to the most confused classes, with the top pairs and the
    rows behind a clicked (or chosen) cell."""
    labels = list(metrics.get("labels") or [])
    k = len(labels)
    if k == 0:
        return
    if k > 12:
        n = st.slider("Classes in the confusion view (most confused first)", 2, k, min(k, 20), key=f"{key}_n",
                      help="Classes are ordered so that those mixed up with each other sit side by side.")
        classes = focus_classes(metrics, n)
    else:
        classes = confusion_order(metrics)
    cm = sub_matrix(metrics, classes)
    ticks = _unique_ticks(classes)
    hover = [[f"gold: {html.escape(g)}<br>predicted: {html.escape(p)}<br>rows: {int(cm[i, j])}"
              for j, p in enumerate(classes)]
             for i, g in enumerate(classes)]
    fig = go.Figure(go.Heatmap(z=cm, x=ticks, y=ticks, colorscale="Blues", text=hover,
                               hovertemplate="%{text}<extra></extra>",
                               texttemplate="%{z}" if len(classes) <= 20 else None))
    side = max(320, min(1400, 28 * len(classes) + 160))
    fig.update_layout(title=f"Confusion ({len(classes)} of {k} classes, ordered by confusion)", height=side,
                      margin=dict(l=10, r=10, t=40, b=10), xaxis=dict(title="predicted", tickangle=-45,
                                                                      automargin=True, tickmode="linear"),
                      yaxis=dict(title="gold", autorange="reversed", automargin=True, tickmode="linear"))
    event = st.plotly_chart(fig, width="stretch", key=key, on_select="rerun", selection_mode="points")
    pairs = top_confused_pairs(metrics)
    if not pairs.empty:
        st.markdown("**Most confused pairs**")
        st.dataframe(pairs, width="stretch", hide_index=True, key=f"{key}_pairs")
    if texts is None or gold is None or pred is None:
        return
    by_tick = dict(zip(ticks, classes))
    picked = (getattr(event, "selection", None) or {}).get("points") or []
    g_sel = p_sel = None
    if picked:
        g_sel, p_sel = by_tick.get(picked[0].get("y")), by_tick.get(picked[0].get("x"))
    c1, c2 = st.columns(2)
    err_gold = sorted({str(g) for g, p in zip(gold, pred) if str(g) and str(g) != str(p)})
    gold_pick = c1.selectbox("Rows with gold", ["(any)"] + err_gold, key=f"{key}_gold",
                             index=(err_gold.index(g_sel) + 1) if g_sel in err_gold else 0)
    pred_pick = c2.selectbox("predicted as", ["(any)"] + sorted({str(p) for p in pred}), key=f"{key}_pred",
                             index=(sorted({str(p) for p in pred}).index(p_sel) + 1)
                             if p_sel in {str(p) for p in pred} else 0)
    rows = misclassified_rows(texts, gold, pred, scores, None if gold_pick == "(any)" else gold_pick,
                              None if pred_pick == "(any)" else pred_pick)
    st.caption(f"{len(rows):,} misclassified rows" + (" in this cell (click a cell to change it)." if picked else
                                                     " (click a cell or choose gold/predicted to narrow)."))
    st.dataframe(rows, width="stretch", hide_index=True, height=260, key=f"{key}_rows")


def training_curves(history: list[dict[str, Any]]) -> go.Figure:
    """Loss (left axis) and validation macro-F1 (right); a one-step method shows its single point as a marker."""
    hist = pd.DataFrame(history)
    fig = go.Figure()
    if "loss" in hist and hist["loss"].notna().any():
        fig.add_trace(go.Scatter(x=hist["epoch"], y=hist["loss"], name="training loss", mode="lines+markers",
                                 marker=dict(size=10)))
    if "val_macro_f1" in hist and hist["val_macro_f1"].notna().any():
        fig.add_trace(go.Scatter(x=hist["epoch"], y=hist["val_macro_f1"], name="validation macro-F1",
                                 mode="lines+markers", yaxis="y2", marker=dict(size=10)))
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), xaxis=dict(title="epoch", dtick=1),
                      yaxis=dict(title="loss", rangemode="tozero"),
                      yaxis2=dict(title="macro-F1", overlaying="y", side="right", range=[0, 1]),
                      legend=dict(orientation="h"))
    return fig


def numbers(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=float)


def runs_metrics_chart(runs: Sequence[Any], key: str) -> None:
    """Accuracy and macro-F1 per saved run, grouped bars, in the order given (the Experiments page: oldest first)."""
    fig = go.Figure()
    x = [f"#{r.id} {r.method or r.kind}" for r in runs]
    fig.add_bar(name="accuracy", x=x, y=[r.accuracy for r in runs])
    fig.add_bar(name="macro-F1", x=x, y=[r.macro_f1 for r in runs])
    fig.update_layout(barmode="group", height=300, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(range=[0, 1]), title="Metrics by run (oldest first)")
    st.plotly_chart(fig, width="stretch", key=key)
