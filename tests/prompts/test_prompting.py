"""Prompt templates: sandboxed rendering, validation, few-shot selection, the three run modes, library and CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llm_backend.core.errors import TemplateError, UserError
from llm_backend.core.paths import PathError
from llm_backend.data.files import load_sample
from llm_backend.prompts.few_shot import select_examples
from llm_backend.prompts.generation import UNMAPPED, map_to_label
from llm_backend.prompts.runner import RunConfig, TemplateRun, compare
from llm_backend.prompts.templates import (
    PromptTemplate,
    TemplateLibrary,
    check_template,
    load_template_file,
    load_template_text,
    render,
    row_context,
    shipped_templates,
)
from tests.conftest import ROOT

VERB = {"positive": ["great", "good"], "negative": ["bad"], "neutral": ["okay"]}


@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    df = load_sample("Product reviews").df
    return pd.concat([g.head(4) for _, g in df.groupby("sentiment")]).reset_index(drop=True)


def sentiment_template(**kw) -> PromptTemplate:
    return PromptTemplate("sent", "Review: {{ text }}\nProduct: {{ product }}\nSentiment (great, bad or okay)?",
                          dict(VERB), **kw)


# --------------------------------------------------------------------------------------------- rendering
def test_render_columns_row_and_examples():
    ctx = row_context({"text": "ignored", "product": "chair", "my col": 3}, "Nice chair")
    out = render("{{ text }} | {{ product }} | {{ row['my col'] }} | {{ label_list }} | {{ answers }}"
                 "{% for ex in examples %} [{{ ex.text }}->{{ ex.answer }}]{% endfor %}", ctx, VERB,
                 examples=[{"text": "Loved it", "label": "positive", "answer": "great"}])
    assert out == "Nice chair | chair | 3 | positive, negative, neutral | great, bad, okay [Loved it->great]"


@pytest.mark.parametrize("source", ["{{ text.__class__ }}", "{{ text.__class__.__mro__[1].__subclasses__() }}",
                                    "{{ row.items() }}", "{{ text.upper() }}", "{{ cycler.__init__ }}",
                                    "{{ ''.__class__ }}", "{% for x in range(3) %}{% endfor %}"])
def test_sandbox_blocks_attribute_access(source):
    with pytest.raises(TemplateError) as err:
        render(source, row_context({}, "hello"), VERB)
    assert "class" not in str(err.value).lower() or "not allowed" in str(err.value)
    assert "<class" not in str(err.value)


def test_check_template_messages():
    with pytest.raises(TemplateError, match=r"Unknown placeholder\(s\) \{\{ colour \}\}, \{\{ foo \}\}"):
        check_template("{{ text }} {{ foo }} {{ colour }}", ["text", "product"])
    with pytest.raises(TemplateError, match="no text placeholder"):
        check_template("Is this positive?", ["text"])
    with pytest.raises(TemplateError, match="syntax error on line 1"):
        check_template("{{ text ", ["text"])
    with pytest.raises(TemplateError, match="MASK"):
        check_template("{{ text }}", ["text"], mode="cloze")
    assert check_template("{{ text }} {{ product }}", ["text", "product"]) == {"text", "product"}


def test_yaml_format_and_bad_verbalizer():
    tpl = sentiment_template(few_shot=2, description="d")
    back = load_template_text(tpl.to_yaml())
    assert back == tpl
    with pytest.raises(TemplateError, match="no answer words"):
        load_template_text("name: a\ntemplate: '{{ text }}'\nverbalizer: {pos: [good], neg: []}")
    with pytest.raises(TemplateError, match="used by both"):
        load_template_text("name: a\ntemplate: '{{ text }}'\nverbalizer: {pos: [good], neg: [good]}")
    with pytest.raises(TemplateError, match="required field"):
        load_template_text("name: a\nverbalizer: {pos: [good], neg: [bad]}")
    names = {t.name for t in shipped_templates()}
    assert {"News topic", "Review sentiment", "Banking intent"} <= names


def test_library_save_load_rename_delete():
    from llm_backend.core.config import get_settings

    folder = get_settings().data_dir / "lib"  # inside the allowed roots (the per-test data folder)
    lib = TemplateLibrary.at(folder)
    lib.save(sentiment_template())
    assert lib.names() == ["sent"]
    assert lib.load("sent").verbalizer == VERB
    lib.rename("sent", "Sentiment v2")
    assert lib.names() == ["Sentiment v2"] and len(list(folder.glob("*.yaml"))) == 1
    with pytest.raises(TemplateError, match="already exists"):
        lib.save(PromptTemplate("Sentiment v2", "{{ text }}", dict(VERB)), overwrite=False)
    lib.delete("Sentiment v2")
    assert lib.names() == []
    with pytest.raises(TemplateError):
        lib.load("sent")
    with pytest.raises(PathError, match="outside"):
        TemplateLibrary.at("/etc/zss-templates")


# ---------------------------------------------------------------------------------------------- few-shot
def test_few_shot_excludes_self_and_is_seeded():
    texts = [f"text {i}" for i in range(12)] + ["text 0"]  # row 12 duplicates row 0's text
    gold = ["a", "b", "c"] * 4 + ["a"]
    targets = list(range(13))
    one = select_examples(targets, texts, gold, ["a", "b", "c"], 2, seed=3)
    two = select_examples(targets, texts, gold, ["a", "b", "c"], 2, seed=3)
    other = select_examples(targets, texts, gold, ["a", "b", "c"], 2, seed=4)
    assert one.indices == two.indices and one.indices != other.indices
    for t, ex in zip(targets, one.indices):
        assert t not in ex and all(texts[e] != texts[t] for e in ex)
        assert sorted(gold[e] for e in ex) == ["a", "a", "b", "b", "c", "c"]
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(13, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    near = select_examples(targets, texts, gold, ["a", "b", "c"], 1, method="nearest", embeddings=emb)
    for t, ex in zip(targets, near.indices):
        assert t not in ex and len(ex) == 3
        sims = [float(emb[e] @ emb[t]) for e in ex]
        assert sims == sorted(sims)  # most similar last, next to the question
        for e in ex:  # each is the closest of its label
            same = [i for i in range(13) if gold[i] == gold[e] and i != t and texts[i] != texts[t]]
            assert emb[e] @ emb[t] == pytest.approx(max(emb[i] @ emb[t] for i in same))


def test_map_generated_text_to_label():
    assert map_to_label("It is great, not bad.", VERB) == "positive"
    assert map_to_label("Bad. Though some parts are good", VERB) == "negative"
    assert map_to_label("Goodness knows", VERB) == UNMAPPED


# ------------------------------------------------------------------------------------------ real models
def test_score_mode_on_smollm2(causal_lm, reviews):
    run = TemplateRun(sentiment_template(), reviews, "text", "sentiment", RunConfig(calibration="contextual"),
                      lm=causal_lm, rows=[0, 4, 8])
    assert run.chat  # SmolLM2 is an instruct model: the chat template wraps the prompt
    res = run.run_all(chunk=2)
    assert res.scores.shape == (3, 3) and np.isfinite(res.scores).all()
    assert set(res.pred) <= set(VERB) and res.metrics["n"] == 3
    assert any("Contextual calibration" in n for n in res.notes)
    assert res.prompts[0].startswith("<|im_start|>") and reviews.loc[0, "text"] in res.prompts[0]
    assert res.frame().shape[0] == 3


def test_few_shot_prompt_never_contains_its_own_row(causal_lm, reviews):
    run = TemplateRun(sentiment_template(few_shot=1), reviews, "text", "sentiment", RunConfig(use_chat=False),
                      lm=causal_lm)
    for pos in range(len(reviews)):
        prompt = run.prompt_for(pos)
        own = reviews.loc[pos, "text"]
        assert prompt.count(own[:60]) == 1  # only as the question, never as an example
        assert prompt.count("Sentiment (great, bad or okay)?") == 4  # 3 examples + the question


def test_bad_inputs_raise_clear_errors(causal_lm, reviews):
    with pytest.raises(TemplateError, match="missing label"):
        TemplateRun(PromptTemplate("t", "{{ text }}", {"positive": ["great"], "negative": ["bad"]}), reviews, "text",
                    "sentiment", lm=causal_lm)
    with pytest.raises(TemplateError, match="Unknown placeholder"):
        TemplateRun(PromptTemplate("t", "{{ text }} {{ nope }}", dict(VERB)), reviews, "text", lm=causal_lm)
    with pytest.raises(UserError, match="gold column"):
        TemplateRun(sentiment_template(few_shot=1), reviews, "text", None, lm=causal_lm)


def test_long_text_is_truncated_and_said(causal_lm):
    df = pd.DataFrame({"text": ["word " * 4000, "short"], "product": ["x", "y"], "sentiment": ["positive", "negative"]})
    res = TemplateRun(sentiment_template(), df, "text", "sentiment", lm=causal_lm).run_all()
    assert any("cut to fit" in n for n in res.notes)
    assert len(res.prompts[0]) < 5000 and "Sentiment (great, bad or okay)?" in res.prompts[0]


def test_cloze_plumbing_with_bundled_masked_lm(registry, reviews):
    from llm_backend.models.loading import get_model

    mlm = get_model(registry.default("masked_lm"))
    tpl = PromptTemplate("cloze", "{{ text }} It was [MASK].", dict(VERB))
    res = TemplateRun(tpl, reviews, "text", "sentiment", RunConfig(mode="cloze"), masked_lm=mlm, rows=[0, 1]).run_all()
    assert res.scores.shape == (2, 3) and np.isfinite(res.scores).all()
    assert mlm.tokenizer.mask_token in res.prompts[0]


def test_generate_maps_or_counts_unmapped(causal_lm, reviews):
    res = TemplateRun(sentiment_template(), reviews, "text", "sentiment",
                      RunConfig(mode="generate", max_new_tokens=5), lm=causal_lm, rows=[0, 4]).run_all()
    assert len(res.generated) == 2 and all(len(causal_lm.tokenizer(g)["input_ids"]) <= 6 for g in res.generated)
    assert res.pred == [map_to_label(g, VERB) for g in res.generated]
    assert res.n_unmapped == sum(p == UNMAPPED for p in res.pred)
    both = compare([res, res])
    assert both["agreement"].iloc[0, 1] == 1.0 and both["disagreements"].empty


def test_cli_end_to_end(tmp_path, reviews):
    data = tmp_path / "ten.csv"
    load_sample("Product reviews").df.head(10).to_csv(data, index=False)
    tpl = tmp_path / "t.yaml"
    tpl.write_text(sentiment_template().to_yaml())
    out, mj = tmp_path / "out.csv", tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "llm_backend", "prompt", "--data", str(data), "--template-file",
                           str(tpl), "--text-column", "text", "--gold-column", "sentiment", "--few-shot", "1",
                           "--seed", "1", "--limit", "4", "--out", str(out), "--metrics-json", str(mj)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    df = pd.read_csv(out)
    assert len(df) == 4 and {"text", "gold", "pred", "p[positive]"} <= set(df.columns)
    m = json.loads(mj.read_text())
    assert m["rows"] == 4 and 0 <= m["accuracy"] <= 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\ntemplate: '{{ txt }}'\nverbalizer: {positive: [good], negative: [bad]}")
    proc = subprocess.run([sys.executable, "-m", "llm_backend", "prompt", "--data", str(data), "--template-file",
                           str(bad), "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Unknown placeholder" in proc.stderr


def intent_template_repeated_per_example() -> PromptTemplate:
    """The shipped intent template without its own examples loop: each few-shot example then repeats the whole
    template, 77-intent list included (how the intent template was before it placed its examples itself)."""
    tpl = next(t for t in shipped_templates() if t.name == "Banking intent")
    return PromptTemplate("intent, examples repeated", tpl.template.split("{% endif %}", 1)[1], tpl.verbalizer)


def test_too_many_examples_are_dropped_to_fit_the_context(causal_lm, banking77):
    """77 labels x 1 example of an intent template that repeats itself per example would exceed SmolLM2's 8k
    context: examples are dropped, and the run suggests placing the examples in the template."""
    from tests.conftest import stratified

    df = stratified(banking77, 2, seed=0)
    run = TemplateRun(intent_template_repeated_per_example(), df, "text", "label",
                      RunConfig(few_shot=1, max_examples=32), lm=causal_lm, rows=[0])
    prompt = run.prompt_for(0)
    assert run.count_tokens(prompt) <= run.budget
    assert 0 < len(run.examples[0]) < 32 and run.dropped_examples == 1
    assert df.loc[0, "text"] in prompt
    assert any("repeats the whole template" in n and "{{ examples_block }}" in n for n in run.notes)


def test_shipped_intent_template_lists_the_intents_once_with_examples(causal_lm, banking77):
    """With k=1 the shipped intent template lists the 77 intents once and shows each example as a short
    message/intent pair: all 32 capped examples fit (none dropped), the prompt is a fraction of the repeated
    form's, and zero-shot renders exactly what the template rendered before it placed examples."""
    from tests.conftest import stratified

    df = stratified(banking77, 2, seed=0)
    tpl = next(t for t in shipped_templates() if t.name == "Banking intent")
    intent_list = render("{{ answers }}", row_context({}, ""), tpl.verbalizer)
    run = TemplateRun(tpl, df, "text", "label", RunConfig(few_shot=1, max_examples=32), lm=causal_lm, rows=[0])
    prompt = run.prompt_for(0)
    assert prompt.count(intent_list) == 1 and prompt.count("Which of these intents") == 1
    assert len(run.examples[0]) == 32 and run.dropped_examples == 0
    assert any("exceed the cap of 32" in n for n in run.notes)  # 77 labels x 1 example > 32: the cap says so
    for e in run.examples[0]:
        ex = run._example_dict(e)
        assert f"Message: {ex['text']}\nIntent: {ex['answer']}" in prompt
    assert prompt.index("Intent: ") < prompt.index(df.loc[0, "text"])  # examples before the message
    assert not any("repeats the whole template" in n for n in run.notes)
    repeated = TemplateRun(intent_template_repeated_per_example(), df, "text", "label",
                           RunConfig(few_shot=1, max_examples=32), lm=causal_lm, rows=[0])
    assert 3 * run.count_tokens(prompt) < repeated.count_tokens(repeated.prompt_for(0))
    zero = TemplateRun(tpl, df, "text", "label", RunConfig(few_shot=0), lm=causal_lm, rows=[0]).prompt_for(0)
    zero_repeated = TemplateRun(intent_template_repeated_per_example(), df, "text", "label", RunConfig(few_shot=0),
                                lm=causal_lm, rows=[0]).prompt_for(0)
    assert zero == zero_repeated and "Example" not in zero


def test_intent_template_few_shot_run_on_real_rows(causal_lm, banking77):
    """A k=1 run of the shipped intent template on a few real Banking77 rows: every row shares the demonstrations
    (one prefix), gets a finite score per intent and a prediction, and no example is the row itself."""
    from tests.conftest import stratified

    df = stratified(banking77, 2, seed=1)
    tpl = next(t for t in shipped_templates() if t.name == "Banking intent")
    run = TemplateRun(tpl, df, "text", "label", RunConfig(few_shot=1, calibration="none", max_examples=8),
                      lm=causal_lm, rows=[0, 2])  # two intents (the slice has 2 rows per intent)
    res = run.run_all()
    assert res.complete and res.scores.shape == (2, 77) and np.isfinite(res.scores).all()
    assert set(res.pred) <= set(tpl.labels) and res.metrics["n"] == 2
    assert all(len(e) == 8 and p not in e for p, e in zip(res.rows, res.examples))
    assert res.examples[0] == res.examples[1] and len(run.prefix_store._items) == 1  # one shared prefix
    assert max(run.count_tokens(p) for p in res.prompts) < 1000  # 8 examples, each a short pair


def test_word_aggregation_default_and_both_ways_from_one_pass(causal_lm, reviews):
    """A label with several answer words scores as its best word (max) or their mean, from the same per-word
    log-likelihoods; the default is the one docs/prompt-templates.md names, and a bad name is refused."""
    from llm_backend.prompts.runner import AGGREGATES, DEFAULT_AGGREGATE, aggregate_words

    assert RunConfig().aggregate == DEFAULT_AGGREGATE in AGGREGATES
    doc = (ROOT / "docs" / "prompt-templates.md").read_text()
    assert f"default word aggregation: `{DEFAULT_AGGREGATE}`" in doc
    by = {}
    for how in AGGREGATES:
        run = TemplateRun(sentiment_template(), reviews, "text", "sentiment",
                          RunConfig(calibration="none", aggregate=how), lm=causal_lm, rows=[0, 4, 8])
        res = run.run_all()
        assert run.answer_words() == [(lab, w) for lab, ws in VERB.items() for w in ws]
        assert run.word_scores.shape == (3, 4) and np.isfinite(run.word_scores).all()
        by[how] = (res.scores, run.word_scores)
    np.testing.assert_allclose(by["max"][1], by["mean"][1], atol=1e-4)  # the same words, the same log-liks
    words = by["max"][1]
    # positive has two words (great, good): max and mean differ there; one-word labels are the word's score
    np.testing.assert_allclose(by["max"][0][:, 0], words[:, :2].max(axis=1), atol=1e-6)
    np.testing.assert_allclose(by["mean"][0][:, 0], words[:, :2].mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(by["max"][0][:, 1:], by["mean"][0][:, 1:], atol=1e-4)
    assert (by["max"][0][:, 0] > by["mean"][0][:, 0]).all()  # the two words never score exactly alike
    np.testing.assert_allclose(aggregate_words(words, np.array([0, 0, 1, 2]), 3, "mean"), by["mean"][0], atol=1e-6)
    with pytest.raises(UserError, match="Unknown word aggregation 'median'"):
        TemplateRun(sentiment_template(), reviews, "text", "sentiment", RunConfig(aggregate="median"),
                    lm=causal_lm, rows=[0])
