"""The causal LM prompt runs use by default: Gemma 3 270M (measured better than SmolLM2 on AG News and the judged
sentiment recipe, docs/prompt-templates.md), overridable by the operator (``ZSS_PROMPT_LM``), the same on the page and
in the CLI; and the default really scores, through its own path (sliding-window layers: no answer tree).

The rest of the suite runs prompts on SmolLM2 (tests/conftest.py sets ``ZSS_PROMPT_LM``): it loads in seconds, where
Gemma's first use assembles its GGUF and dequantises ~1 GB into the cache.
"""
from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from llm_backend.core.errors import ModelError
from llm_backend.models.registry import ModelRegistry
from llm_backend.prompts.runner import (
    DEFAULT_PROMPT_LM,
    RunConfig,
    TemplateRun,
    default_prompt_model,
)
from llm_backend.prompts.templates import shipped_templates
from tests.conftest import APP_TIMEOUT, stratified


def test_default_is_gemma_unless_the_operator_names_another(monkeypatch):
    reg = ModelRegistry()
    monkeypatch.delenv("ZSS_PROMPT_LM", raising=False)
    assert DEFAULT_PROMPT_LM == "Gemma-3-270M" and default_prompt_model(reg).name == "Gemma-3-270M"
    assert reg.default("causal_lm").name == "SmolLM2-135M-Instruct"  # other roles' defaults are untouched
    assert default_prompt_model(reg, "masked_lm").role == "masked_lm"
    monkeypatch.setenv("ZSS_PROMPT_LM", "SmolLM2-135M-Instruct")
    assert default_prompt_model(reg).name == "SmolLM2-135M-Instruct"
    monkeypatch.setenv("ZSS_PROMPT_LM", "gpt-17")
    with pytest.raises(ModelError, match="ZSS_PROMPT_LM names 'gpt-17'.*Gemma-3-270M"):
        default_prompt_model(reg)


def test_cli_says_when_the_operator_default_is_unknown(monkeypatch, tmp_path, capsys):
    from llm_backend.cli import main

    monkeypatch.setenv("ZSS_PROMPT_LM", "gpt-17")
    (tmp_path / "d.csv").write_text("text\nThe team won.\n")
    (tmp_path / "t.yaml").write_text("name: t\ntemplate: '{{ text }}'\nverbalizer: {sports: [sports], world: [world]}\n")
    rc = main(["prompt", "--data", str(tmp_path / "d.csv"), "--template-file", str(tmp_path / "t.yaml"),
               "--out", str(tmp_path / "o.csv")])
    assert rc == 2 and "ZSS_PROMPT_LM names 'gpt-17'" in capsys.readouterr().err


def _picker_script() -> None:
    import streamlit as st

    from llm_backend.prompts.runner import default_prompt_model
    from ui.models import model_picker, registry

    spec = model_picker("causal_lm", "Causal LM", key="lm", default=default_prompt_model(registry()).name)
    st.session_state["picked"] = spec.name


def test_the_page_preselects_the_cli_default(monkeypatch):
    """The Prompt templates page's model picker starts on the same model as `python -m llm_backend prompt`."""
    for value, expected in ((None, "Gemma-3-270M"), ("SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct")):
        if value is None:
            monkeypatch.delenv("ZSS_PROMPT_LM", raising=False)
        else:
            monkeypatch.setenv("ZSS_PROMPT_LM", value)
        at = AppTest.from_function(_picker_script, default_timeout=APP_TIMEOUT).run()
        assert not at.exception
        assert at.selectbox(key="lm").value == expected == at.session_state["picked"]
        assert set(at.selectbox(key="lm").options) >= {"Gemma-3-270M", "SmolLM2-135M-Instruct"}  # both selectable


@pytest.mark.slow
def test_gemma_prefix_cache_matches_the_plain_path(ag_news):
    """The default LM scores the shipped topic template with shared demonstrations longer than its 512-token sliding
    window: the prefix-cache path (continuation scoring, no answer tree) gives the plain path's scores."""
    from llm_backend.models.loading import get_model
    from llm_backend.prompts.lm_scoring import tree_scoring_supported

    gemma = get_model(ModelRegistry().get(DEFAULT_PROMPT_LM))  # first use here: assembled and dequantised once
    assert not tree_scoring_supported(gemma.model)  # sliding-window layers
    news = stratified(ag_news, 3, seed=1)
    tpl = next(t for t in shipped_templates() if t.name == "News topic")
    cfg = {"few_shot": 2, "calibration": "none", "seed": 3}
    probe = TemplateRun(tpl, news, "text", "label", RunConfig(**cfg), lm=gemma)
    shared = max(map(tuple, probe.examples), key=lambda e: probe.examples.count(list(e)))
    rows = [r for r, ex in zip(probe.rows, probe.examples) if tuple(ex) == shared][:2]
    run = TemplateRun(tpl, news, "text", "label", RunConfig(**cfg), lm=gemma, rows=rows)
    res = run.run_all(chunk=2)
    assert not run.chat  # a base model: plain-text prompts, demonstrations as earlier question/answer pairs
    assert run.prefix_store.computed == 1
    (key, _), = run.prefix_store._items.items()
    assert len(key) > 512  # the shared demonstrations reach past the sliding window
    plain = TemplateRun(tpl, news, "text", "label", RunConfig(**cfg, share_prefix=False), lm=gemma,
                        rows=rows).run_all(chunk=2)
    assert plain.prompts == res.prompts
    assert np.abs(res.scores - plain.scores).max() < 1e-3
    assert (res.scores.argmax(axis=1) == plain.scores.argmax(axis=1)).all()
