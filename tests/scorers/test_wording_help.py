"""Label wording help (suggestions, what is proposed, the effect of accepting) and LM-written label sentences:
real MiniLM and SmolLM2, real AG News / ECDT rows."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llm_backend.data.labels import Label, make_labels
from llm_backend.scorers.label_descriptions import lm_descriptions
from llm_backend.scorers.self_training import SelfTrainingScorer
from llm_backend.scorers.wording_help import own_rows_margin, partition_signals, wording_help
from llm_backend.scorers.zero_shot import run_scorer
from tests.conftest import SHARED_DATA, stratified


def test_own_rows_margin_prefers_the_own_centroid():
    cents = np.eye(3)
    vecs = np.array([[1.0, 0.2, 0.0], [0.0, 0.3, 0.9], [0.0, 0.0, 1.0]])
    m = own_rows_margin(vecs, cents)
    assert m[0] == pytest.approx(0.8) and m[1] == pytest.approx(-0.6) and m[2] == pytest.approx(1.0)


def test_proposal_keeps_names_and_reports_its_effect(embedder, ag_news):
    df = stratified(ag_news, 20, seed=3)
    texts, gold = df["text"].tolist(), df["label"].tolist()
    labels = make_labels(["World", "Sports", "Business", "Sci/Tech"])
    scorer = SelfTrainingScorer(embedder)
    h = wording_help(scorer, texts, labels, gold=gold)
    assert [c.name for c in h.checks] == [l.name for l in labels]
    assert all(c.phrases and c.proposal == ", ".join(c.phrases) for c in h.checks)  # short names: words offered
    assert [l.name for l in h.candidate] == [l.name for l in labels]  # names are never replaced
    # a name spelled out reads as its expansion; the words follow it
    assert [l.phrase for l in h.candidate] == [c.phrase or l.phrase for l, c in zip(labels, h.checks)]
    assert [l.description for l in h.candidate] == [f"{l.phrase}: {c.proposal}" for l, c in zip(h.candidate, h.checks)]
    # The effect is what the run's method does on these rows with the names and with the candidate.
    before = run_scorer(scorer, texts, labels)
    after = run_scorer(scorer, texts, h.candidate)
    assert h.changed_rows == sum(a != b for a, b in zip(before.pred, after.pred))
    assert h.macro_f1_before == pytest.approx(before.evaluate(gold)["macro_f1"])
    assert h.macro_f1_after == pytest.approx(after.evaluate(gold)["macro_f1"])
    assert len(h.changed_examples) == min(h.changed_rows, 20)
    # The label-free check: both the silhouette of the predicted classes and the mean top probability must rise.
    x = scorer.text_embeddings(texts)
    assert h.signals_names == pytest.approx(partition_signals(x, before.pred, before.probs))
    assert h.signals_candidate == pytest.approx(partition_signals(x, after.pred, after.probs))
    rises = all(a > b for a, b in zip(h.signals_candidate, h.signals_names))
    assert h.recommended == rises
    assert h.proposed == (h.candidate if rises else list(labels))
    json.dumps(h.as_dict())  # what suggest-labels --report-json writes
    # Without gold nothing is claimed about accuracy, and the check is the same.
    h2 = wording_help(scorer, texts, labels)
    assert h2.macro_f1_before is None and h2.macro_f1_after is None
    assert h2.changed_rows == h.changed_rows and h2.recommended == h.recommended


def test_partition_signals_reward_tight_classes(embedder, ag_news):
    df = stratified(ag_news, 15, seed=5)
    x = SelfTrainingScorer(embedder).text_embeddings(df["text"].tolist())
    gold = df["label"].tolist()
    shuffled = list(np.random.default_rng(0).permutation(gold))
    probs = np.full((len(gold), 4), 0.25)
    assert partition_signals(x, gold, probs)[0] > partition_signals(x, shuffled, probs)[0]
    assert partition_signals(x, gold, probs)[1] == pytest.approx(0.25)


def test_chinese_texts_show_words_but_propose_none(embedder):
    path = SHARED_DATA / "ecdt_train.csv"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    df = pd.read_csv(path).groupby("label").head(8)
    df = df[df["label"].isin(df["label"].value_counts().index[:6])]
    labels = make_labels([f"intent_{n}" for n in sorted(df["label"].astype(str).unique())])  # code-like names
    h = wording_help(SelfTrainingScorer(embedder), df["text"].astype(str).tolist(), labels)
    assert any(c.phrases for c in h.checks)
    assert h.n_accepted == 0 and h.changed_rows == 0
    assert [l.description for l in h.proposed] == [""] * len(labels)
    assert any("not English" in n for n in h.notes)


def test_lm_sentences_are_generated_once_and_cached(causal_lm, tmp_path, monkeypatch):
    monkeypatch.setenv("ZSS_CACHE_DIR", str(tmp_path))
    labels = make_labels(["card_arrival"])  # one label: generation is the slow part on a shared CPU
    first = lm_descriptions(causal_lm, labels)
    assert set(first) == {"card_arrival"}
    assert all(isinstance(v, str) and len(v.split()) >= 2 for v in first.values()), first
    cached = list((tmp_path / "label_descriptions").glob("*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text(encoding="utf-8"))["card arrival"]

    def no_generation(*_a, **_k):
        raise AssertionError("a cached label was generated again")

    monkeypatch.setattr("llm_backend.prompts.generation.generate_texts", no_generation)
    assert lm_descriptions(causal_lm, labels) == first


def test_lm_sentences_pass_the_margin_gate_only_when_they_point_home(embedder, causal_lm, ag_news):
    df = stratified(ag_news, 15, seed=4)
    labels = make_labels(["World", "Sports", "Business", "Sci/Tech"])
    h = wording_help(SelfTrainingScorer(embedder), df["text"].tolist(), labels, lm=causal_lm, accept_lm=True)
    assert all(c.lm_description for c in h.checks)  # the LM was asked for every short name
    for c in h.checks:
        assert c.accept_lm == (c.margin_lm > c.margin_name)
        assert (c.lm_description in c.proposal) == c.accept_lm


def test_cryptic_names_are_spelled_out_towards_their_own_rows(embedder, ag_news):
    """Names cut to three letters ("Sci/Tec", "Wor") embed as noise; spelled out from the corpus, each label's
    vector moves towards its own (gold) rows and away from the others'."""
    df = stratified(ag_news, 40, seed=6)
    short = {"World": "Wor", "Sports": "Spo", "Business": "Bus", "Sci/Tech": "Sci/Tec"}
    texts, gold = df["text"].tolist(), [short[g] for g in df["label"]]
    labels = make_labels(list(short.values()))
    scorer = SelfTrainingScorer(embedder)
    h = wording_help(scorer, texts, labels, gold=gold, expand=True, words=False)
    spelled = [c for c in h.checks if c.accept_expansion]
    assert len(spelled) >= 2, [(c.name, c.expansion) for c in h.checks]
    for c in spelled:  # a completion of the name's letters, never another word
        assert c.expansion.split()[0].startswith(Label(c.name).phrase.split()[0].lower()), c.expansion
    assert [l.name for l in h.candidate] == [l.name for l in labels]  # predictions keep the user's names
    assert [l.phrase for l in h.candidate] == [c.expansion or l.phrase for l, c in zip(labels, h.checks)]
    assert all(not l.description for l in h.candidate)  # words=False: only the spelling changes
    x = scorer.text_embeddings(texts)
    names = [l.name for l in labels]
    cents = np.vstack([x[[g == n for g in gold]].mean(axis=0) for n in names])
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    before = own_rows_margin(scorer.label_embeddings(labels), cents)
    after = own_rows_margin(scorer.label_embeddings(h.candidate), cents)
    assert after.mean() > before.mean() + 0.05, (before, after)  # measured: -0.04 -> +0.09
    # without expand, the same call leaves the names as they are
    h0 = wording_help(scorer, texts, labels, expand=False, words=False)
    assert h0.n_accepted == 0 and not any(c.accept_expansion for c in h0.checks)
