"""Orchestration: bad input, decisions, confusable labels, comparisons — real MiniLM on real slices."""
from __future__ import annotations

import numpy as np
import pytest

from llm_backend.core.errors import LabelError, TemplateError, UserError
from llm_backend.data.files import load_sample
from llm_backend.data.labels import labels_from_gold, make_labels
from llm_backend.scorers.base import NONE_LABEL
from llm_backend.scorers.embedding import EmbeddingScorer
from llm_backend.scorers.zero_shot import (
    compare_results,
    confusable_pairs,
    confusable_report,
    gold_coverage,
    label_similarity,
    labels_from_frame,
    labels_to_frame,
    prepare_labels,
    prepare_texts,
    run_scorer,
)


@pytest.fixture(scope="module")
def bank_slice(banking77):
    keep = ["card_arrival", "card_delivery_estimate", "lost_or_stolen_card", "exchange_rate", "top_up_failed",
            "cash_withdrawal_charge"]
    df = banking77[banking77["label"].isin(keep)]
    return df.groupby("label").sample(15, random_state=0).reset_index(drop=True)


def test_bad_label_sets():
    with pytest.raises(LabelError, match="empty"):
        prepare_labels([])
    with pytest.raises(LabelError, match="Duplicate"):
        prepare_labels(["Sports", "sports "])
    with pytest.raises(LabelError, match="multi-label"):
        prepare_labels(["only"])
    assert [l.name for l in prepare_labels(["only"], multi_label=True)] == ["only"]


def test_template_without_placeholder(embedder):
    with pytest.raises(TemplateError, match=r"\{label\}"):
        EmbeddingScorer(embedder, "This text is about things.")


def test_long_and_empty_texts_are_reported(embedder):
    texts, notes = prepare_texts(["x" * 20_000, "", "fine"], max_chars=4000)
    assert len(texts[0]) == 4000 and texts[1] == ""
    assert any("cut" in n for n in notes) and any("empty" in n for n in notes)
    res = run_scorer(EmbeddingScorer(embedder), ["word " * 4000, "", "The match ended in a draw."],
                     make_labels(["sports", "finance"]), calibration="none")
    assert res.probs.shape == (3, 2) and any("4,000" in n for n in res.notes)
    with pytest.raises(UserError, match="threshold"):
        run_scorer(EmbeddingScorer(embedder), ["a"], make_labels(["a", "b"]), threshold=2)


def test_gold_not_in_label_set_reported(embedder, bank_slice):
    labels = make_labels(["card_arrival", "exchange_rate", "top_up_failed"])
    res = run_scorer(EmbeddingScorer(embedder), bank_slice["text"].tolist(), labels)
    missing, n_rows = gold_coverage(bank_slice["label"].tolist(), res.label_names)
    assert missing == ["card_delivery_estimate", "cash_withdrawal_charge", "lost_or_stolen_card"]
    assert n_rows == 45
    m = res.evaluate(bank_slice["label"].tolist())
    assert m["unknown_gold"] == missing
    assert m["accuracy"] <= 0.5 + 1e-9  # the 45 unknown-gold rows can never be right


def test_none_floor_and_multi_label(embedder, bank_slice):
    labels = labels_from_gold(bank_slice["label"].tolist())
    texts = bank_slice["text"].tolist()
    single = run_scorer(EmbeddingScorer(embedder), texts, labels, none_below=0.6)
    low = single.decision.top_score < 0.6
    assert low.any() and all((p == NONE_LABEL) == l for p, l in zip(single.pred, low))
    multi = run_scorer(EmbeddingScorer(embedder), texts, labels, multi_label=True, threshold=0.5)
    assert multi.probs.shape == (90, 6) and np.all((multi.probs > 0) & (multi.probs < 1))
    n_chosen = [len(c) for c in multi.decision.chosen]
    assert max(n_chosen) > 1  # several labels can be chosen per text
    assert all(all(multi.probs[i, multi.label_names.index(n)] >= 0.5 for n in c)
               for i, c in enumerate(multi.decision.chosen))


def test_confusable_labels(embedder, bank_slice):
    labels = labels_from_gold(bank_slice["label"].tolist())
    texts = bank_slice["text"].tolist()
    scorer = EmbeddingScorer(embedder)
    res = run_scorer(scorer, texts, labels)
    label_vecs = scorer.label_embeddings(labels)
    pairs = confusable_pairs(res.label_names, label_similarity(label_vecs), res.evaluate(bank_slice["label"].tolist()))
    assert not pairs.empty
    top = {pairs.iloc[0]["label_a"], pairs.iloc[0]["label_b"]}
    # The two card-delivery intents are the pair any reader would flag first.
    assert {"card_arrival", "card_delivery_estimate"} <= set(pairs["label_a"]) | set(pairs["label_b"])
    assert top & {"card_arrival", "card_delivery_estimate", "lost_or_stolen_card"}
    report = confusable_report(scorer, texts, res, res.evaluate(bank_slice["label"].tolist()))
    assert report["pairs"].equals(pairs)  # the page's one call gives the same table


def test_compare_two_label_sets(embedder):
    df = load_sample("Product reviews").df.head(60)
    texts, gold = df["text"].tolist(), df["sentiment"].tolist()
    a = run_scorer(EmbeddingScorer(embedder), texts, make_labels(["positive", "negative", "neutral"]))
    b = run_scorer(EmbeddingScorer(embedder), texts, make_labels([
        {"name": "positive", "phrasings": ["praise", "happy customer"]},
        {"name": "negative", "phrasings": ["complaint", "disappointed customer"]},
        {"name": "neutral", "phrasings": ["mixed feelings"]}]))
    cmp = compare_results(a, b, texts, gold)
    assert 0 <= cmp["agreement"] < 1
    assert cmp["n_differ"] == len(cmp["differ"]) == round((1 - cmp["agreement"]) * 60)
    assert {"metrics_a", "metrics_b"} <= set(cmp) and cmp["metrics_b"]["n"] == 60


def test_label_table_round_trip():
    labels = make_labels([{"name": "card_arrival", "description": "when will my card come",
                           "phrasings": ["card delivery", "new card"]}, "Sci/Tech",
                          {"name": "car_arr", "display": "card arrived"}])  # a spelled-out name survives the editor
    back = labels_from_frame(labels_to_frame(labels))
    assert back == labels and back[2].phrase == "card arrived"
    df = labels_to_frame(labels)
    df.loc[len(df)] = [None, None, None, None]  # blank row added in the editor
    assert labels_from_frame(df) == labels
