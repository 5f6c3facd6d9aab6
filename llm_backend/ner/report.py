"""What is shown and stored about tagged data and a tagger run: entity counts, the per-type table, run metrics.

The evaluation itself is :mod:`llm_backend.ner.evaluate`; these are the views of it a page draws and the experiment
store keeps, so they are tested without a browser.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from llm_backend.ner.conll import TaggedData, spans

#: The headline numbers of a held-out evaluation stored with a run (the full evaluation stays in the session).
RUN_METRICS = ("micro_f1", "precision", "recall", "macro_f1", "n_sentences")
#: What a saved tagger keeps of its evaluation (its model card).
SAVED_METRICS = ("micro_f1", "precision", "recall", "per_type")


def entity_counts(data: TaggedData) -> pd.Series:
    """Entities per type in the data, most frequent first."""
    return pd.Series([k for s in data.sentences for k, _, _ in spans(s.tags)], dtype=object).value_counts()


def n_tokens(data: TaggedData) -> int:
    return sum(len(s) for s in data.sentences)


def per_type_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Precision/recall/F1/support per entity type, plus the type's boundary errors (right type, wrong span)."""
    per = pd.DataFrame(metrics["per_type"]).T.rename_axis("type").reset_index()
    boundary = metrics["confusion"].get("boundary_errors", {})
    if len(per):
        per["boundary errors"] = per["type"].map(lambda t: boundary.get(t, 0))
    return per


def run_metrics(test: Mapping[str, Any], wall_s: float, stopped: bool) -> dict[str, Any]:
    """The metrics stored for a run: headline held-out numbers, per-type scores, time, and whether it was stopped."""
    metrics: dict[str, Any] = {k: test[k] for k in RUN_METRICS if k in test}
    metrics.update({"per_type": test.get("per_type", {}), "seconds": round(wall_s, 2), "stopped": stopped})
    return metrics


def saved_metrics(test: Mapping[str, Any]) -> dict[str, Any]:
    return {k: test[k] for k in SAVED_METRICS if k in test}


def error_types(errors: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every entity type in the gold or predicted tags of error sentences (so both sides use one colour per type)."""
    return sorted({k for e in errors for k, _, _ in spans(e["gold"]) + spans(e["pred"])})
