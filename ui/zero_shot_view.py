"""Drawing a zero-shot result: filters, the results table, label distribution, metrics, confusion view, comparison.

Display only: nothing here reruns a model, so every filter answers instantly.
"""
from __future__ import annotations

from typing import Any, Sequence

import streamlit as st

from llm_backend.data.files import to_csv_safe
from llm_backend.evaluation.confusion import filter_results
from llm_backend.scorers.zero_shot import ZeroShotResult, metrics_table

from .charts import confusion_view, label_counts_chart
from .text import plain, plain_list


def results_view(res: ZeroShotResult, texts: Sequence[str], gold: list[str] | None,
                 metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run's results; returns its metrics (computed once per run, kept with the result)."""
    st.caption(plain(res.describe()))
    if res.calibration.note:
        st.caption("Calibration: " + plain(res.calibration.note, 1000))
    for note in res.notes:
        st.info(plain(note, 1000))
    table = res.table(texts)
    if gold:
        table.insert(1, "gold", gold)
    f1, f2, f3, f4 = st.columns([1, 2, 2, 1.5])
    errors_only = f1.toggle("Errors only", key="zs_filter_errors", disabled=not gold,
                            help="Rows whose prediction differs from the gold label.")
    gold_pick = f2.multiselect("Gold label", sorted(set(gold)) if gold else [], key="zs_filter_gold",
                               placeholder="all gold labels", disabled=not gold)
    pick = f3.multiselect("Predicted label", sorted(set(res.pred)), key="zs_filter_labels", placeholder="all labels")
    low = f4.slider("Only rows with score below", 0.0, 1.0, 1.0, 0.05, key="zs_filter_low",
                    help="Low top-label probability = the method is unsure; check these first.")
    view = filter_results(table, errors_only=errors_only, gold_in=gold_pick, predicted_in=pick, score_below=low)
    st.dataframe(view, width="stretch", height=320)
    st.caption(f"{len(view):,} of {len(table):,} rows shown.")
    st.download_button("Download predictions (CSV)", to_csv_safe(table).encode("utf-8"), "predictions.csv",
                       "text/csv", key="zs_dl_pred")
    label_counts_chart(res.pred, "Predicted label distribution", key="zs_dist_chart")
    if metrics is None and gold:
        metrics = res.evaluate(gold)
    if not metrics or not metrics.get("n"):
        return metrics
    st.subheader("Against the gold labels")
    m1, m2, m3 = st.columns(3)
    m1.metric("Accuracy", f"{metrics['accuracy']:.3f}")
    m2.metric("Macro-F1", f"{metrics['macro_f1']:.3f}")
    m3.metric("Rows with gold", f"{metrics['n']:,}")
    if metrics.get("excluded_trained_rows"):
        st.warning(f"{metrics['excluded_trained_rows']:,} rows the trained model learned from are left out of these "
                   "figures (scoring a model on its own training rows inflates them).")
    if metrics["unknown_gold"]:
        st.warning("Gold labels not in the label set (always counted wrong): " + plain_list(metrics["unknown_gold"]))
    st.dataframe(metrics_table(metrics).round(3), width="stretch", hide_index=True, height=260)
    pred = res.pred if not res.multi_label else [res.label_names[j] for j in res.probs.argmax(axis=1)]
    confusion_view(metrics, "zs_confusion", texts, gold, pred, res.decision.top_score)
    return metrics


def comparison_view(a: ZeroShotResult, b: ZeroShotResult, cmp: dict[str, Any]) -> None:
    st.caption(f"A: {plain(a.describe())}  \nB: {plain(b.describe())}")
    cols = st.columns(3)
    cols[0].metric("Agreement", f"{cmp['agreement']:.3f}")
    if "metrics_a" in cmp:
        ma, mb = cmp["metrics_a"], cmp["metrics_b"]
        cols[1].metric("Accuracy A → B", f"{mb['accuracy']:.3f}", f"{mb['accuracy'] - ma['accuracy']:+.3f}")
        cols[2].metric("Macro-F1 A → B", f"{mb['macro_f1']:.3f}", f"{mb['macro_f1'] - ma['macro_f1']:+.3f}")
    st.caption(f"{cmp['n_differ']:,} rows differ.")
    st.dataframe(cmp["differ"], width="stretch", height=280, hide_index=True)
