"""Explaining a row of a prompt-template run: the run's own calibrated probability, the LM's gradients, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llm_backend.core.errors import UserError
from llm_backend.data.files import load_sample
from llm_backend.explain.prompt_runs import PromptRowScorer, _text_span, explain_prompt_row
from llm_backend.prompts.runner import PromptRunResult, RunConfig, TemplateRun
from llm_backend.prompts.templates import shipped_templates
from llm_backend.scorers.base import to_probabilities


def _reviews(n_per_class: int) -> pd.DataFrame:
    df = load_sample("Product reviews").df
    return pd.concat([g.head(n_per_class) for _, g in df.groupby("sentiment")]).reset_index(drop=True)


def test_a_prompt_run_row_is_explained_with_the_runs_own_probability(causal_lm):
    """Shipped sentiment template, 3 real reviews (too few for centering: the run falls back to contextual
    calibration, whose offsets come from other prompts): the explained numbers are the calibrated probabilities the
    run showed, the LM's gradients attribute only the review's words, a variant text goes in the same prompt."""
    template = next(t for t in shipped_templates() if t.name == "Review sentiment")
    res = TemplateRun(template, _reviews(1), "text", "sentiment", RunConfig(), lm=causal_lm).run_all()
    assert res.config is not None and res.model_spec.name == causal_lm.spec.name
    assert any("contextual" in n.lower() for n in res.notes)
    pos = 2
    shown = to_probabilities(res.scores[pos : pos + 1], "logprob")[0]
    attr = explain_prompt_row(res, pos, causal_lm, method="gradient_x_input")
    assert attr.method == "gradient_x_input" and attr.label == res.pred[pos]
    assert attr.scored_text == res.texts[pos]
    assert np.allclose([attr.probabilities[l] for l in res.labels], shown, atol=1e-5)
    assert len(attr.weights) == len(attr.words) and np.isfinite(attr.weights).all() and np.abs(attr.weights).sum() > 0
    assert any("calibrated probability the run showed" in n for n in attr.notes)
    # Another label, by the default (auto: occlusion, measured faithful for the LM where gradient × input is not):
    # same probabilities, weights are real drops of that label.
    other = next(l for l in res.labels if l != res.pred[pos])
    occ = explain_prompt_row(res, pos, causal_lm, label=other)
    assert occ.method == "occlusion" and occ.label == other
    assert np.allclose([occ.probabilities[l] for l in res.labels], shown, atol=1e-5)
    scorer = PromptRowScorer(res, pos, causal_lm)
    variant = scorer.prompt_with("Great value.")
    assert variant.startswith(res.prompts[pos][: scorer.start]) and variant.endswith(res.prompts[pos][scorer.end :])


def test_runs_that_cannot_be_explained_say_so():
    template = next(t for t in shipped_templates() if t.name == "Review sentiment")
    gen = PromptRunResult(template, "generate", [0], ["a text"], None, ["positive"], template.labels, ["p a text"],
                          None, ["positive"])
    with pytest.raises(UserError, match="generate run"):
        PromptRowScorer(gen, 0, None)
    scored = PromptRunResult(template, "score", [0], ["a text"], None, ["positive"], template.labels, ["p a text"],
                             np.zeros((1, 3)))
    with pytest.raises(UserError, match="not in this run"):
        PromptRowScorer(scored, 3, None)


def test_the_text_is_found_in_its_prompt_even_when_the_run_cut_it():
    prompt = "<s>Review: the first words of a long review …\n\nIs it positive?"
    text = "the first words of a long review that went on and on"
    start, end = _text_span(prompt, text)
    assert prompt[start:end] == "the first words of a long review …"
    assert _text_span("Review: short one. Positive?", "short one.") == (8, 18)
    with pytest.raises(UserError):
        _text_span("nothing here", "a completely different text")
