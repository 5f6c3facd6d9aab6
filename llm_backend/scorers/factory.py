"""Which methods exist, which model role each needs, and building a scorer from a configuration.

:func:`build_scorer` is the one place a method configuration (method, models, templates, refinement, ensemble
members) becomes a scorer; the zero-shot page and ``score`` both call it, so they build the same thing. Pages and
the CLI load models their own way (``st.cache_resource`` vs the process cache) and pass that loader in, so this
module never loads weights itself. The LM verbalizer and the trained-model
scorer live in modules owned elsewhere and are imported lazily: a missing one disables that method with a message
instead of breaking the others.
"""
from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from llm_backend.core.errors import ModelError, UserError
from llm_backend.models.loaded import LoadedModel
from llm_backend.scorers.base import Scorer
from llm_backend.scorers.embedding import EmbeddingScorer
from llm_backend.scorers.nli import NLIScorer

SCORING_METHODS: tuple[str, ...] = ("embedding", "self-training", "lm", "nli", "trained")
METHOD_TITLES = {
    "embedding": "Embedding similarity",
    "self-training": "Embedding + self-training on this corpus",
    "lm": "LM verbalizer",
    "nli": "NLI entailment",
    "trained": "Trained model",
    "ensemble": "Ensemble",
}
METHOD_ROLES = {"embedding": "embedder", "self-training": "embedder", "lm": "causal_lm", "nli": "nli",
                "trained": "classifier"}
#: Members of an ensemble when none are named: the combination measured best (docs/zero-shot.md). It includes the
#: LM, which is ~100× slower per row than embeddings on a CPU, so pages never pick it without saying so.
DEFAULT_ENSEMBLE: tuple[str, ...] = ("embedding", "lm")
#: Methods that cost about one embedding per row (seconds for thousands of rows on a CPU); the rest are slow.
FAST_METHODS = frozenset({"embedding", "self-training", "trained"})


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
    if method == "self-training":
        from .self_training import SelfTrainingScorer

        return SelfTrainingScorer(loaded, templates, use_descriptions=use_descriptions,
                                  **({} if refine is None else {"refine": refine}))
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


@dataclass
class ScorerConfig:
    """One method configuration, as the page's widgets or the CLI's flags describe it."""

    method: str = "embedding"
    models: dict[str, str | None] = field(default_factory=dict)  # method -> model name/folder (None = default)
    members: Sequence[str] | None = None  # ensemble only (None = DEFAULT_ENSEMBLE; empty = an error)
    templates: str | Sequence[str] | None = None
    refine: int | None = None
    calibration: str = "centering"  # the ensemble calibrates each member before averaging

    def ensemble_members(self) -> list[str]:
        return list(DEFAULT_ENSEMBLE if self.members is None else self.members)

    def methods(self) -> list[str]:
        """Every method this configuration runs (the members of an ensemble)."""
        return self.ensemble_members() if self.method == "ensemble" else [self.method]

    def is_slow(self) -> bool:
        return any(m not in FAST_METHODS for m in self.methods())

    def cost_units(self, n_texts: int, n_labels: int) -> int:
        """What the run time grows with: texts × labels for methods that read a text once per label (LM, NLI),
        texts alone for embeddings and trained models (labels are embedded once). Measured on the browser test:
        costing an embedding run per text × label predicted 20 min for 77 labels after an 8-label run."""
        return n_texts * (n_labels if self.is_slow() else 1)

    def cost_key(self) -> str:
        """Identifies the configuration's speed (method, models, members) for run-time estimates."""
        members = ",".join(self.ensemble_members()) if self.method == "ensemble" else ""
        models = ",".join(f"{k}={v}" for k, v in sorted(self.models.items()))
        return f"{self.method}|{members}|{models}|refine={self.refine}"

    def as_settings(self) -> dict[str, Any]:
        """What the experiment store records about this configuration."""
        out: dict[str, Any] = {"method": self.method, "models": dict(self.models)}
        if self.method == "ensemble":
            out["members"] = self.ensemble_members()
        if self.templates is not None:
            out["templates"] = self.templates
        if self.refine is not None:
            out["refine"] = self.refine
        return out


def available_methods(registry: Any) -> list[str]:
    """Methods whose code is present and for which a model of the right role is registered (page choices)."""
    out = [m for m in SCORING_METHODS if method_available(m) and registry.by_role(METHOD_ROLES[m])]
    return out + ["ensemble"]


def build_scorer(config: ScorerConfig, registry: Any, load: Callable[[Any], LoadedModel],
                 on_load: Callable[[str], None] | None = None) -> tuple[Scorer, str]:
    """The scorer for a configuration and the model name(s) it uses. ``load(spec)`` loads a model (cached)."""
    from .ensemble import EnsembleScorer

    method = check_method(config.method)
    if method == "ensemble":
        members = config.ensemble_members()
        if not members:
            raise UserError("Choose at least one method to average in the ensemble.")
        if "ensemble" in members:
            raise UserError("An ensemble cannot contain another ensemble.")
        built = [build_scorer(ScorerConfig(m, config.models, None, config.templates, config.refine,
                                           config.calibration), registry, load, on_load) for m in members]
        return EnsembleScorer([s for s, _ in built], config.calibration), " + ".join(n for _, n in built)
    if not method_available(method):
        raise UserError(f"The '{method}' method is not available in this build.")
    spec = registry.resolve(config.models.get(method), METHOD_ROLES[method])
    if on_load is not None:
        on_load(spec.name)
    return make_scorer(method, load(spec), templates=config.templates, refine=config.refine), spec.name
