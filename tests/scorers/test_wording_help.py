"""Label wording help (suggestions, what is proposed, the effect of accepting) and LM-written label sentences:
real MiniLM and SmolLM2, real AG News / ECDT rows."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llm_backend.data.labels import Label, make_labels
from llm_backend.scorers.label_descriptions import lm_descriptions
from llm_backend.scorers.label_suggestions import is_code_like
from llm_backend.scorers.self_training import SelfTrainingScorer
from llm_backend.scorers.wording_help import own_rows_margin, wording_help
from llm_backend.scorers.zero_shot import run_scorer
from tests.conftest import SHARED_DATA, stratified


def test_code_like_names():
    assert is_code_like(Label("card_arrival")) and is_code_like(Label("Sci/Tech")) and is_code_like(Label("ATM"))
    assert is_code_like(Label("getRefund"))
    assert not is_code_like(Label("Sports")) and not is_code_like(Label("positive"))
    assert not is_code_like(Label("体育"))
    assert not is_code_like(Label("card_arrival", description="my new card has not come"))


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
    by = {c.name: c for c in h.checks}
    assert [c.name for c in h.checks] == [l.name for l in labels]
    # Every short name gets its corpus words shown; only the code-like one is proposed.
    assert all(by[n].phrases for n in by)
    assert by["Sci/Tech"].proposal and not any(by[n].proposal for n in ("World", "Sports", "Business"))
    assert [l.name for l in h.proposed] == [l.name for l in labels]  # names are never replaced
    assert h.proposed[3].description == "sci and tech: " + by["Sci/Tech"].proposal
    assert not any(l.description for l in h.proposed[:3])
    # The effect is what the run's method does on these rows with the names and with the proposal.
    before = run_scorer(scorer, texts, labels)
    after = run_scorer(scorer, texts, h.proposed)
    assert h.changed_rows == sum(a != b for a, b in zip(before.pred, after.pred))
    assert h.macro_f1_before == pytest.approx(before.evaluate(gold)["macro_f1"])
    assert h.macro_f1_after == pytest.approx(after.evaluate(gold)["macro_f1"])
    assert len(h.changed_examples) == min(h.changed_rows, 20)
    json.dumps(h.as_dict())  # what suggest-labels --report-json writes
    # Without gold nothing is claimed about accuracy.
    h2 = wording_help(scorer, texts, labels)
    assert h2.macro_f1_before is None and h2.macro_f1_after is None and h2.changed_rows == h.changed_rows


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
    sci = h.checks[3]
    assert sci.lm_description  # the LM was asked for the code-like label
    assert sci.accept_lm == (sci.margin_lm > sci.margin_name)
    assert (sci.lm_description in sci.proposal) == sci.accept_lm
    assert not any(c.accept_lm for c in h.checks[:3])  # plain names: nothing proposed
