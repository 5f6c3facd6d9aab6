"""Run names and store records of prompt-template runs, and the editor's starter template and verbalizer table."""
from __future__ import annotations

import pytest

from llm_backend.core.errors import TemplateError
from llm_backend.evaluation.metrics import evaluate
from llm_backend.prompts.generation import UNMAPPED
from llm_backend.prompts.run_records import run_record, unique_run_name
from llm_backend.prompts.runner import PromptRunResult, RunConfig
from llm_backend.prompts.templates import PromptTemplate, check_template, starter_template, verbalizer_from_rows

VERB = {"positive": ["great"], "negative": ["bad"]}


def test_unique_run_name_numbers_reused_names():
    assert unique_run_name("A", {}) == "A"
    assert unique_run_name("A", {"A": 1}) == "A #2"
    assert unique_run_name("A", {"A": 1, "A #2": 2}) == "A #3"
    assert unique_run_name("B", {"A": 1}) == "B"


def _result(mode: str, pred: list[str], rows: list[int]) -> PromptRunResult:
    gold = ["positive", "negative", "positive"][: len(rows)]
    return PromptRunResult(template=PromptTemplate("t", "{{ text }}", dict(VERB)), mode=mode, rows=rows,
                           texts=["a", "b", "c"][: len(rows)], gold=gold, pred=pred, labels=list(VERB),
                           prompts=["p"] * len(rows), metrics=evaluate(gold, pred, list(VERB)), seconds=1.234,
                           complete=False)


def test_run_record_counts_rows_done_not_rows_asked():
    cfg = RunConfig(mode="score", limit=50, seed=3)
    rec = run_record(_result("score", ["positive", "negative"], [0, 1]), cfg)
    assert rec.settings["n_rows"] == 2 and rec.settings["limit"] == 50 and rec.settings["seed"] == 3
    assert rec.metrics["accuracy"] == 1.0 and rec.metrics["seconds"] == 1.23
    assert "n_unmapped" not in rec.metrics
    assert (rec.method, rec.labels, rec.template_name) == ("score", ["positive", "negative"], "t")
    assert rec.template["verbalizer"] == VERB


def test_run_record_of_generation_counts_unmapped_answers():
    rec = run_record(_result("generate", ["positive", UNMAPPED, UNMAPPED], [0, 1, 2]), RunConfig(mode="generate"))
    assert rec.metrics["n_unmapped"] == 2 and rec.method == "generate"


def test_starter_template_uses_gold_labels_or_a_runnable_default():
    tpl = starter_template(["card_arrival", "refund"])
    assert list(tpl.verbalizer) == ["card_arrival", "refund"] and tpl.verbalizer["card_arrival"] == ["card arrival"]
    check_template(tpl.template)  # the starter renders: no unknown placeholder
    assert list(starter_template([]).verbalizer) == ["positive", "negative"]


def test_verbalizer_from_rows_skips_blank_rows_and_validates():
    rows = [{"label": "positive", "words": "great, good"}, {"label": " ", "words": None},
            {"label": "negative", "words": "bad"}, {"label": None, "words": "x"}]
    assert verbalizer_from_rows(rows) == {"positive": ["great", "good"], "negative": ["bad"]}
    with pytest.raises(TemplateError, match="no answer words"):
        verbalizer_from_rows([{"label": "positive", "words": ""}, {"label": "negative", "words": "bad"}])
    with pytest.raises(TemplateError, match="at least two labels"):
        verbalizer_from_rows([{"label": "positive", "words": "good"}])
