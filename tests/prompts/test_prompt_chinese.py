"""Prompt templates written in Chinese work end to end with the LM: rendering, YAML round trip, score mode."""
from __future__ import annotations

import numpy as np

from llm_backend.data.files import load_sample
from llm_backend.prompts.runner import RunConfig, TemplateRun
from llm_backend.prompts.templates import PromptTemplate, load_template_text

VERB = {"物流配送": ["快递", "物流"], "退货退款": ["退货", "退款"], "账单问题": ["账单", "扣费"]}
TEMPLATE = "客户留言：{{ text }}\n这条留言是关于什么的（{{ answers }}）？回答："


def test_chinese_template_round_trips_and_scores(causal_lm):
    tpl = PromptTemplate("中文意图", TEMPLATE, VERB)
    again = load_template_text(tpl.to_yaml())
    assert again.template == TEMPLATE and again.verbalizer == VERB and "客户留言" in tpl.to_yaml()
    df = load_sample("Customer requests zh").df
    df = df[df["category"].isin(VERB)].head(6).reset_index(drop=True)
    run = TemplateRun(tpl, df, "text", "category", RunConfig(calibration="none"), lm=causal_lm, rows=[0, 1, 2])
    res = run.run_all(chunk=2)
    assert res.scores.shape == (3, 3) and np.isfinite(res.scores).all()
    assert set(res.pred) <= set(VERB)
    assert df.loc[0, "text"] in res.prompts[0] and "这条留言是关于什么的" in res.prompts[0]
