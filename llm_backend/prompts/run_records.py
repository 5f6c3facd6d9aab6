"""What is kept and saved about a template run: a unique name per run and the settings/metrics the store records.

The prompt page keeps every run of a session side by side (to compare templates) and saves each finished or
stopped run to the experiment store. Both rules are plain Python so they are tested without a browser, and any
other caller (a notebook, a future CLI option) names and records runs the same way.
"""
from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from llm_backend.prompts.runner import PromptRunResult, RunConfig


def unique_run_name(name: str, taken: Container[str]) -> str:
    """``name``, or ``name #2``, ``#3``… when it is taken.

    A second run of the same template (other rows, other model) used to replace the first one's results
    (issue 18); numbering keeps both comparable.
    """
    if name not in taken:
        return name
    n = 2
    while f"{name} #{n}" in taken:
        n += 1
    return f"{name} #{n}"


@dataclass
class RunRecord:
    """The store row of one template run: the settings that reproduce it and the metrics it reached."""

    method: str  # the run mode: score / cloze / generate
    settings: dict[str, Any]
    metrics: dict[str, Any]
    labels: list[str]
    template: dict[str, Any]
    template_name: str


def run_record(result: PromptRunResult, config: RunConfig) -> RunRecord:
    """The record of ``result`` run with ``config``; a partial (stopped) result records the rows it did.

    The number of rows actually run goes into the settings (not the requested limit), so a stopped run is never
    mistaken for a full one; generation runs also record how many answers mapped to no label.
    """
    settings = dict(vars(config))
    settings.update(n_rows=len(result.rows))
    metrics: dict[str, Any] = {**(result.metrics or {}), "seconds": round(result.seconds, 2)}
    if result.mode == "generate":
        metrics["n_unmapped"] = result.n_unmapped
    return RunRecord(method=result.mode, settings=settings, metrics=metrics, labels=list(result.template.verbalizer),
                     template=result.template.to_dict(), template_name=result.template.name)
