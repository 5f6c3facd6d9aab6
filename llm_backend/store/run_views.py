"""Tables of the experiment store as the Experiments page shows them: runs, run details, trained models.

Plain frames built from :class:`~llm_backend.store.database.Run` objects, so what the list shows (and what a CSV of
it holds) is tested without a browser and the page only draws.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from llm_backend.store.database import Run, Versioned

#: Metrics with their own view on the page (per-class table, confusion view, predictions table); "All metrics"
#: lists the rest.
DETAIL_VIEWS = ("per_class", "confusion", "predictions")


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: when, what, on which data, its status and headline metrics."""
    return pd.DataFrame([{
        "id": r.id, "started": r.started_at.replace("T", " ")[:19], "kind": r.kind, "method": r.method,
        "model": r.model, "dataset": r.dataset_name or "—", "status": r.status, "accuracy": r.accuracy,
        "macro_f1": r.macro_f1, "n": r.metrics.get("n"), "seconds": r.duration_s, "note": r.note,
    } for r in runs])


def runs_with_metrics(runs: Sequence[Run]) -> list[Run]:
    """Runs that have accuracy or macro-F1, oldest first (the store lists newest first): the bar chart's order."""
    return [r for r in runs if r.accuracy is not None or r.macro_f1 is not None][::-1]


def other_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics no dedicated view shows (timings, counts, method-specific numbers)."""
    return {k: v for k, v in metrics.items() if k not in DETAIL_VIEWS}


def predictions_table(predictions: Sequence[Any]) -> pd.DataFrame:
    """The per-row predictions a run saved, numbered by dataset row position."""
    return pd.DataFrame({"row": range(len(predictions)), "predicted": list(predictions)})


def comparable_settings(run: Run) -> dict[str, Any]:
    """A run's settings with what it ran (kind, method, model) in front: two runs compare on all of it."""
    return {"kind": run.kind, "method": run.method, "model": run.model, **run.settings}


def different_data(a: Run, b: Run) -> bool:
    """The two runs scored different data, so their metrics are not directly comparable."""
    return a.dataset_fingerprint != b.dataset_fingerprint


def template_to_open(template: Versioned) -> dict[str, Any]:
    """A saved template as the prompt page opens it (``llm_backend.prompts.templates.template_from_dict``)."""
    return {"name": template.name, **dict(template.content)}


def trained_models_table(models: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Recorded trained models; the folder name only (full paths reveal the server's layout)."""
    return pd.DataFrame([{
        "name": m["name"], "base model": m["base_model"], "run": m["run_id"], "saved": m["created_at"],
        "folder present": m["exists"], "folder": Path(m["path"]).name,
    } for m in models])


def export_file_name(project: str) -> str:
    return f"{project.replace(' ', '_')}.zss.json"


def format_metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
