"""The widgets for one zero-shot method configuration → :class:`llm_backend.scorers.factory.ScorerConfig`.

The zero-shot page draws it twice (run A and the comparison's B). Methods come from the backend's method registry
(:func:`available_methods`), so a new scorer shows up here without editing the page.
"""
from __future__ import annotations

from typing import Sequence

import streamlit as st

from llm_backend.data.language import LanguageReport, template_language
from llm_backend.scorers.defaults import DEFAULT_METHOD, LARGE_EMBEDDER, zero_shot_embedder
from llm_backend.scorers.embedding import DEFAULT_TEMPLATE, GENERIC_TEMPLATES
from llm_backend.scorers.factory import (
    DEFAULT_ENSEMBLE,
    FAST_METHODS,
    METHOD_ROLES,
    METHOD_TITLES,
    ScorerConfig,
    available_methods,
)

from .language import template_default
from .models import registry


def _title(method: str) -> str:
    slow = "" if method in FAST_METHODS or method == "ensemble" else " (slow on CPU)"
    return METHOD_TITLES.get(method, method) + slow


def method_form(prefix: str, calibration: str, default_method: str = DEFAULT_METHOD,
                language: LanguageReport | None = None, label_names: Sequence[str] = (),
                corpus_chars: int | None = None) -> ScorerConfig:
    """Widgets for one configuration under key prefix ``prefix``; returns the configuration.

    ``language`` (the dataset's detected language) and ``corpus_chars`` (its text column's size) preselect the
    embedder as ``score`` does from the command line (:func:`llm_backend.scorers.defaults.zero_shot_embedder`:
    multilingual for non-English texts, the larger English embedder for small corpora), and ``language`` a
    hypothesis template in the labels' (else the texts') language.
    """
    reg = registry()
    options = available_methods(reg)
    c1, c2, c3 = st.columns([1.2, 1.2, 1.6])
    method = c1.selectbox("Method", options, index=options.index(default_method) if default_method in options else 0,
                          format_func=_title, key=f"{prefix}_method")
    models: dict[str, str | None] = {}
    members: list[str] = []
    if method == "ensemble":
        choices = [m for m in options if m not in ("ensemble", "trained")]
        default = [m for m in DEFAULT_ENSEMBLE if m in choices]
        members = c2.multiselect("Methods to average", choices, default=default, format_func=_title,
                                 key=f"{prefix}_members")
        models = {m: reg.default(METHOD_ROLES[m]).name for m in members}
    else:
        specs = reg.by_role(METHOD_ROLES[method])
        names = [s.name for s in specs]
        index, choice = 0, None
        if language and METHOD_ROLES[method] == "embedder":
            choice = zero_shot_embedder(corpus_chars if corpus_chars is not None else 10**9, language, reg)
            index = names.index(choice.name) if choice.name in names else 0
        lang_key = f"_{language.language}" if language and language.needs_multilingual else ""
        # the key follows the default, so loading a corpus of another size or language refreshes the preselection
        size_key = "_small_corpus" if choice is not None and choice.name == LARGE_EMBEDDER else ""
        models = {method: c2.selectbox("Model", names, index=index, key=f"{prefix}_model{lang_key}{size_key}",
                                       help="; ".join(f"{s.name}: {s.description}" for s in specs))}
        if choice is not None and choice.name != names[0]:
            c2.caption(f"Preselected {choice.name}: {choice.reason}.")
    used = set(members) if method == "ensemble" else {method}
    templates = None
    if used & {"embedding", "self-training", "nli"}:
        several = c3.checkbox("Average several generic templates", key=f"{prefix}_several",
                              help="Averages: " + " | ".join(GENERIC_TEMPLATES))
        single = template_default(language, label_names) if language else DEFAULT_TEMPLATE
        default_t = "\n".join(GENERIC_TEMPLATES) if several else single
        # the key follows the template's language, so a new dataset or label language refreshes the default
        t_lang = template_language(language, label_names) if language else "en"
        templates = c3.text_area("Hypothesis template(s), one per line, with {label}", default_t, height=90,
                                 key=f"{prefix}_template_{int(several)}_{t_lang}")
    refine = None
    if used & {"embedding", "self-training"}:
        refine = int(c3.checkbox(
            "Refine label vectors on these texts", value=True, key=f"{prefix}_refine",
            help="Moves each label's vector toward the texts it most confidently claims (transductive). "
                 "Raised accuracy on every data set we measured; turn off to score each text independently."))
    if "lm" in used:
        c3.caption("The LM prompt is edited on the Prompt templates page; its default is used here. The LM reads "
                   "every text once per label: expect minutes for hundreds of rows on a CPU.")
    if "nli" not in options and "nli" not in used:
        c3.caption("NLI entailment needs an NLI model (e.g. a local MNLI folder): add one in the sidebar.")
    return ScorerConfig(method=method, models=models, members=tuple(members), templates=templates, refine=refine,
                        calibration=calibration)
