"""Shared-prefix KV cache, batching and bad-input handling of the causal-LM prompt path, on real SmolLM2 and rows.

The fast path (shared prefix run once, left-padded batches, last-position logits only) must give the same label
log-likelihoods as the plain reference (one full forward per prompt and label) and the same argmax.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from llm_backend.core.errors import TemplateError
from llm_backend.prompts.generation import (
    UNMAPPED,
    asks_for_one_word,
    generate_texts,
    map_to_label,
)
from llm_backend.prompts.lm_scoring import (
    PrefixStore,
    continuation_logprobs,
    continuation_logprobs_naive,
    tree_scoring_supported,
    visible_prefix_len,
)
from llm_backend.models.loading import LoadedModel
from llm_backend.prompts.runner import RunConfig, TemplateRun, verbalizer_notes
from llm_backend.prompts.templates import PromptTemplate, shipped_templates
from tests.conftest import stratified


@pytest.fixture(scope="module")
def news(ag_news) -> pd.DataFrame:
    return stratified(ag_news, 3, seed=1)  # 12 real rows, 3 per topic


def topic_template() -> PromptTemplate:
    return next(t for t in shipped_templates() if t.name == "News topic")


def test_few_shot_prefix_cache_matches_plain_path(causal_lm, news):
    """k=1 with shared demonstrations: 4 rows in chunks of 2, the demonstrations' prefix is computed once, and the
    label scores equal the plain batched path's (every prompt in full; itself checked against one forward per
    (prompt, answer) in test_lm_scoring.py)."""
    cfg = dict(few_shot=1, calibration="none", seed=3)
    probe = TemplateRun(topic_template(), news, "text", "label", RunConfig(**cfg), lm=causal_lm)
    shared = max(map(tuple, probe.examples), key=lambda e: probe.examples.count(list(e)))
    rows = [r for r, ex in zip(probe.rows, probe.examples) if tuple(ex) == shared][:4]  # not demonstrations
    assert len(rows) == 4
    run = TemplateRun(topic_template(), news, "text", "label", RunConfig(**cfg), lm=causal_lm, rows=rows)
    res = run.run_all(chunk=2)
    assert run.prefix_store.computed == 1  # one prefix pass for both chunks
    (key, _), = run.prefix_store._items.items()
    assert len(key) > 200  # chat header + instruction + 4 demonstrations, not just a few tokens
    plain = TemplateRun(topic_template(), news, "text", "label", RunConfig(**cfg, share_prefix=False), lm=causal_lm,
                        rows=rows).run_all(chunk=4)
    assert plain.prompts == res.prompts
    assert np.abs(res.scores - plain.scores).max() < 1e-3
    assert (res.scores.argmax(1) == plain.scores.argmax(1)).all()


def test_groups_hints_and_store_across_calls(causal_lm, news):
    """Two groups with different prefixes in one call, then the store reused by a later call."""
    head_a = "You sort news by topic. Example: 'Stocks fell sharply.' is Business.\n\nArticle: "
    head_b = "Label the topic of the headline below (World, Sports, Business or Sci/Tech).\n\nHeadline: "
    texts = news["text"].tolist()[:4]
    prompts = [head_a + t + "\nTopic:" for t in texts] + [head_b + t + "\nTopic:" for t in texts]
    cands = [" World", " Sports", " Business", " Science and technology"]
    store = PrefixStore()
    groups = ["a"] * 4 + ["b"] * 4
    fast = continuation_logprobs(causal_lm, prompts, cands, groups=groups, prefix_hints={"a": head_a, "b": head_b},
                                 prefix_store=store, token_budget=300)  # small batches: several per group
    ref = continuation_logprobs_naive(causal_lm, prompts, cands)
    assert np.abs(fast - ref).max() < 1e-3 and (fast.argmax(1) == ref.argmax(1)).all()
    assert store.computed == 2
    again = continuation_logprobs(causal_lm, prompts[:2], cands, prefix_store=store)
    assert store.computed == 2  # found in the store, not run again
    assert np.abs(again - ref[:2]).max() < 1e-3


def test_row_departing_from_the_shared_prefix_reads_only_its_own_start(causal_lm, news):
    """A row whose demonstration slot differs from the shared prompt's (it is itself that demonstration and got a
    substitute) reuses the shared prefix's keys up to where it departs and recomputes the rest: its scores equal a
    plain full forward of its own prompt, and noise written into the shared keys after that point (the shared
    prompt's demonstration of the row itself, and everything computed after it) changes nothing for it."""
    head = "You sort news by topic: World, Sports, Business or Sci/Tech.\n\n"
    demo_a = "Article: Stocks fell sharply after the bank raised rates.\nTopic: Business\n\n"
    own = "Article: " + news["text"][5] + "\nTopic: " + news["label"][5] + "\n\n"
    substitute = "Article: A new chip doubles the battery life of phones.\nTopic: Sci/Tech\n\n"
    shared = head + demo_a + own
    texts = news["text"].tolist()
    prompts = [shared + f"Article: {texts[i]}\nTopic:" for i in (0, 4, 8)]
    prompts.append(head + demo_a + substitute + f"Article: {texts[5]}\nTopic:")  # row 5 never sees ``own``
    cands = [" World", " Sports", " Business", " Science and technology"]
    store = PrefixStore()
    kw = dict(groups=["g"] * 4, prefix_hints={"g": shared + "Article: "}, prefix_store=store)
    fast = continuation_logprobs(causal_lm, prompts, cands, **kw)
    ref = continuation_logprobs_naive(causal_lm, prompts, cands)
    assert np.abs(fast - ref).max() < 1e-3 and (fast.argmax(1) == ref.argmax(1)).all()
    assert store.computed == 1  # the departing row did not cost a prefix of its own
    (key, cache), = store._items.items()
    tok = causal_lm.tokenizer
    row_ids = tok(prompts[3].rstrip(" "), add_special_tokens=False)["input_ids"]
    seen = visible_prefix_len(key, row_ids)
    own_start = len(tok(head + demo_a, add_special_tokens=False)["input_ids"]) - 1
    own_text = len(tok(head + demo_a + "Article:", add_special_tokens=False)["input_ids"]) + 1
    assert own_start <= seen <= own_text < len(key)  # reads up to its own example's slot ("Article: "), not into it
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for layer in cache.layers:
            layer.keys[:, :, seen:] = 10 * torch.randn(layer.keys[:, :, seen:].shape, generator=gen)
            layer.values[:, :, seen:] = 10 * torch.randn(layer.values[:, :, seen:].shape, generator=gen)
    again = continuation_logprobs(causal_lm, prompts, cands, **kw)
    assert store.computed == 1
    assert np.abs(again[3] - ref[3]).max() < 1e-3  # the departing row never read those keys
    assert np.abs(again[:3] - ref[:3]).max() > 1e-2  # the others did (the poison is real)


class _NoTree:
    """The real model without its config: the scorer cannot use the tree path's 4-D mask (like Gemma 3)."""

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self, **kwargs):
        return self.model(**kwargs)


@pytest.mark.parametrize("tree", [True, False], ids=["answer-tree", "continuation"])
def test_rows_that_are_demonstrations_share_the_prefix_and_match_plain_path(causal_lm, news, tree):
    """The normal page case: demonstrations are drawn from the labelled rows being scored. A row that is one of
    them gets the next example of its label in the same slot (never itself), joins the shared group, and its
    scores equal the plain path's (every prompt in full); the shared prefix is computed once for the whole run."""
    cfg = dict(few_shot=1, calibration="none", seed=3)
    if not tree:
        causal_lm = LoadedModel(causal_lm.spec, _NoTree(causal_lm.model), causal_lm.tokenizer, causal_lm.device)
    run = TemplateRun(topic_template(), news, "text", "label", RunConfig(**cfg), lm=causal_lm)
    main = max(map(tuple, run.examples), key=lambda e: run.examples.count(list(e)))
    demo_rows = [r for r in run.rows if r in main]
    assert len(demo_rows) == 4 and len(main) == 4
    for r in demo_rows:
        ex = run.examples[r]
        assert r not in ex and len(ex) == 4
        differ = [s for s in range(4) if ex[s] != main[s]]
        assert differ == [main.index(r)]  # the substitute takes the row's own slot; the others stay in place
        assert news["label"][ex[differ[0]]] == news["label"][r]
    rows = demo_rows + [r for r in run.rows if r not in main][:2]  # 4 demonstrations and 2 rows that are not
    run = TemplateRun(topic_template(), news, "text", "label", RunConfig(**cfg), lm=causal_lm, rows=rows)
    res = run.run_all(chunk=3)
    # with the tree path one prefix pass for the whole run; without it the demonstration rows of each chunk share
    # a shorter prefix of their own
    assert run.prefix_store.computed == 1 if tree else run.prefix_store.computed <= 3
    # the rows that are not demonstrations read the main prefix in full (instruction + all demonstrations), not
    # the shorter one the departing rows shared: without a per-row mask that shorter prefix would cost every row
    # the recomputation of most demonstrations
    full = len(causal_lm.tokenizer(run.shared_start(4), add_special_tokens=False)["input_ids"])
    assert max(len(key) for key in run.prefix_store._items) >= full - 2
    for pos, r in enumerate(rows[:4]):
        assert res.prompts[pos].count(news["text"][r][:60]) == 1  # its text appears once: as the question only
    plain = TemplateRun(topic_template(), news, "text", "label", RunConfig(**cfg, share_prefix=False),
                        lm=causal_lm, rows=rows).run_all(chunk=6)
    assert plain.prompts == res.prompts
    assert np.abs(res.scores - plain.scores).max() < 1e-3
    assert (res.scores.argmax(1) == plain.scores.argmax(1)).all()


class _OomOnce:
    """The real model, except that its first batched call raises the GPU's out-of-memory error.

    With ``config`` the scorer sees the model's config and takes the default one-pass answer-tree path; without it
    (like a model whose attention kernel takes no custom mask) it takes the continuation path."""

    def __init__(self, model, config: bool = True) -> None:
        self.model, self.raised = model, 0
        if config:
            self.config = model.config

    def __call__(self, **kwargs):
        if kwargs["input_ids"].shape[0] > 1 and not self.raised:
            self.raised += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.model(**kwargs)


@pytest.mark.parametrize("tree", [True, False], ids=["answer-tree", "continuation"])
def test_oom_mid_run_halves_the_batch_and_goes_on(causal_lm, news, tree):
    flaky = LoadedModel(causal_lm.spec, _OomOnce(causal_lm.model, config=tree), causal_lm.tokenizer,
                        causal_lm.device)
    assert tree_scoring_supported(flaky.model) is tree
    prompts = [f"Article: {t}\nTopic:" for t in news["text"].tolist()[:4]]
    cands = [" World", " Sports", " Science and technology"]  # one of several tokens: continuation/tree tokens too
    notes: list[str] = []
    out = continuation_logprobs(flaky, prompts, cands, notes=notes)
    assert flaky.model.raised == 1
    assert any("ran out of memory" in n and "halved" in n for n in notes)
    ref = continuation_logprobs_naive(causal_lm, prompts, cands)
    assert np.abs(out - ref).max() < 1e-3 and (out.argmax(1) == ref.argmax(1)).all()


def test_fixed_part_longer_than_context_is_refused(causal_lm, news):
    # the template source stays under the 20,000-character limit; its rendered fixed part is ~60,000 characters
    huge = PromptTemplate("huge", "Background: {{ 'lorem ipsum ' * 5000 }}\n{{ text }}\nTopic?",
                          {"World": ["world"], "Sports": ["sports"], "Business": ["business"],
                           "Sci/Tech": ["technology"]})
    with pytest.raises(TemplateError, match="without its text is already"):
        TemplateRun(huge, news, "text", "label", lm=causal_lm, rows=[0])


def test_demonstrations_that_do_not_fit_drop_the_longest_and_say_which(causal_lm, banking77):
    """77 labels x 1 example of an intent template that repeats itself per example would exceed SmolLM2's 8k
    context: the longest are dropped, the same ones for every row (so the rows keep sharing their prefix), and the
    note names them."""
    from tests.prompts.test_prompting import intent_template_repeated_per_example

    df = stratified(banking77, 2, seed=0)
    tpl = intent_template_repeated_per_example()
    run = TemplateRun(tpl, df, "text", "label", RunConfig(few_shot=1, max_examples=32), lm=causal_lm, rows=[0, 1])
    p0, p1 = run.prompt_for(0), run.prompt_for(1)
    assert run.count_tokens(p0) <= run.budget and run.count_tokens(p1) <= run.budget
    assert 0 < len(run.examples[0]) < 32 and run.dropped_examples == 2
    size = {e: run.count_tokens(run.all_texts[e]) for e in set(run.dropped_described) | set(run.examples[0])}
    dropped = list(run.dropped_described)
    assert min(size[e] for e in dropped) >= max(size[e] for e in run.examples[0]) - 2  # the longest went first
    note = next(n for n in run.result().notes if "dropped the longest" in n)
    assert f"row {dropped[0]}" in note


def test_verbalizer_split_warning_and_one_word_detection(causal_lm):
    notes = verbalizer_notes(causal_lm.tokenizer, {"a": ["good"], "b": ["antidisestablishmentarianism"]})
    assert len(notes) == 1 and "antidisestablishmentarianism" in notes[0] and "mean log-probability" in notes[0]
    assert verbalizer_notes(causal_lm.tokenizer, {"a": ["good"], "b": ["bad"]}) == []
    assert asks_for_one_word("Answer with one word.") and asks_for_one_word("Answer with the intent only.")
    assert not asks_for_one_word("Explain your reasoning.")


def test_generation_shares_the_prefix_and_stops_at_a_label_word(causal_lm, news):
    head = "Which topic is this news about: World, Sports, Business or Technology? Answer with one word.\n\n"
    prompts = [head + t for t in news["text"].tolist()[:3]]
    plain = generate_texts(causal_lm, prompts, max_new_tokens=6, share_prefix=False, stop_at_newline=False)
    store = PrefixStore()
    shared = generate_texts(causal_lm, prompts, max_new_tokens=6, prefix_store=store, stop_at_newline=False)
    assert store.computed == 1 and shared == plain
    verb = {"World": ["world"], "Sports": ["sports"], "Business": ["business"], "Sci/Tech": ["technology"]}
    stopped = generate_texts(causal_lm, prompts, max_new_tokens=24, stop_words=verb)
    for s in stopped:
        assert "\n" not in s
        if map_to_label(s, verb) != UNMAPPED:  # generation ended right after the label word
            assert re.search(r"(world|sports|business|technology)\W*$", s.lower()), s


def test_calibration_defaults_and_pmi(causal_lm, news):
    tpl = topic_template()
    few = TemplateRun(tpl, news, "text", "label", lm=causal_lm, rows=[0, 3, 6]).run_all()
    assert any("contextual calibration instead" in n for n in few.notes)  # 3 rows: too few to centre
    run = TemplateRun(tpl, news, "text", "label", RunConfig(calibration="pmi"), lm=causal_lm,
                      rows=list(range(12)))
    res = run.run_all()
    assert any("Domain-conditional PMI" in n for n in res.notes)
    assert np.allclose(res.scores, run.scores - run._domain_offsets())
    assert not np.allclose(run._domain_offsets(), run._content_free_offsets())
    centred = TemplateRun(tpl, news, "text", "label", lm=causal_lm, rows=list(range(12)))
    centred.scores, centred.done = run.scores.copy(), 12  # same raw scores, default calibration
    assert np.allclose(centred.result().scores, run.scores - run.scores.mean(axis=0))


@pytest.mark.slow
def test_gemma_batches_past_its_sliding_window_match_one_prompt_at_a_time(registry, ag_news):
    """Gemma 3 (sliding-window layers, window 512) takes the continuation path; a left-padded batch after a shared
    prefix, with prompts past the window, gives the scores of each prompt run alone (no padding, no prefix)."""
    from llm_backend.models.loading import get_model

    lm = get_model(registry.get("Gemma-3-270M"))
    assert not tree_scoring_supported(lm.model)
    window = lm.model.config.sliding_window
    df = ag_news.sample(12, random_state=3)
    texts, labels = df["text"].tolist(), df["label"].tolist()
    head = "Sort news by topic.\n\n" + "".join(f"Article: {t}\nTopic: {g}\n\n" for t, g in zip(texts[:8], labels))
    rows = [texts[8], texts[9] + " " + texts[10], texts[11][:40]]
    prompts = [head + f"Article: {t}\nTopic:" for t in rows]
    lengths = [len(lm.tokenizer(p)["input_ids"]) for p in prompts]
    assert max(lengths) > window + 16 and max(lengths) - min(lengths) > 32  # past the window, with padding
    cands = [" World", " Sports", " Business and money"]  # the last one continues from the row's cache
    fast = continuation_logprobs(lm, prompts, cands, groups=[0] * 3, prefix_hints={0: head + "Article: "})
    alone = np.vstack([continuation_logprobs(lm, [p], cands, share_prefix=False) for p in prompts])
    assert np.abs(fast - alone).max() < 1e-3 and (fast.argmax(1) == alone.argmax(1)).all()


def test_merged_prefix_attention_equals_concatenated_prefix_and_copies_no_prefix(causal_lm, news, monkeypatch):
    """The few-shot scoring pass reads the shared prefix once per layer and merges it with each row's own
    attention (prefix_attention). On a shared prefix with one row that departs from it early (it reads only the
    start of the prefix, as a row that is itself a demonstration does), the scores equal the old path's (prefix keys
    concatenated to every row; that path is checked against one forward per answer above); every attention call of those passes took the merge, and
    the keys handed to attention were the rows' own only (no (rows, kv heads, prefix + own, D) tensor)."""
    from llm_backend.prompts import lm_scoring, prefix_attention

    head = "You sort news by topic: World, Sports, Business or Sci/Tech.\n\n"
    demos = "".join(f"Article: {news['text'][i]}\nTopic: {news['label'][i]}\n\n" for i in (1, 5, 9))
    substitute = "Article: A new chip doubles the battery life of phones.\nTopic: Sci/Tech\n\n"
    texts = news["text"].tolist()
    prompts = [head + demos + f"Article: {texts[i]}\nTopic:" for i in (0, 4, 8)]
    prompts.append(head + substitute + f"Article: {texts[5]}\nTopic:")  # departs right after the instruction
    cands = [" World", " Sports", " Business", " Science and technology"]
    kw = dict(groups=["g"] * 4, prefix_hints={"g": head + demos + "Article: "})
    calls: list[tuple[tuple[int, ...], int, object]] = []
    real = prefix_attention.prefix_merge_attention

    def spy(module, query, key, value, attention_mask, **kwargs):
        shared = kwargs.get(prefix_attention.KWARG)
        calls.append((tuple(key.shape), shared.length if shared is not None else -1, shared))
        return real(module, query, key, value, attention_mask, **kwargs)

    monkeypatch.setattr(prefix_attention, "prefix_merge_attention", spy)
    merged = continuation_logprobs(causal_lm, prompts, cands, **kw)
    layers = causal_lm.model.config.num_hidden_layers
    assert calls and len(calls) % layers == 0  # every layer of every scoring pass went through the merge
    shared_objs = {id(s): s for _, _, s in calls}.values()
    assert all(s is not None and s.concatenated == 0 for s in shared_objs)
    assert sum(s.merged for s in shared_objs) == len(calls)
    assert any(s.seen is not None and min(s.seen) < s.length for s in shared_objs)  # the departing row's mask
    p = calls[0][1]
    assert p > 150 and all(shape[2] < p for shape, _, _ in calls)  # own keys only: the prefix was never copied
    assert causal_lm.model.config._attn_implementation == "sdpa"  # switched back after the pass
    monkeypatch.setattr(lm_scoring, "MERGE_PREFIX", False)
    calls.clear()
    concatenated = continuation_logprobs(causal_lm, prompts, cands, **kw)
    assert not calls  # the old path does not touch the merged attention
    assert np.abs(merged - concatenated).max() < 1e-4 and (merged.argmax(1) == concatenated.argmax(1)).all()
