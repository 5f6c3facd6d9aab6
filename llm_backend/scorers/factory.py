"""Which methods exist, which model role each needs, and building a scorer from a loaded model.

Pages and the CLI load models their own way (``st.cache_resource`` vs the process cache), then hand the
:class:`LoadedModel` here, so this module never loads weights itself. The LM verbalizer and the trained-model
scorer live in modules owned elsewhere and are imported lazily: a missing one disables that method with a message
instead of breaking the others.
"""
from __future__ import annotations

import importlib.util
import inspect
from typing import Any, Sequence

from llm_backend.core.errors import ModelError, UserError
from llm_backend.models.loaded import LoadedModel
from llm_backend.scorers.base import Scorer
from llm_backend.scorers.embedding import EmbeddingScorer
from llm_backend.scorers.nli import NLIScorer

SCORING_METHODS: tuple[str, ...] = ("embedding", "lm", "nli", "trained")
METHOD_TITLES = {
    "embedding": "Embedding similarity",
    "lm": "LM verbalizer",
    "nli": "NLI entailment",
    "trained": "Trained model",
    "ensemble": "Ensemble",
}
METHOD_ROLES = {"embedding": "embedder", "lm": "causal_lm", "nli": "nli", "trained": "classifier"}


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def method_available(method: str) -> bool:
    """Whether the code for a method is present (models are checked separately, by role)."""
    if method == "lm":
        return _module_exists("llm_backend.scorers.lm")
    if method == "trained":
        return _module_exists("llm_backend.training.trained_models")
    return method in METHOD_ROLES or method == "ensemble"


def check_method(method: str) -> str:
    method = (method or "").strip().lower()
    if method not in (*SCORING_METHODS, "ensemble"):
        raise UserError(f"Unknown method '{method}'. Choose one of: {', '.join((*SCORING_METHODS, 'ensemble'))}.")
    return method


def _accepts(cls: Any, param: str) -> bool:
    try:
        return param in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def make_scorer(method: str, loaded: LoadedModel, *, templates: str | Sequence[str] | None = None,
                use_descriptions: bool = True, refine: int | None = None) -> Scorer:
    """A scorer for one method on an already loaded model of the matching role."""
    method = check_method(method)
    if method == "ensemble":
        raise UserError("Build an ensemble from its member scorers (scorers.ensemble.EnsembleScorer).")
    role = METHOD_ROLES[method]
    if loaded.spec.role != role:
        raise ModelError(f"The {METHOD_TITLES[method]} method needs a {role} model; '{loaded.spec.name}' is a "
                         f"{loaded.spec.role}.")
    if method == "embedding":
        if refine is None:
            return EmbeddingScorer(loaded, templates, use_descriptions=use_descriptions)
        return EmbeddingScorer(loaded, templates, use_descriptions=use_descriptions, refine=refine)
    if method == "nli":
        return NLIScorer(loaded, templates)
    if method == "lm":
        if not method_available("lm"):
            raise ModelError("The LM verbalizer method is not installed in this build.")
        from llm_backend.scorers.lm import LMVerbalizerScorer

        kwargs: dict[str, Any] = {}
        return LMVerbalizerScorer(loaded, **kwargs)
    if not method_available("trained"):
        raise ModelError("Trained-model scoring is not available in this build.")
    from llm_backend.training.trained_models import TrainedScorer

    return TrainedScorer(loaded)
