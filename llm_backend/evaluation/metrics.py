"""Evaluation numbers analysts trust, computed by scikit-learn, in one JSON-friendly shape.

The same dictionary feeds the pages, the CLI's ``--metrics-json`` and the benchmarks, so a number seen in the UI is
the number written to disk.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def normalise_label(value: object) -> str:
    """Gold labels arrive with stray spaces and mixed types (1 vs "1"); compare them as trimmed strings."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def evaluate(gold: Sequence[object], pred: Sequence[object], labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class P/R/F1 and the confusion matrix.

    ``labels`` is the label set the predictions come from. Gold values outside it are reported in
    ``unknown_gold`` and still count as errors: hiding them would flatter a label set that misses a class.
    """
    gold_s = [normalise_label(g) for g in gold]
    pred_s = [normalise_label(p) for p in pred]
    if len(gold_s) != len(pred_s):
        raise ValueError(f"{len(gold_s)} gold labels but {len(pred_s)} predictions")
    keep = [i for i, g in enumerate(gold_s) if g != ""]
    gold_s = [gold_s[i] for i in keep]
    pred_s = [pred_s[i] for i in keep]
    label_list = [normalise_label(l) for l in labels] if labels is not None else sorted(set(gold_s))
    unknown = sorted(set(gold_s) - set(label_list))
    extra_pred = sorted(set(pred_s) - set(label_list) - set(unknown))
    all_labels = list(label_list) + unknown + extra_pred
    n = len(gold_s)
    if n == 0:
        return {"n": 0, "accuracy": None, "macro_f1": None, "per_class": {}, "labels": all_labels,
                "confusion": [], "unknown_gold": unknown, "missing_gold": len(gold) - 0}
    present = [l for l in all_labels if l in set(gold_s) | set(pred_s)]
    p, r, f, s = precision_recall_fscore_support(gold_s, pred_s, labels=present, zero_division=0)
    per_class = {
        lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, lab in enumerate(present)
    }
    # Macro-F1 over the classes that occur in gold: a label nobody has should not drag the mean to zero.
    gold_classes = [l for l in present if l in set(gold_s)]
    cm = confusion_matrix(gold_s, pred_s, labels=present)
    return {
        "n": n,
        "accuracy": float(accuracy_score(gold_s, pred_s)),
        "macro_f1": float(f1_score(gold_s, pred_s, labels=gold_classes, average="macro", zero_division=0)),
        "per_class": per_class,
        "labels": present,
        "confusion": cm.tolist(),
        "unknown_gold": unknown,
        "missing_gold": len(gold) - n,
    }


def misclassified(texts: Sequence[str], gold: Sequence[object], pred: Sequence[object]) -> list[dict[str, Any]]:
    """Rows where prediction and gold differ, with their row number, for the 'what went wrong' table."""
    rows = []
    for i, (t, g, p) in enumerate(zip(texts, gold, pred)):
        gs, ps = normalise_label(g), normalise_label(p)
        if gs and gs != ps:
            rows.append({"row": i, "text": t, "gold": gs, "predicted": ps})
    return rows


def agreement(a: Sequence[object], b: Sequence[object]) -> float:
    """Share of rows where two runs predict the same label."""
    if not len(a):
        return float("nan")
    return float(np.mean([normalise_label(x) == normalise_label(y) for x, y in zip(a, b)]))
