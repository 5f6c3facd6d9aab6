"""What colours the embedding map: the choices offered and the value per point for each choice.

The map can be coloured by gold labels, the zero-shot page's predictions (label, correct/incorrect, confidence),
discovered clusters, or any column. Each choice needs something that may be missing (no gold column, no
predictions for this dataset, no clusters yet); :func:`colour_values` says which instead of failing, so the page
shows a pointer to where it can be made.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from llm_backend.maps.clustering import NOISE, ClusterSummary
from llm_backend.maps.embedding_map import categorical, confidence, correctness, is_continuous

NO_COLOUR = "(none)"
GOLD = "Gold label"
PREDICTED = "Predicted label"
CORRECT = "Correct / incorrect"
CONFIDENCE = "Confidence"
CLUSTER = "Cluster"
COLUMN = "Column: "  # prefix of a column choice
PREDICTION_CHOICES = (PREDICTED, CORRECT, CONFIDENCE)
#: Groups drawn as separate traces at most; beyond that the rarest fold into "(other)" (a legend of 200 is the limit
#: of what still reads; WebGL draws 200 traces of 20,000 points interactively).
MAX_GROUPS = 200

Missing = Literal["predictions", "gold", "clusters"]


def colour_options(has_gold: bool, columns: Sequence[Any], text_column: str) -> list[str]:
    """The "Colour by" choices: gold only when there is a gold column; every column except the text itself."""
    cols = [f"{COLUMN}{c}" for c in columns if c != text_column]
    return [NO_COLOUR] + ([GOLD] if has_gold else []) + [PREDICTED, CORRECT, CONFIDENCE, CLUSTER] + cols


def default_colour(has_gold: bool) -> str:
    """Gold when there is one (the first question is where the classes sit), else no colour."""
    return GOLD if has_gold else NO_COLOUR


def colour_title(choice: str) -> str:
    """The legend/colour-bar title of a choice: the column name alone, nothing for no colour."""
    return "" if choice == NO_COLOUR else choice.removeprefix(COLUMN)


@dataclass
class Colouring:
    """Values per map point (None: uncoloured) and, when the choice could not be honoured, what is missing."""

    values: np.ndarray | list[Any] | None
    missing: Missing | None = None


def cluster_colours(ids: np.ndarray, summaries: Sequence[ClusterSummary]) -> np.ndarray:
    """"<id>: <candidate name>" per point, "noise" for HDBSCAN's outliers: the legend says what a group is about."""
    names = {s.cluster: s.name for s in summaries}
    return np.where(ids == NOISE, "noise", pd.Series(ids).map(lambda c: f"{c}: {names.get(c, c)}").to_numpy())


def colour_values(choice: str, positions: np.ndarray, *, df: pd.DataFrame, gold: Sequence[str] | None,
                  predictions: Mapping[str, Any] | None,
                  clusters: tuple[np.ndarray, Sequence[ClusterSummary]] | None) -> Colouring:
    """The colour of each point at ``positions`` (dataset row positions) for ``choice``.

    ``predictions`` must already be checked to belong to this dataset
    (:func:`llm_backend.maps.embedding_map.valid_predictions`); ``clusters`` are ids per map point and summaries.
    """
    if choice == GOLD:
        return Colouring([gold[i] for i in positions] if gold else None)
    if choice in PREDICTION_CHOICES:
        if predictions is None:
            return Colouring(None, "predictions")
        pred = [str(predictions["pred"][i]) for i in positions]
        if choice == PREDICTED:
            return Colouring(pred)
        if choice == CONFIDENCE:
            return Colouring(confidence(predictions)[positions])
        if not gold:
            return Colouring(None, "gold")
        return Colouring(correctness([gold[i] for i in positions], pred))
    if choice == CLUSTER:
        return Colouring(None, "clusters") if clusters is None else Colouring(cluster_colours(*clusters))
    if choice.startswith(COLUMN):
        return Colouring(df[choice.removeprefix(COLUMN)].to_numpy()[positions])
    return Colouring(None)


def colour_classes(values: Sequence[Any] | np.ndarray | None) -> list[str]:
    """The distinct groups one can highlight (none for a continuous colour scale)."""
    if values is None or is_continuous(values):
        return []
    return sorted(set(categorical(values, MAX_GROUPS)))
