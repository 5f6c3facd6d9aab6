"""What an explanation is: one weight per word for one label, and the method that produced it.

Every method (occlusion, gradient × input, integrated gradients) explains the same quantity — the probability of
the chosen label over the label set, as the scorer's own :func:`~llm_backend.scorers.base.to_probabilities` gives it,
before calibration — so pictures from different methods can be put side by side, and the deletion test in
:mod:`llm_backend.explain.faithfulness` measures all of them against the same score. A positive weight means the
word pushed the label's probability up, a negative one that it pulled it down.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llm_backend.explain.words import Word

METHOD_TITLES = {
    "occlusion": "Occlusion (leave one word out)",
    "gradient_x_input": "Gradient × input (captum)",
    "integrated_gradients": "Integrated gradients (captum)",
    "none": "No attribution (nothing to attribute)",
}
#: What ``--attribution``/the page may ask for; "auto" is occlusion, the method measured faithful for every scorer
#: (explainer.py); gradients on request where the model has them.
METHODS = ("auto", "occlusion", "gradient_x_input", "integrated_gradients")


@dataclass
class Attribution:
    """Word weights for one label of one text, plus everything needed to read them honestly."""

    text: str  # the text as given
    scored_text: str  # the part the model saw (shorter when the text was cut to the model's limit)
    words: list[Word]  # units of ``scored_text``
    weights: np.ndarray  # one per word: change in the label's probability attributed to the word
    label: str
    probabilities: dict[str, float]  # every label's probability for the full (scored) text
    method: str  # a key of METHOD_TITLES: the method that actually ran (after any fallback)
    scorer: str
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def method_title(self) -> str:
        return METHOD_TITLES.get(self.method, self.method)

    @property
    def probability(self) -> float:
        return float(self.probabilities.get(self.label, float("nan")))

    def top_words(self, k: int) -> list[int]:
        """Indices of the ``k`` words that pushed the label up most (positive weights only, largest first)."""
        order = np.argsort(-self.weights, kind="stable")
        return [int(i) for i in order[:k] if self.weights[i] > 0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON the CLI writes: label, method, a weight per word (with its character span)."""
        return {
            "label": self.label,
            "probability": self.probability,
            "probabilities": {k: float(v) for k, v in self.probabilities.items()},
            "method": self.method,
            "method_title": self.method_title,
            "target": f"probability of '{self.label}' over the label set (before calibration)",
            "scorer": self.scorer,
            "text": self.text,
            "scored_chars": len(self.scored_text),
            "words": [{"word": w.text, "start": w.start, "end": w.end, "weight": float(x)}
                      for w, x in zip(self.words, self.weights)],
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }
