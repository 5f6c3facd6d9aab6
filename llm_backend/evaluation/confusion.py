"""Reading a confusion matrix that has 2 or 150 classes: order, focus, top confused pairs, the rows behind a cell.

A 77×77 matrix drawn in label order is ~110 px wide with one tick label in seven (issue 18). What an analyst needs
is the few classes that are mixed up, next to each other, and the rows behind any cell. These functions work on
:func:`llm_backend.evaluation.metrics.evaluate` output so the zero-shot page, the fine-tune page and the CLI agree.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from llm_backend.evaluation.metrics import misclassified, normalise_label


def _matrix(metrics: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    labels = list(metrics.get("labels") or [])
    cm = np.asarray(metrics.get("confusion") or np.zeros((len(labels), len(labels))), dtype=float)
    return labels, cm


def confusion_order(metrics: dict[str, Any]) -> list[str]:
    """Labels ordered so that classes confused with each other sit side by side (most confused first).

    Greedy seriation on the symmetric error counts: start from the class with the most errors, then repeatedly
    append the unplaced class most confused with the last one placed (ties: most errors overall). Deterministic,
    O(k²), and at 2 classes it is simply the label order.
    """
    labels, cm = _matrix(metrics)
    k = len(labels)
    if k <= 2:
        return labels
    off = cm.copy()
    np.fill_diagonal(off, 0.0)
    sym = off + off.T
    errors = sym.sum(axis=1)
    placed: list[int] = []
    left = set(range(k))
    while left:
        if not placed or sym[placed[-1], sorted(left)].max() <= 0:
            nxt = max(left, key=lambda j: (errors[j], -j))
        else:
            nxt = max(left, key=lambda j: (sym[placed[-1], j], errors[j], -j))
        placed.append(nxt)
        left.remove(nxt)
    return [labels[i] for i in placed]


def focus_classes(metrics: dict[str, Any], n: int) -> list[str]:
    """The ``n`` classes with the most confusion (in confusion order): the zoomed-in view."""
    order = confusion_order(metrics)
    if n >= len(order):
        return order
    labels, cm = _matrix(metrics)
    idx = {l: i for i, l in enumerate(labels)}
    off = cm.copy()
    np.fill_diagonal(off, 0.0)
    errors = (off + off.T).sum(axis=1)
    keep = set(sorted(order, key=lambda l: (-errors[idx[l]], idx[l]))[:n])
    return [l for l in order if l in keep]


def sub_matrix(metrics: dict[str, Any], classes: Sequence[str]) -> np.ndarray:
    labels, cm = _matrix(metrics)
    idx = [labels.index(c) for c in classes]
    return cm[np.ix_(idx, idx)] if idx else np.zeros((0, 0))


def top_confused_pairs(metrics: dict[str, Any], top: int = 15) -> pd.DataFrame:
    """(gold, predicted) cells off the diagonal with the most rows, with the share of that gold class."""
    labels, cm = _matrix(metrics)
    rows = []
    support = cm.sum(axis=1)
    for i, g in enumerate(labels):
        for j, p in enumerate(labels):
            if i != j and cm[i, j] > 0:
                rows.append({"gold": g, "predicted as": p, "rows": int(cm[i, j]),
                             "share of gold": round(float(cm[i, j] / support[i]), 3) if support[i] else None})
    df = pd.DataFrame(rows, columns=["gold", "predicted as", "rows", "share of gold"])
    if df.empty:
        return df
    return df.sort_values(["rows", "share of gold"], ascending=False).head(top).reset_index(drop=True)


def misclassified_rows(texts: Sequence[str], gold: Sequence[object], pred: Sequence[object],
                       scores: Sequence[float] | None = None, gold_label: str | None = None,
                       predicted: str | None = None) -> pd.DataFrame:
    """The rows behind the errors (or behind one confusion cell when ``gold_label``/``predicted`` are given)."""
    rows = misclassified(texts, gold, pred)
    if gold_label is not None:
        rows = [r for r in rows if r["gold"] == normalise_label(gold_label)]
    if predicted is not None:
        rows = [r for r in rows if r["predicted"] == normalise_label(predicted)]
    df = pd.DataFrame(rows, columns=["row", "text", "gold", "predicted"])
    if scores is not None and len(df):
        df["score"] = [round(float(scores[i]), 4) for i in df["row"]]
    return df


def filter_results(table: pd.DataFrame, *, errors_only: bool = False, gold_in: Sequence[str] = (),
                   predicted_in: Sequence[str] = (), score_below: float | None = None) -> pd.DataFrame:
    """The results table's filters (display only): errors only, by gold class, by prediction, unsure rows."""
    view = table
    if errors_only and "gold" in view:
        g = view["gold"].map(normalise_label)
        p = view["predicted"].map(normalise_label)
        view = view[(g != "") & (g != p)]
    if gold_in and "gold" in view:
        view = view[view["gold"].isin(list(gold_in))]
    if predicted_in:
        view = view[view["predicted"].isin(list(predicted_in))]
    if score_below is not None and score_below < 1.0:
        view = view[view["score"] < score_below]
    return view
