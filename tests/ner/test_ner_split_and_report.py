"""The Named entities page's split (held-out sentences never trained on) and its views of the data and of a run,
on the real CoNLL-2003 dev file — no model needed."""
from __future__ import annotations

import pytest

from llm_backend.core.errors import TrainingError
from llm_backend.ner.conll import parse_conll
from llm_backend.ner.evaluate import evaluate_tags
from llm_backend.ner.report import entity_counts, error_types, n_tokens, per_type_table, run_metrics, saved_metrics
from llm_backend.ner.split import default_test_size, default_train_size, split_sentences
from tests.conftest import SHARED_DATA, _need


@pytest.fixture(scope="module")
def dev():
    return parse_conll(_need(SHARED_DATA / "conll2003_dev.txt").read_text(encoding="utf-8"), "conll2003_dev.txt")


def test_split_is_seeded_disjoint_and_in_file_order(dev):
    sents = dev.sentences[:300]
    train, test = split_sentences(sents, 200, 60, seed=3)
    assert len(train) == 200 and len(test.sentences) == 60 and test.source == "held-out sentences"
    ids = {id(s) for s in train}
    assert not ids & {id(s) for s in test.sentences}
    lines = [s.line for s in train]
    assert lines == sorted(lines)
    again, _ = split_sentences(sents, 200, 60, seed=3)
    other, _ = split_sentences(sents, 200, 60, seed=4)
    assert [s.line for s in again] == lines and [s.line for s in other] != lines
    assert split_sentences(sents, 10, 0)[1].sentences == []
    with pytest.raises(TrainingError, match="at most 300"):
        split_sentences(sents, 250, 60)
    no_entities = [s for s in sents if all(t == "O" for t in s.tags)][:5]
    with pytest.raises(TrainingError, match="no entities"):
        split_sentences(no_entities, 5, 0)


def test_default_sizes():
    assert (default_test_size(3250), default_train_size(3250, 500)) == (500, 1000)
    assert (default_test_size(60), default_train_size(60, 12)) == (12, 48)
    assert default_train_size(1, 0) == 1


def test_views_of_the_data_and_an_evaluation(dev):
    data = type(dev)(dev.sentences[:200], [], "slice")
    counts = entity_counts(data)
    assert set(counts.index) <= {"LOC", "MISC", "ORG", "PER"} and counts.is_monotonic_decreasing
    assert n_tokens(data) == sum(len(s.tokens) for s in data.sentences)
    gold = [s.tags for s in data.sentences]
    pred = [["O"] * len(t) if i % 3 == 0 else list(t) for i, t in enumerate(gold)]
    m = evaluate_tags(gold, pred, [s.tokens for s in data.sentences])
    table = per_type_table(m)
    assert set(table["type"]) == set(counts.index) and "boundary errors" in table.columns
    stored = run_metrics(m, 12.345, stopped=True)
    assert stored["micro_f1"] == m["micro_f1"] and stored["seconds"] == 12.35 and stored["stopped"] is True
    assert "errors" not in stored and "confusion" not in stored and stored["per_type"] == m["per_type"]
    assert set(saved_metrics(m)) == {"micro_f1", "precision", "recall", "per_type"}
    assert set(error_types(m["errors"])) <= set(counts.index) and error_types(m["errors"])
